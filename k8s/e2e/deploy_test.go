// Package e2e runs `catdog deploy` (the real binary) against a real control plane
// (internal/testenv/kube: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok
// nodes on 127.0.0.1) as the shipped least-privilege deployer identity, and asserts on the
// API's state. The smoke test goes the way it does in a cluster — through kube-apiserver's
// pod proxy to each new pod, classifying a real photo of the development set — and the test's
// egress route delivers each pod's traffic to a real `catdog serve` on 127.0.0.1: one with a
// small trained model, and for pods labelled version "broken" one whose model is deliberately
// broken (its normalisation mean makes every probability NaN: /ready 200, /predict 500).
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/catdog-mlops/catdog/internal/testenv"
	"github.com/catdog-mlops/catdog/internal/testenv/kube"
	"github.com/catdog-mlops/catdog/k8s"
)

const name = k8s.DefaultName

func image(n int) string {
	return "registry.test/catdog@sha256:" + strings.Repeat(strconv.Itoa(n%10), 64)
}

// fixture is what every case shares: the catdog binary, the cluster, the serve processes.
type fixture struct {
	bin, rbac    string
	sample       string // the smoke test's photo (a real one from the development set)
	c            *kube.Cluster
	good, broken *testenv.Process
	// goodAddr and brokenAddr are where the two serve processes listen
	goodAddr, brokenAddr string

	mu     sync.Mutex
	routed []string
}

func (f *fixture) routeLog(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routed = append(f.routed, time.Now().Format("15:04:05.000")+" "+s)
}

// deployFlags keep the suite fast: 8 s grace period (1 s preStop, 1 s drain, 1 s shutdown, the
// spec's 5 s margin), an 8 s progress deadline, a 30 s wait for /ready.
var deployFlags = []string{"--prestop-sleep", "1s", "--drain-delay", "1s", "--shutdown-timeout", "1s",
	"--progress-deadline", "8s", "--smoke-timeout", "30s", "--timeout", "90s", "--model-name", "catdog"}

// deploy runs catdog deploy --kubeconfig kubeconfig and returns its combined output and exit code.
func (f *fixture) deploy(t *testing.T, kubeconfig, ns string, args ...string) (string, int) {
	t.Helper()
	return f.deployWith(t, invocation{kubeconfig: kubeconfig}, ns, args...)
}

// invocation is how catdog deploy is started: --kubeconfig (none when empty: then KUBECONFIG
// in env names it, as in cd.yml) and environment variables on top of the test's (GitHub
// Actions off unless env turns it on).
type invocation struct {
	kubeconfig string
	env        []string
}

func (f *fixture) deployWith(t *testing.T, inv invocation, ns string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	all := []string{"deploy", "--namespace", ns, "--sample", f.sample}
	if inv.kubeconfig != "" {
		all = append(all, "--kubeconfig", inv.kubeconfig)
	}
	all = append(all, deployFlags...)
	cmd := exec.CommandContext(ctx, f.bin, append(all, args...)...)
	// the home directory's kubeconfig must not stand in for the one the case names
	cmd.Env = append(os.Environ(), "GITHUB_ACTIONS=", "GITHUB_OUTPUT=", "GITHUB_STEP_SUMMARY=", "KUBECONFIG=", "HOME="+t.TempDir())
	cmd.Env = append(cmd.Env, inv.env...)
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("catdog deploy: %v\n%s", err, out)
	}
	t.Logf("catdog deploy %s (exit %d):\n%s", strings.Join(args, " "), code, out)
	return string(out), code
}

func (f *fixture) mustDeploy(t *testing.T, kubeconfig, ns string, args ...string) string {
	t.Helper()
	return f.mustDeployWith(t, invocation{kubeconfig: kubeconfig}, ns, args...)
}

func (f *fixture) mustDeployWith(t *testing.T, inv invocation, ns string, args ...string) string {
	t.Helper()
	out, code := f.deployWith(t, inv, ns, args...)
	if code != 0 {
		f.mu.Lock()
		routed := strings.Join(f.routed, "\n")
		f.mu.Unlock()
		t.Fatalf("catdog deploy %v: exit %d\n%s\n--- refused egress: %v\n--- routes:\n%s", args, code, out, f.c.Refused(), routed)
	}
	return out
}

func TestDeploy(t *testing.T) {
	t0 := time.Now()
	root := testenv.RepoRoot(t)
	shared := testenv.SharedData(t)
	dir := t.TempDir()
	f := &fixture{bin: filepath.Join(dir, "catdog"), rbac: filepath.Join(root, "deploy", "k8s", "deployer-rbac.yaml"),
		sample: filepath.Join(shared, "petimages-dev", "Cat", "cat.100.jpg")}
	testenv.Run(t, root, nil, "go", "build", "-o", f.bin, "./cmd/catdog")
	good, broken := trainModels(t, f.bin, root, shared, dir)
	t.Logf("built catdog and trained a 32x32 model in %v", time.Since(t0).Round(time.Millisecond))

	serve := func(model string) (*testenv.Process, string) {
		addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
		p := testenv.Start(t, f.bin, []string{"serve", "--model", model, "--addr", addr, "--threads", "1", "--no-drift",
			"--drain-delay", "0s"}, nil, dir)
		p.WaitHTTP(t, "http://"+addr+"/ready", 60*time.Second)
		return p, addr
	}
	f.good, f.goodAddr = serve(good)
	f.broken, f.brokenAddr = serve(broken)

	f.c = kube.Start(t, kube.Options{Nodes: 2})
	f.c.SetRoute(f.route)
	t.Cleanup(func() {
		if r := f.c.Refused(); len(r) > 0 {
			t.Logf("egress guard refused: %v", r)
		}
	})

	for _, c := range []struct {
		name string
		run  func(*testing.T, *fixture)
	}{
		{"FirstDeploy", testFirstDeploy},
		{"RollingUpdate", testRollingUpdate},
		{"NeverReadyRollsBack", testNeverReady},
		{"SmokeFailureRollsBack", testSmokeFailure},
		{"TimeLimitAndInterrupt", testLimits},
		{"ReapplyIsNoOp", testReapply},
		{"Kubectl", testKubectl},
		{"BadInput", testBadInput},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := time.Now()
			c.run(t, f)
			t.Logf("%s: %v", c.name, time.Since(s).Round(10*time.Millisecond))
		})
	}
	f.c.CheckLoopbackOnly(t)
	t.Logf("TestDeploy total %v", time.Since(t0).Round(10*time.Millisecond))
}

// route sends kube-apiserver's connection to a pod to the catdog serve standing in for it:
// the broken one for pods of version "broken", the good one otherwise.
func (f *fixture) route(ctx context.Context, target string) (string, error) {
	ip := target[:strings.LastIndex(target, ":")]
	pods, err := f.c.Admin.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("status.podIP", ip).String()})
	if err != nil {
		return "", err
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, fmt.Sprintf("%s/%s(v%s,del=%v)", p.Namespace, p.Name, p.Labels[k8s.LabelVersion], p.DeletionTimestamp != nil))
	}
	f.routeLog(target + " -> " + strings.Join(names, " "))
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Labels[k8s.LabelVersion] == "broken" {
			return f.brokenAddr, nil
		}
		return f.goodAddr, nil
	}
	return "", fmt.Errorf("no running pod has IP %s", ip)
}

// trainModels trains a small model on 40 development photos and derives the broken one.
func trainModels(t *testing.T, bin, root, shared, dir string) (good, broken string) {
	t.Helper()
	photos := filepath.Join(dir, "photos")
	for _, cls := range []string{"Cat", "Dog"} {
		if err := os.MkdirAll(filepath.Join(photos, cls), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			n := fmt.Sprintf("%s.%d.jpg", strings.ToLower(cls), i)
			if err := os.Symlink(filepath.Join(shared, "petimages-dev", cls, n), filepath.Join(photos, cls, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	params, err := os.ReadFile(filepath.Join(root, "params.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	params = regexp.MustCompile(`(?m)^(\s*widths:).*$`).ReplaceAll(params, []byte("${1} [8, 16, 32, 64]"))
	paramsFile := filepath.Join(dir, "params.yaml")
	if err := os.WriteFile(paramsFile, params, 0o644); err != nil {
		t.Fatal(err)
	}
	good = filepath.Join(dir, "model")
	testenv.Run(t, dir, nil, bin, "prepare", "--data", photos, "--out", filepath.Join(dir, "prepared"), "--size", "32", "-q")
	testenv.Run(t, dir, nil, bin, "train", "--params", paramsFile, "--data", filepath.Join(dir, "prepared"),
		"--out", good, "--epochs", "1", "--input-size", "32", "--name", "catdog-k8s-e2e", "-q")

	broken = filepath.Join(dir, "broken-model")
	if err := os.MkdirAll(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"best_model.ot", "model.json"} {
		b, err := os.ReadFile(filepath.Join(good, fn))
		if err != nil {
			t.Fatal(err)
		}
		if fn == "model.json" {
			var info map[string]any
			if err := json.Unmarshal(b, &info); err != nil {
				t.Fatal(err)
			}
			info["mean"] = []float64{3e38, 3e38, 3e38} // (x - 3e38) / std overflows: NaN probabilities
			b, _ = json.Marshal(info)
		}
		if err := os.WriteFile(filepath.Join(broken, fn), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return good, broken
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func getDeployment(t *testing.T, cs kubernetes.Interface, ns string) *appsv1.Deployment {
	t.Helper()
	d, err := cs.AppsV1().Deployments(ns).Get(ctxT(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func templateImage(d *appsv1.Deployment) string { return d.Spec.Template.Spec.Containers[0].Image }

func predictions(p *testenv.Process) int { return strings.Count(p.Output(), `"endpoint":"predict"`) }

// eventually polls cond every 200 ms until it returns "" or the deadline passes.
func eventually(t *testing.T, within time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readyAddresses counts the ready addresses of the Service's EndpointSlices.
func readyAddresses(ctx context.Context, cs kubernetes.Interface, ns string) (int, error) {
	slices, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				n += len(e.Addresses)
			}
		}
	}
	return n, nil
}

// actionsRun is a GitHub Actions step's environment: $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY
// in temp files.
type actionsRun struct{ output, summary string }

func newActionsRun(t *testing.T) actionsRun {
	dir := t.TempDir()
	return actionsRun{output: filepath.Join(dir, "output"), summary: filepath.Join(dir, "summary")}
}

func (a actionsRun) env() []string {
	return []string{"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + a.output, "GITHUB_STEP_SUMMARY=" + a.summary}
}

// check asserts the step's outputs and that its summary holds every string of inSummary.
func (a actionsRun) check(t *testing.T, outputs map[string]string, inSummary ...string) {
	t.Helper()
	got := testenv.GitHubOutputs(t, a.output)
	for k, v := range outputs {
		if got[k] != v {
			t.Errorf("output %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	summary, err := os.ReadFile(a.summary)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range inSummary {
		if !strings.Contains(string(summary), w) {
			t.Errorf("step summary lacks %q:\n%s", w, summary)
		}
	}
}

// (1) first deploy: 2 available replicas, 2 ready endpoints, HPA and PDB present, and the
// smoke test's predictions reached the real catdog serve. It runs as a GitHub Actions step:
// the outputs and the step summary name the result, digest and revision.
func testFirstDeploy(t *testing.T, f *fixture) {
	ns := "first"
	kc := f.c.Deployer(t, ns, f.rbac)
	before := predictions(f.good)
	gh := newActionsRun(t)
	out := f.mustDeployWith(t, invocation{kubeconfig: kc, env: gh.env()}, ns, "--image", image(1), "--model-version", "1")
	if !strings.Contains(out, "deployed: first/catdog revision 1") {
		t.Errorf("output does not report revision 1 deployed:\n%s", out)
	}
	gh.check(t, map[string]string{"result": "deployed", "digest": k8s.Digest(image(1)), "image": image(1), "revision": "1"},
		"## catdog deploy", "| result | **deployed** |", "| deployment | first/catdog |", "| image | `"+image(1)+"` |", "| revision | 1 |")
	cs := f.c.Admin
	d := getDeployment(t, cs, ns)
	if d.Status.AvailableReplicas != 2 || *d.Spec.Replicas != 2 {
		t.Errorf("available %d of %d replicas, want 2 of 2", d.Status.AvailableReplicas, *d.Spec.Replicas)
	}
	// the EndpointSlice controller follows pod readiness a moment after the Deployment's status
	eventually(t, 10*time.Second, func() string {
		if n, err := readyAddresses(ctxT(t), cs, ns); err != nil || n != 2 {
			return fmt.Sprintf("EndpointSlices of Service %s: %d ready addresses (%v), want 2", name, n, err)
		}
		return ""
	})
	hpa, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctxT(t), name, metav1.GetOptions{})
	if err != nil || *hpa.Spec.MinReplicas != 2 || hpa.Spec.ScaleTargetRef.Name != name {
		t.Errorf("HPA: %v %+v", err, hpa.Spec)
	}
	pdb, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctxT(t), name, metav1.GetOptions{})
	if err != nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("PDB: %v %+v", err, pdb.Spec)
	}
	eventually(t, 5*time.Second, func() string { // serve logs a request after answering it
		if got := predictions(f.good) - before; got < 4 {
			return fmt.Sprintf("catdog serve logged %d /predict calls of the smoke test, want 4 (2 per replica)", got)
		}
		return ""
	})
	pods, _ := cs.CoreV1().Pods(ns).List(ctxT(t), metav1.ListOptions{})
	nodes := map[string]bool{}
	for _, p := range pods.Items {
		nodes[p.Spec.NodeName] = true
	}
	if len(nodes) != 2 {
		t.Errorf("the 2 pods are on nodes %v, want spread over both kwok nodes", nodes)
	}
}

// twoContexts writes a kubeconfig holding kc's identity twice: the current context "default"
// points at an address where nothing listens, the context "deployer" at the cluster.
func twoContexts(t *testing.T, kc string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kc)
	if err != nil {
		t.Fatal(err)
	}
	cur := cfg.Contexts[cfg.CurrentContext]
	if cur == nil {
		t.Fatalf("%s has no current context", kc)
	}
	wrong := cfg.Clusters[cur.Cluster].DeepCopy()
	wrong.Server = "https://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	cfg.Clusters["nowhere"] = wrong
	good := cur.DeepCopy()
	cfg.Contexts["deployer"] = good
	def := cur.DeepCopy()
	def.Cluster = "nowhere"
	cfg.Contexts["default"] = def
	for name := range cfg.Contexts {
		if name != "deployer" && name != "default" {
			delete(cfg.Contexts, name)
		}
	}
	cfg.CurrentContext = "default"
	p := filepath.Join(t.TempDir(), "two-contexts.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// (2) rolling update to a new digest: a watch held during the rollout never sees fewer than 2
// available replicas; at the end only the new ReplicaSet has pods. The two deploys connect the
// other ways kubectl does: the first through $KUBECONFIG alone (as cd.yml does), the second
// with --context on a kubeconfig whose current context points elsewhere.
func testRollingUpdate(t *testing.T, f *fixture) {
	ns := "rolling"
	kc := f.c.Deployer(t, ns, f.rbac)
	f.mustDeployWith(t, invocation{env: []string{"KUBECONFIG=" + kc}}, ns, "--image", image(1), "--model-version", "1")
	two := twoContexts(t, kc)
	// the current context is not the cluster: without --context the deploy must fail there
	if out, code := f.deploy(t, two, ns, "--image", image(2), "--model-version", "2"); code == 0 || !strings.Contains(out, "API server unreachable") {
		t.Fatalf("deploy through the kubeconfig's current context (nowhere): exit %d, want unreachable:\n%s", code, out)
	}
	cs := f.c.Admin
	d := getDeployment(t, cs, ns)
	w, err := cs.AppsV1().Deployments(ns).Watch(ctxT(t), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: d.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	minAvail, events, maxGen := int32(1<<30), 0, int64(0)
	var done sync.WaitGroup
	done.Go(func() {
		for e := range w.ResultChan() {
			dep, ok := e.Object.(*appsv1.Deployment)
			if !ok || e.Type == watch.Error {
				continue
			}
			mu.Lock()
			events++
			minAvail = min(minAvail, dep.Status.AvailableReplicas)
			maxGen = max(maxGen, dep.Status.ObservedGeneration)
			mu.Unlock()
		}
	})
	f.mustDeploy(t, two, ns, "--context", "deployer", "--image", image(2), "--model-version", "2")
	w.Stop()
	done.Wait()
	if events < 3 || maxGen <= d.Generation {
		t.Errorf("the watch saw %d events, observed generation up to %d (was %d): it did not follow the rollout", events, maxGen, d.Generation)
	}
	if minAvail < 2 {
		t.Errorf("during the rollout available replicas fell to %d, want never below 2", minAvail)
	}
	t.Logf("watch: %d events, available replicas never below %d", events, minAvail)

	after := getDeployment(t, cs, ns)
	if templateImage(after) != image(2) || k8s.Revision(after) != 2 {
		t.Fatalf("template %s revision %d, want %s revision 2", templateImage(after), k8s.Revision(after), image(2))
	}
	// old pods wait out their grace period (8 s) before kwok deletes them
	eventually(t, 30*time.Second, func() string {
		rss, err := cs.AppsV1().ReplicaSets(ns).List(ctxT(t), metav1.ListOptions{})
		if err != nil {
			return err.Error()
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctxT(t), metav1.ListOptions{})
		if err != nil {
			return err.Error()
		}
		owner := map[string]string{}
		for _, p := range pods.Items {
			for _, o := range p.OwnerReferences {
				owner[p.Name] = o.Name
			}
		}
		var bad []string
		for _, rs := range rss.Items {
			n := 0
			for _, o := range owner {
				if o == rs.Name {
					n++
				}
			}
			isNew := rs.Spec.Template.Spec.Containers[0].Image == image(2)
			if isNew && (n != 2 || rs.Status.AvailableReplicas != 2) || !isNew && (n != 0 || rs.Status.Replicas != 0) {
				bad = append(bad, fmt.Sprintf("%s (revision %d, %s): %d pods, status.replicas %d", rs.Name, k8s.Revision(&rs),
					rs.Spec.Template.Spec.Containers[0].Image, n, rs.Status.Replicas))
			}
		}
		if len(bad) > 0 {
			return "want only the new ReplicaSet with pods: " + strings.Join(bad, "; ")
		}
		return ""
	})
}

// (3) a version whose pods never become ready: catdog deploy rolls back by itself.
func testNeverReady(t *testing.T, f *fixture) {
	ns := "never-ready"
	kc := f.c.Deployer(t, ns, f.rbac)
	f.mustDeploy(t, kc, ns, "--image", image(1), "--model-version", "1")
	start := time.Now()
	out, code := f.deploy(t, kc, ns, "--image", image(3), "--model-version", "never-ready")
	if code == 0 {
		t.Fatalf("catdog deploy of a never-ready version exited 0")
	}
	for _, want := range []string{"exceeded its progress deadline (progressDeadlineSeconds 8)", "rolled back to revision 3", image(1)} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	d := getDeployment(t, f.c.Admin, ns)
	if templateImage(d) != image(1) || d.Annotations[k8s.AnnotationImageDigest] != k8s.Digest(image(1)) ||
		d.Spec.Template.Labels[k8s.LabelVersion] != "1" {
		t.Errorf("after the rollback: template %s, digest annotation %s, version label %s; want %s, version 1",
			templateImage(d), d.Annotations[k8s.AnnotationImageDigest], d.Spec.Template.Labels[k8s.LabelVersion], image(1))
	}
	if msg, done, err := k8s.RolloutStatus(d); !done || err != nil || d.Status.AvailableReplicas != 2 {
		t.Errorf("after the rollback: %s done=%v err=%v available=%d", msg, done, err, d.Status.AvailableReplicas)
	}
	t.Logf("never-ready deploy to rollback complete: %v", time.Since(start).Round(10*time.Millisecond))
}

// (4) a version that becomes ready but fails the smoke test (a real catdog serve whose model
// gives NaN probabilities): rollback.
func testSmokeFailure(t *testing.T, f *fixture) {
	ns := "smoke"
	kc := f.c.Deployer(t, ns, f.rbac)
	f.mustDeploy(t, kc, ns, "--image", image(1), "--model-version", "1")
	before := strings.Count(f.broken.Output(), "NaN probabilities")
	gh := newActionsRun(t)
	out, code := f.deployWith(t, invocation{kubeconfig: kc, env: gh.env()}, ns, "--image", image(4), "--model-version", "broken")
	if code == 0 {
		t.Fatalf("catdog deploy of a version failing its smoke test exited 0")
	}
	for _, want := range []string{"smoke test of revision 2 failed", "POST /predict", "rolled back to revision 3", "::error title=catdog deploy::"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// the outputs name what serves after the rollback: the previous digest, as revision 3
	gh.check(t, map[string]string{"result": "rolled-back", "digest": k8s.Digest(image(1)), "image": image(1), "revision": "3"},
		"| result | **rolled-back** |", "| image | `"+image(1)+"` |", "| revision | 3 |", "| cause | smoke test of revision 2 failed")
	eventually(t, 5*time.Second, func() string {
		if n := strings.Count(f.broken.Output(), "NaN probabilities") - before; n < 1 {
			return fmt.Sprintf("the broken catdog serve logged %d failed predictions, want the smoke test's", n)
		}
		return ""
	})
	d := getDeployment(t, f.c.Admin, ns)
	if templateImage(d) != image(1) || d.Spec.Template.Labels[k8s.LabelVersion] != "1" {
		t.Errorf("after the rollback: template %s version %s, want %s version 1", templateImage(d), d.Spec.Template.Labels[k8s.LabelVersion], image(1))
	}
	if _, done, err := k8s.RolloutStatus(d); !done || err != nil {
		t.Errorf("after the rollback the rollout is not complete: %v", err)
	}
}

// --timeout bounds the whole deploy: a version that is still rolling out when it runs out is
// rolled back (the rollback has its own --rollback-timeout). An interrupt (SIGINT) during the
// rollout wait is reported as one — exit 130, no "did not finish in time" — and rolls nothing
// back.
func testLimits(t *testing.T, f *fixture) {
	ns := "limits"
	kc := f.c.Deployer(t, ns, f.rbac)
	f.mustDeploy(t, kc, ns, "--image", image(1), "--model-version", "1")

	// a 60 s progress deadline: only the 4 s time limit can end this rollout
	start := time.Now()
	out, code := f.deploy(t, kc, ns, "--image", image(3), "--model-version", "never-ready",
		"--progress-deadline", "60s", "--timeout", "4s", "--rollback-timeout", "60s")
	took := time.Since(start)
	if code != 1 {
		t.Errorf("deploy out of time: exit %d, want 1", code)
	}
	for _, want := range []string{"rollout did not finish in time: deploy time limit reached (4s)", "rolled back to revision 3", image(1)} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if d := getDeployment(t, f.c.Admin, ns); templateImage(d) != image(1) || k8s.Revision(d) != 3 {
		t.Errorf("after the time limit: template %s revision %d, want %s revision 3 (rolled back)", templateImage(d), k8s.Revision(d), image(1))
	}
	if took > 40*time.Second {
		t.Errorf("deploy with --timeout 4s took %v", took)
	}

	// interrupt during the rollout wait of another never-ready version
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"deploy", "--kubeconfig", kc, "--namespace", ns, "--sample", f.sample}, deployFlags...)
	args = append(args, "--image", image(5), "--model-version", "never-ready", "--progress-deadline", "60s")
	cmd := exec.CommandContext(ctx, f.bin, args...)
	cmd.Env = append(os.Environ(), "GITHUB_ACTIONS=", "GITHUB_OUTPUT=", "GITHUB_STEP_SUMMARY=", "KUBECONFIG=")
	var buf testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() string {
		if !strings.Contains(buf.String(), "new replicas have been updated") {
			return "catdog deploy has not reported the rollout wait yet:\n" + buf.String()
		}
		return ""
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	out = buf.String()
	t.Logf("interrupted catdog deploy (%v):\n%s", err, out)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("interrupted deploy: %v, want exit 130", err)
	}
	for _, want := range []string{"rollout wait interrupted", "not rolled back (interrupted)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"did not finish in time", "rolled back to"} {
		if strings.Contains(out, bad) {
			t.Errorf("an interrupt is reported as %q:\n%s", bad, out)
		}
	}
	if d := getDeployment(t, f.c.Admin, ns); templateImage(d) != image(5) {
		t.Errorf("after the interrupt the template runs %s, want %s left in place", templateImage(d), image(5))
	}
}

// (5) re-applying the same spec changes nothing (generation stays) and leaves the replica
// count the HPA set alone.
func testReapply(t *testing.T, f *fixture) {
	ns := "reapply"
	kc := f.c.Deployer(t, ns, f.rbac)
	args := []string{"--image", image(5), "--model-version", "5"}
	f.mustDeploy(t, kc, ns, args...)
	cs := f.c.Admin
	// scale as the HPA controller does: through the scale subresource
	scale, err := cs.AppsV1().Deployments(ns).GetScale(ctxT(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 3
	if _, err := cs.AppsV1().Deployments(ns).UpdateScale(ctxT(t), name, scale, metav1.UpdateOptions{FieldManager: "horizontal-pod-autoscaler"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() string {
		if d := getDeployment(t, cs, ns); d.Status.AvailableReplicas != 3 {
			return fmt.Sprintf("available %d, want 3 after scaling", d.Status.AvailableReplicas)
		}
		return ""
	})
	before := getDeployment(t, cs, ns)
	out := f.mustDeploy(t, kc, ns, args...)
	if !strings.Contains(out, "unchanged") {
		t.Errorf("re-apply output does not say unchanged:\n%s", out)
	}
	after := getDeployment(t, cs, ns)
	if after.Generation != before.Generation || after.ResourceVersion != before.ResourceVersion {
		t.Errorf("re-apply changed the Deployment: generation %d -> %d, resourceVersion %s -> %s",
			before.Generation, after.Generation, before.ResourceVersion, after.ResourceVersion)
	}
	if *after.Spec.Replicas != 3 {
		t.Errorf("re-apply reset spec.replicas to %d, want the HPA's 3", *after.Spec.Replicas)
	}
	for _, m := range after.ManagedFields {
		if m.Manager == k8s.FieldManager && m.FieldsV1 != nil && bytes.Contains(m.FieldsV1.GetRawBytes(), []byte(`"f:replicas"`)) {
			t.Errorf("field manager %s owns spec.replicas: %s", k8s.FieldManager, m.FieldsV1.GetRawBytes())
		}
	}
}

// (6) the real kubectl accepts deploy/k8s/ server-side and lists catdog's revisions with
// their change-cause.
func testKubectl(t *testing.T, f *fixture) {
	ns := k8s.DefaultNamespace // the namespace of the rendered manifests
	kc := f.c.Deployer(t, ns, f.rbac)
	ctx := ctxT(t)
	root := testenv.RepoRoot(t)
	out, err := f.c.Kubectl(ctx, f.c.AdminKubeconfig, "apply", "--dry-run=server", "-f", filepath.Join(root, "deploy", "k8s"))
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server -f deploy/k8s: %v\n%s", err, out)
	}
	for _, want := range []string{"deployment.apps/catdog created (server dry run)", "horizontalpodautoscaler.autoscaling/catdog created (server dry run)",
		"poddisruptionbudget.policy/catdog created (server dry run)", "role.rbac.authorization.k8s.io/catdog-deployer", "service/catdog created (server dry run)"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply --dry-run=server output lacks %q:\n%s", want, out)
		}
	}
	// the deployer itself can kubectl apply the rendered objects (client-side apply reads each
	// one first: the Role's get on catdog's objects)
	out, err = f.c.Kubectl(ctx, kc, "apply", "--dry-run=server", "-f", filepath.Join(root, "deploy", "k8s", "catdog.yaml"))
	if err != nil || !strings.Contains(out, "deployment.apps/catdog created (server dry run)") {
		t.Errorf("kubectl apply --dry-run=server -f deploy/k8s/catdog.yaml as the deployer: %v\n%s", err, out)
	}
	f.mustDeploy(t, kc, ns, "--image", image(6), "--model-version", "6")
	f.mustDeploy(t, kc, ns, "--image", image(7), "--model-version", "7")
	out, err = f.c.Kubectl(ctx, kc, "rollout", "history", "deployment/"+name)
	if err != nil {
		t.Fatalf("kubectl rollout history (as the deployer): %v\n%s", err, out)
	}
	t.Logf("kubectl rollout history:\n%s", out)
	for i, img := range []string{image(6), image(7)} {
		want := regexp.MustCompile(`(?m)^` + strconv.Itoa(i+1) + `\s+catdog deploy ` + regexp.QuoteMeta(img) + ` \(model catdog v` + strconv.Itoa(i+6) + `\)$`)
		if !want.MatchString(out) {
			t.Errorf("kubectl rollout history lacks revision %d with change-cause for %s:\n%s", i+1, img, out)
		}
	}

	// catdog's own history, status and rollback agree with kubectl
	sub := []string{"--kubeconfig", kc, "--namespace", ns}
	out, code := f.catdogCmd(t, append([]string{"deploy", "history"}, sub...)...)
	if code != 0 || !regexp.MustCompile(`(?m)^2\s+\*\s+2\s+\S+\s+catdog deploy `+regexp.QuoteMeta(image(7))).MatchString(out) ||
		!regexp.MustCompile(`(?m)^1\s+0\s+\S+\s+catdog deploy `+regexp.QuoteMeta(image(6))).MatchString(out) {
		t.Errorf("catdog deploy history (exit %d):\n%s", code, out)
	}
	out, code = f.catdogCmd(t, append([]string{"deploy", "status"}, sub...)...)
	if code != 0 || !strings.Contains(out, "successfully rolled out") || !strings.Contains(out, "revision 2  image "+image(7)) {
		t.Errorf("catdog deploy status (exit %d):\n%s", code, out)
	}
	out, code = f.catdogCmd(t, append([]string{"deploy", "rollback"}, sub...)...)
	if code != 0 || !strings.Contains(out, "rolled back: revision 3 serves "+image(6)) {
		t.Errorf("catdog deploy rollback (exit %d):\n%s", code, out)
	}
	out, err = f.c.Kubectl(ctx, kc, "rollout", "history", "deployment/"+name)
	if err != nil || !regexp.MustCompile(`(?m)^3\s+catdog deploy `+regexp.QuoteMeta(image(6))).MatchString(out) {
		t.Errorf("kubectl rollout history after catdog deploy rollback (%v): want revision 3 = %s\n%s", err, image(6), out)
	}
	if d := getDeployment(t, f.c.Admin, ns); templateImage(d) != image(6) {
		t.Errorf("after catdog deploy rollback the template runs %s, want %s", templateImage(d), image(6))
	}
}

// catdogCmd runs a catdog subcommand (no deploy spec flags) and returns its output and exit code.
func (f *fixture) catdogCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, f.bin, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatalf("catdog %v: %v\n%s", args, err, out)
	}
	return string(out), 0
}

// Bad input gets a clear error and changes nothing.
func testBadInput(t *testing.T, f *fixture) {
	ns := "bad-input"
	kc := f.c.Deployer(t, ns, f.rbac)
	other := "other"
	if _, err := f.c.Admin.CoreV1().Namespaces().Create(ctxT(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	unreachable := filepath.Join(t.TempDir(), "unreachable.kubeconfig")
	port := testenv.FreePort(t)
	cfg, err := os.ReadFile(f.c.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unreachable, bytes.ReplaceAll(cfg, []byte(f.c.Server), []byte("https://127.0.0.1:"+strconv.Itoa(port))), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, kubeconfig, ns string
		args                 []string
		want                 []string
	}{
		{"unpinned image", kc, ns, []string{"--image", "registry.test/catdog:latest"}, []string{"not pinned by digest", "--allow-tag"}},
		{"unreachable API server", unreachable, ns, []string{"--image", image(8)}, []string{"API server unreachable at https://127.0.0.1:" + strconv.Itoa(port)}},
		{"forbidden by RBAC", kc, other, []string{"--image", image(8)}, []string{"forbidden by RBAC", `cannot get resource "deployments" in API group "apps"`}},
		{"missing namespace", f.c.AdminKubeconfig, "nowhere", []string{"--image", image(8)}, []string{"namespace not found", `namespaces "nowhere" not found`}},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			out, code := f.deploy(t, c.kubeconfig, c.ns, c.args...)
			if code == 0 {
				t.Fatalf("exit 0")
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, n := range []string{ns, other} {
				if _, err := f.c.Admin.AppsV1().Deployments(n).Get(ctxT(t), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("a Deployment exists in %s after the failed deploy (%v)", n, err)
				}
				if _, err := f.c.Admin.CoreV1().Services(n).Get(ctxT(t), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("a Service exists in %s after the failed deploy (%v)", n, err)
				}
			}
		})
	}
}
