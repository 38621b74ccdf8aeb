// Package deploy benchmarks `catdog deploy` against the kubectl sequence on the same local
// control plane (internal/testenv/kube): wall time from start to rollout complete, and from
// start to rollback complete for a version whose pods never become ready.
//
//	make bench-deploy   (go test -run '^$' -bench . -benchtime 1x ./bench/deploy)
//
// Rollout: `catdog deploy --image NEW` (server-side dry run, server-side apply, rollout wait,
// smoke test of every new pod against a real catdog serve) vs `kubectl apply -f` of the same
// objects rendered by `catdog k8s render` + `kubectl rollout status`. Rollback: catdog deploy
// of a never-ready version (it waits out progressDeadlineSeconds, rolls back and waits) vs
// kubectl apply + rollout status (fails on the deadline) + rollout undo + rollout status. Both
// run as the shipped deployer identity, in their own namespaces, interleaved; medians of
// CATDOG_BENCH_RUNS runs (default 5) are printed as a Markdown table.
package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/internal/testenv"
	"github.com/catdog-mlops/catdog/internal/testenv/kube"
)

// the same spec flags for both sides (8 s progress deadline, 8 s grace period)
var specFlags = []string{"--prestop-sleep", "1s", "--drain-delay", "1s", "--shutdown-timeout", "1s",
	"--progress-deadline", "8s", "--model-name", "catdog"}

func image(i int) string { return fmt.Sprintf("registry.test/catdog@sha256:%064x", i) }

func BenchmarkDeployVsKubectl(b *testing.B) {
	runs := 5
	if v := os.Getenv("CATDOG_BENCH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("CATDOG_BENCH_RUNS=%q", v)
		}
		runs = n
	}
	root := testenv.RepoRoot(b)
	dir := b.TempDir()
	// serve, prepare and train need the libtorch build; deploy runs the light build, as in
	// cd.yml (bin/catdog: no libtorch start-up)
	bin, light := filepath.Join(dir, "catdog-torch"), filepath.Join(dir, "catdog")
	testenv.Run(b, root, nil, "go", "build", "-o", bin, "./cmd/catdog")
	testenv.Run(b, root, nil, "go", "build", "-tags", "catdog_light", "-o", light, "./cmd/catdog")
	model := trainModel(b, bin, root, testenv.SharedData(b), dir)
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(b))
	serve := testenv.Start(b, bin, []string{"serve", "--model", model, "--addr", addr, "--threads", "1", "--no-drift", "--drain-delay", "0s"}, nil, dir)
	serve.WaitHTTP(b, "http://"+addr+"/ready", 60*time.Second)

	c := kube.Start(b, kube.Options{Nodes: 2})
	c.SetRoute(func(context.Context, string) (string, error) { return addr, nil }) // every pod: the real catdog serve
	rbac := filepath.Join(root, "deploy", "k8s", "deployer-rbac.yaml")
	kcCatdog, kcKubectl := c.Deployer(b, "bench-catdog", rbac), c.Deployer(b, "bench-kubectl", rbac)

	run := func(name string, args ...string) (time.Duration, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		s := time.Now()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		return time.Since(s), string(out), err
	}
	must := func(d time.Duration, out string, err error) time.Duration {
		b.Helper()
		if err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		return d
	}
	catdog := func(img, version string) (time.Duration, string, error) {
		return run(light, append([]string{"deploy", "--kubeconfig", kcCatdog, "-n", "bench-catdog", "--image", img, "--model-version", version, "--timeout", "2m"}, specFlags...)...)
	}
	kubectl := func(args ...string) (time.Duration, string, error) {
		return run(filepath.Join(c.Bin, "kubectl"), append([]string{"--kubeconfig", kcKubectl, "-n", "bench-kubectl"}, args...)...)
	}
	render := func(img, version string) string {
		out := testenv.Run(b, dir, nil, light, append([]string{"k8s", "render", "-n", "bench-kubectl", "--image", img, "--model-version", version}, specFlags...)...)
		f := filepath.Join(dir, "render-"+version+".yaml")
		if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
			b.Fatal(err)
		}
		return f
	}
	kubectlRollout := func(img, version string) (time.Duration, error) {
		f := render(img, version)
		s := time.Now()
		if _, out, err := kubectl("apply", "-f", f); err != nil {
			return 0, fmt.Errorf("kubectl apply: %v\n%s", err, out)
		}
		_, out, err := kubectl("rollout", "status", "deployment/catdog", "--timeout=2m")
		if err != nil {
			return time.Since(s), fmt.Errorf("kubectl rollout status: %w\n%s", err, out)
		}
		return time.Since(s), nil
	}

	// first versions (not timed): both Deployments exist with revision 1
	must(catdog(image(1), "1"))
	if _, err := kubectlRollout(image(1), "1"); err != nil {
		b.Fatal(err)
	}
	// kubectl apply creates the Deployment (which has no replicas field: the HPA owns it) with
	// 1 replica; catdog deploy creates it with 2. Start both sides from 2 replicas.
	testenv.Run(b, dir, nil, filepath.Join(c.Bin, "kubectl"), "--kubeconfig", c.AdminKubeconfig, "-n", "bench-kubectl", "scale", "deployment/catdog", "--replicas=2")
	must(kubectl("rollout", "status", "deployment/catdog", "--timeout=2m"))
	// catdog's progress lines carry the time since start: where the smoke test began
	smokeAt := regexp.MustCompile(`(?m)^\s*([0-9.]+)s smoke`)
	var rollCatdog, rollKubectl, backCatdog, backKubectl, preSmoke []time.Duration
	for i := range runs {
		img := image(100 + i)
		d, out, err := catdog(img, strconv.Itoa(100+i))
		rollCatdog = append(rollCatdog, must(d, out, err))
		if m := smokeAt.FindStringSubmatch(out); m != nil {
			sec, _ := strconv.ParseFloat(m[1], 64)
			preSmoke = append(preSmoke, time.Duration(sec*float64(time.Second)))
		}
		d, err = kubectlRollout(img, strconv.Itoa(100+i))
		if err != nil {
			b.Fatal(err)
		}
		rollKubectl = append(rollKubectl, d)

		bad := image(900 + i)
		d, out, err = catdog(bad, "never-ready")
		if err == nil || !strings.Contains(out, "rolled back to revision") {
			b.Fatalf("catdog deploy of a never-ready version: %v\n%s", err, out)
		}
		backCatdog = append(backCatdog, d)
		f := render(bad, "never-ready")
		s := time.Now()
		if _, out, err := kubectl("apply", "-f", f); err != nil {
			b.Fatalf("kubectl apply: %v\n%s", err, out)
		}
		if _, out, err := kubectl("rollout", "status", "deployment/catdog", "--timeout=2m"); err == nil || !strings.Contains(out, "exceeded its progress deadline") {
			b.Fatalf("kubectl rollout status of a never-ready version: %v\n%s", err, out)
		}
		must(kubectl("rollout", "undo", "deployment/catdog"))
		must(kubectl("rollout", "status", "deployment/catdog", "--timeout=2m"))
		backKubectl = append(backKubectl, time.Since(s))
		b.Logf("run %d: rollout catdog %v kubectl %v; rollback catdog %v kubectl %v", i+1,
			rollCatdog[i].Round(time.Millisecond), rollKubectl[i].Round(time.Millisecond),
			backCatdog[i].Round(time.Millisecond), backKubectl[i].Round(time.Millisecond))
	}
	ver := strings.TrimSpace(testenv.Run(b, dir, nil, filepath.Join(c.Bin, "kubectl"), "version", "--client", "-o", "yaml"))
	gitVer := regexp.MustCompile(`gitVersion: (\S+)`).FindStringSubmatch(ver)
	kv := "kubectl"
	if len(gitVer) == 2 {
		kv += " " + gitVer[1]
	}
	fmt.Printf("\n| %d runs, medians | catdog deploy | %s | catdog / kubectl |\n|---|---:|---:|---:|\n", runs, kv)
	row := func(what string, a, k []time.Duration) {
		ma, mk := median(a), median(k)
		fmt.Printf("| %s | %.2f s | %.2f s | %.2f× |\n", what, ma.Seconds(), mk.Seconds(), ma.Seconds()/mk.Seconds())
	}
	row("start → rollout complete (new digest, 2 replicas)", rollCatdog, rollKubectl)
	row("start → rollback complete (never-ready version, 8 s progress deadline)", backCatdog, backKubectl)
	if len(preSmoke) == len(rollCatdog) {
		fmt.Printf("\ncatdog deploy's smoke test (each new pod: /health, /ready, /version, 2 × /predict through the pod proxy) began at a median %.2f s of its %.2f s\n",
			median(preSmoke).Seconds(), median(rollCatdog).Seconds())
	}
	fmt.Printf("\nper run (s): rollout catdog %v, kubectl %v; rollback catdog %v, kubectl %v\n",
		secs(rollCatdog), secs(rollKubectl), secs(backCatdog), secs(backKubectl))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func secs(ds []time.Duration) string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%.2f", d.Seconds()))
	}
	return strings.Join(out, " ")
}

// trainModel trains a 32×32 model on 40 development photos for the serve the smoke test reaches.
func trainModel(b *testing.B, bin, root, shared, dir string) string {
	b.Helper()
	photos := filepath.Join(dir, "photos")
	for _, cls := range []string{"Cat", "Dog"} {
		if err := os.MkdirAll(filepath.Join(photos, cls), 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range 20 {
			n := fmt.Sprintf("%s.%d.jpg", strings.ToLower(cls), i)
			if err := os.Symlink(filepath.Join(shared, "petimages-dev", cls, n), filepath.Join(photos, cls, n)); err != nil {
				b.Fatal(err)
			}
		}
	}
	params, err := os.ReadFile(filepath.Join(root, "params.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	params = regexp.MustCompile(`(?m)^(\s*widths:).*$`).ReplaceAll(params, []byte("${1} [8, 16, 32, 64]"))
	paramsFile := filepath.Join(dir, "params.yaml")
	if err := os.WriteFile(paramsFile, params, 0o644); err != nil {
		b.Fatal(err)
	}
	model := filepath.Join(dir, "model")
	testenv.Run(b, dir, nil, bin, "prepare", "--data", photos, "--out", filepath.Join(dir, "prepared"), "--size", "32", "-q")
	testenv.Run(b, dir, nil, bin, "train", "--params", paramsFile, "--data", filepath.Join(dir, "prepared"),
		"--out", model, "--epochs", "1", "--input-size", "32", "--name", "catdog-bench-deploy", "-q")
	return model
}
