package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/catdog-mlops/catdog/ci/gha"
	"github.com/catdog-mlops/catdog/k8s"
)

// clusterFlags: how to reach the cluster, as kubectl does (KUBECONFIG, --kubeconfig,
// --context, in-cluster config when there is no kubeconfig).
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account)"},
		&cli.StringFlag{Name: "context", Usage: "kubeconfig context (default: its current context)"},
	}
}

func nameFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "name", Value: k8s.DefaultName, Usage: "name of the Deployment"},
		&cli.StringFlag{Name: "namespace", Aliases: []string{"n"}, Value: k8s.DefaultNamespace, EnvVars: []string{"CATDOG_NAMESPACE"}},
	}
}

func deployCommand() *cli.Command {
	flags := append(specFlags(), clusterFlags()...)
	flags = append(flags,
		&cli.StringFlag{Name: "target", Value: "k8s", Usage: "k8s (a Kubernetes cluster) or compose (one host, deploy/compose.yaml)"},
		&cli.StringFlag{Name: "sample", Usage: "photo the smoke test classifies (default: a generated 64×64 JPEG)"},
		&cli.DurationFlag{Name: "smoke-timeout", Value: 2 * time.Minute, Usage: "longest wait for /ready in the smoke test"},
		&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "longest the deploy may take: dry run, apply, rollout wait and smoke test (running out of it is a failure, rolled back)"},
		&cli.DurationFlag{Name: "rollback-timeout", Usage: "longest the rollback after a failure may take, counted from its start (default: --timeout)"},
		&cli.BoolFlag{Name: "no-rollback", Usage: "leave a failed version in place instead of rolling back"},
		&cli.StringFlag{Name: "compose-dir", Value: "deploy", Usage: "--target compose: directory of compose.yaml and its .env"},
	)
	sub := append(nameFlags(), clusterFlags()...)
	rollbackFlags := append(append([]cli.Flag{}, sub...),
		&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "longest the rollback may take, its rollout wait included"})
	return &cli.Command{
		Name:  "deploy",
		Usage: "roll the image out to Kubernetes (server-side apply, rollout wait, smoke test, automatic rollback) or to one host with compose",
		Description: "Applies the objects of `catdog k8s render` server-side (field manager catdog) after a server-side dry\n" +
			"run, waits for the rollout as `kubectl rollout status` decides, smoke-tests /health, /ready and\n" +
			"/predict of each new pod through the API server's pod proxy, and rolls back to the previous revision (as\n" +
			"`kubectl rollout undo`) when the rollout or the smoke test fails; then it exits non-zero. In GitHub\n" +
			"Actions the digest, revision and result go to $GITHUB_OUTPUT and a summary to $GITHUB_STEP_SUMMARY.",
		Flags:  flags,
		Action: runDeploy,
		Subcommands: []*cli.Command{
			{Name: "status", Usage: "rollout state of the deployment (as kubectl rollout status, once)", Flags: sub, Action: runDeployStatus},
			{Name: "history", Usage: "revisions with image and change-cause (as kubectl rollout history)", Flags: sub, Action: runDeployHistory},
			{Name: "rollback", Usage: "roll back to the previous revision (as kubectl rollout undo) and wait", Flags: rollbackFlags, Action: runDeployRollback},
		},
	}
}

// deployer connects like kubectl does.
func deployer(c *cli.Context, a *gha.Actions) (*k8s.Deployer, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = c.String("kubeconfig")
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.String("context")})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if cfg.BearerToken != "" {
		a.Mask(cfg.BearerToken)
	}
	cfg.UserAgent = "catdog"
	// client-go's default client-side limit (5 requests/s after a burst of 10) is sized for
	// controllers that run forever; one deploy makes ~25 bounded requests (dry run and apply of
	// five objects, reads, the smoke test's calls per pod) and spent ~0.8 s throttled. kubectl
	// allows 50/s with a burst of 300 for discovery; this is the same order.
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	start := time.Now()
	w := c.App.ErrWriter
	return &k8s.Deployer{Client: cs, Server: cfg.Host, Progress: func(e k8s.Event) { drawDeployEvent(w, start, e) }}, nil
}

// drawDeployEvent is the one renderer of deploy progress: a line per change.
func drawDeployEvent(w io.Writer, start time.Time, e k8s.Event) {
	line := fmt.Sprintf("%6.1fs %-8s %s", time.Since(start).Seconds(), e.Stage, e.Message)
	if p := e.Progress; p != nil {
		line += fmt.Sprintf(" (desired %d, updated %d, ready %d, available %d, total %d)", p.Desired, p.Updated, p.Ready, p.Available, p.Replicas)
	}
	fmt.Fprintln(w, line)
}

func sampleImage(path string) ([]byte, string, error) {
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, "", err
		}
		ct := "image/jpeg"
		if strings.HasSuffix(strings.ToLower(path), ".png") {
			ct = "image/png"
		}
		return b, ct, nil
	}
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{uint8(4 * x), uint8(4 * y), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), "image/jpeg", nil
}

func runDeploy(c *cli.Context) error {
	a := actions(c)
	spec := specFromFlags(c)
	switch c.String("target") {
	case "k8s":
	case "compose":
		return runDeployCompose(c, a, spec)
	default:
		return cli.Exit(fmt.Sprintf("catdog deploy: --target %q: want k8s or compose", c.String("target")), 2)
	}
	if spec.Image == "" {
		return cli.Exit("catdog deploy: --image is required (repo@sha256:…, as `catdog image build` output it)", 2)
	}
	sample, ct, err := sampleImage(c.String("sample"))
	if err != nil {
		return fmt.Errorf("--sample: %w", err)
	}
	d, err := deployer(c, a)
	if err != nil {
		return fail(a, "catdog deploy", err)
	}
	res, err := d.Deploy(c.Context, spec, k8s.Options{Timeout: c.Duration("timeout"), RollbackTimeout: c.Duration("rollback-timeout"), NoRollback: c.Bool("no-rollback"),
		Smoke: k8s.SmokeOptions{Sample: sample, ContentType: ct, Timeout: c.Duration("smoke-timeout")}})
	if oerr := deployOutputs(a, spec, res); oerr != nil && err == nil {
		err = oerr
	}
	if err != nil {
		return fail(a, "catdog deploy", err)
	}
	fmt.Fprintf(c.App.Writer, "%s: %s/%s revision %d serves %s\n", res.Outcome, spec.Namespace, spec.Name, res.Revision, res.Image)
	return nil
}

func deployOutputs(a *gha.Actions, spec k8s.Spec, res k8s.Result) error {
	for k, v := range map[string]string{"digest": res.Digest, "image": res.Image, "revision": strconv.FormatInt(res.Revision, 10), "result": string(res.Outcome)} {
		if err := a.SetOutput(k, v); err != nil {
			return err
		}
	}
	rows := [][]string{
		{"result", "**" + string(res.Outcome) + "**"},
		{"deployment", spec.Namespace + "/" + spec.Name},
		{"image", "`" + res.Image + "`"},
		{"revision", strconv.FormatInt(res.Revision, 10)},
	}
	if res.Cause != nil {
		rows = append(rows, []string{"cause", res.Cause.Error()}) // gha.Table escapes | and newlines
	}
	return a.AppendSummary("## catdog deploy\n\n" + gha.Table([]string{"", ""}, rows) + "\n")
}

func runDeployStatus(c *cli.Context) error {
	d, err := deployer(c, actions(c))
	if err != nil {
		return err
	}
	st, err := d.Status(c.Context, c.String("namespace"), c.String("name"))
	if err != nil {
		return err
	}
	p := st.Progress
	fmt.Fprintf(c.App.Writer, "revision %d  image %s\ndesired %d  updated %d  ready %d  available %d  total %d  (HPA wants %d)\n",
		st.Revision, st.Image, p.Desired, p.Updated, p.Ready, p.Available, p.Replicas, st.HPAReplicas)
	if st.Err != nil {
		return cli.Exit(st.Err.Error(), 1)
	}
	fmt.Fprintln(c.App.Writer, st.Message)
	if !st.Done {
		return cli.Exit("rollout in progress", 3)
	}
	return nil
}

func runDeployHistory(c *cli.Context) error {
	d, err := deployer(c, actions(c))
	if err != nil {
		return err
	}
	revs, err := d.History(c.Context, c.String("namespace"), c.String("name"))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tCURRENT\tPODS\tCREATED\tCHANGE-CAUSE")
	for _, r := range revs {
		cur := ""
		if r.Current {
			cur = "*"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", r.Revision, cur, r.Replicas, r.Created.UTC().Format(time.RFC3339), r.ChangeCause)
	}
	return tw.Flush()
}

func runDeployRollback(c *cli.Context) error {
	a := actions(c)
	d, err := deployer(c, a)
	if err != nil {
		return err
	}
	to, err := d.Rollback(c.Context, c.String("namespace"), c.String("name"), c.Duration("timeout"))
	if err != nil {
		return fail(a, "catdog deploy rollback", err)
	}
	fmt.Fprintf(c.App.Writer, "rolled back: revision %d serves %s\n", to.Revision, to.Image)
	return nil
}
