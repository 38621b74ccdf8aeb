package main

import (
	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/ci/imagebuild"
	"github.com/catdog-mlops/catdog/k8s"
)

// specFlags declares the deployment spec once, for `catdog k8s render` and `catdog deploy`.
func specFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "image", Usage: "image reference pinned by digest (repo@sha256:…), as `catdog image build` output it", EnvVars: []string{"CATDOG_IMAGE"}},
		&cli.BoolFlag{Name: "allow-tag", Usage: "accept an image reference by tag (a tag can move under a running deployment)"},
		&cli.StringFlag{Name: "name", Value: k8s.DefaultName, Usage: "name of the Deployment, Service, HPA, PDB and ServiceAccount"},
		&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: k8s.DefaultNamespace, Usage: "namespace (must exist)", EnvVars: []string{"CATDOG_NAMESPACE"}},
		&cli.StringFlag{Name: "model-name", Usage: "registered model name (annotation)", EnvVars: []string{"CATDOG_MODEL_NAME"}},
		&cli.StringFlag{Name: "model-version", Usage: "registered model version (label and annotation; served as the model version)", EnvVars: []string{"CATDOG_MODEL_VERSION"}},
		&cli.StringFlag{Name: "run-id", Usage: "MLflow run id that produced the model (annotation)", EnvVars: []string{"CATDOG_RUN_ID"}},
		&cli.IntFlag{Name: "replicas", Value: k8s.DefaultReplicas, Usage: "minimum replicas (HPA min; first rollout)"},
		&cli.IntFlag{Name: "max-replicas", Value: k8s.DefaultMaxReplicas, Usage: "HPA maximum replicas"},
		&cli.IntFlag{Name: "target-cpu", Value: k8s.DefaultTargetCPU, Usage: "HPA target CPU utilisation (% of the request)"},
		&cli.StringFlag{Name: "cpu-request", Value: k8s.DefaultCPURequest},
		&cli.StringFlag{Name: "cpu-limit", Value: k8s.DefaultCPULimit},
		&cli.StringFlag{Name: "memory-request", Value: k8s.DefaultMemoryRequest},
		&cli.StringFlag{Name: "memory-limit", Value: k8s.DefaultMemoryLimit},
		&cli.DurationFlag{Name: "progress-deadline", Value: k8s.DefaultProgressDeadline, Usage: "progressDeadlineSeconds: a rollout without progress for this long fails"},
		&cli.DurationFlag{Name: "prestop-sleep", Value: k8s.DefaultPreStopSleep, Usage: "preStop sleep while endpoints withdraw a terminating pod"},
		&cli.DurationFlag{Name: "drain-delay", Value: k8s.DefaultDrainDelay, Usage: "serve --drain-delay (503 on /ready after SIGTERM)"},
		&cli.DurationFlag{Name: "shutdown-timeout", Value: k8s.DefaultShutdownTimeout, Usage: "serve --shutdown-timeout (in-flight requests after SIGTERM)"},
		&cli.StringFlag{Name: "deployer", Value: k8s.DefaultDeployerName, Usage: "name of the deployer's ServiceAccount, Role and RoleBinding"},
	}
}

// specFromFlags reads the spec flags; the image's uid, port and model path come from ci/imagebuild.
func specFromFlags(c *cli.Context) k8s.Spec {
	return k8s.Spec{
		Name:      c.String("name"),
		Namespace: c.String("namespace"),
		Image:     c.String("image"),
		AllowTag:  c.Bool("allow-tag"),
		Model:     k8s.Model{Name: c.String("model-name"), Version: c.String("model-version"), RunID: c.String("run-id")},
		Replicas:  int32(c.Int("replicas")), MaxReplicas: int32(c.Int("max-replicas")), TargetCPU: int32(c.Int("target-cpu")),
		Resources: k8s.Resources{CPURequest: c.String("cpu-request"), CPULimit: c.String("cpu-limit"),
			MemoryRequest: c.String("memory-request"), MemoryLimit: c.String("memory-limit")},
		Port: imagebuild.DefaultPort, UID: imagebuild.NonRootUID, ModelPath: imagebuild.ModelPath,
		ProgressDeadline: c.Duration("progress-deadline"), PreStopSleep: c.Duration("prestop-sleep"),
		DrainDelay: c.Duration("drain-delay"), ShutdownTimeout: c.Duration("shutdown-timeout"),
		Deployer: c.String("deployer"),
	}
}
