package k8s

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const testImage = "127.0.0.1:5000/catdog@sha256:1111111111111111111111111111111111111111111111111111111111111111"

// typed converts an apply configuration into the API type, refusing unknown fields.
func typed[T any](t *testing.T, ac any) T {
	t.Helper()
	j, err := json.Marshal(ac)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decode %T: %v\n%s", out, err, j)
	}
	return out
}

func testSpec() Spec {
	return Spec{Image: testImage, Model: Model{Name: "catdog", Version: "7", RunID: "0123abcd"}}
}

func TestDeploymentObject(t *testing.T) {
	objs, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	d := typed[appsv1.Deployment](t, objs.Deployment)
	if d.Kind != "Deployment" || d.APIVersion != "apps/v1" || d.Name != "catdog" || d.Namespace != "catdog" {
		t.Fatalf("type/name: %+v", d.TypeMeta)
	}
	if d.Spec.Replicas != nil {
		t.Errorf("replicas = %d: the HPA owns replicas, the applied Deployment must leave it out", *d.Spec.Replicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
		*ru.MaxUnavailable != intstr.FromInt32(0) || *ru.MaxSurge != intstr.FromInt32(1) {
		t.Errorf("strategy: %+v", d.Spec.Strategy)
	}
	if d.Spec.ProgressDeadlineSeconds == nil || *d.Spec.ProgressDeadlineSeconds != 120 {
		t.Errorf("progressDeadlineSeconds: %v", d.Spec.ProgressDeadlineSeconds)
	}
	sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels)
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %v does not match template labels %v", sel, d.Spec.Template.Labels)
	}
	for _, k := range []string{LabelName, LabelInstance, LabelComponent, LabelPartOf, LabelManagedBy, LabelVersion} {
		if d.Spec.Template.Labels[k] == "" {
			t.Errorf("template label %s missing", k)
		}
	}
	if _, ok := d.Spec.Selector.MatchLabels[LabelVersion]; ok {
		t.Error("the selector must not include the version (it is immutable)")
	}
	wantAnn := map[string]string{
		AnnotationImageDigest: "sha256:" + strings.Repeat("1", 64), AnnotationModelName: "catdog",
		AnnotationModelVersion: "7", AnnotationRunID: "0123abcd",
		"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics",
	}
	for k, v := range wantAnn {
		if got := d.Spec.Template.Annotations[k]; got != v {
			t.Errorf("template annotation %s = %q, want %q", k, got, v)
		}
	}
	if got := d.Annotations[AnnotationChangeCause]; !strings.Contains(got, testImage) || !strings.Contains(got, "v7") {
		t.Errorf("change-cause %q", got)
	}

	pod := d.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken || pod.ServiceAccountName != "catdog" {
		t.Errorf("service account token: %v %q", pod.AutomountServiceAccountToken, pod.ServiceAccountName)
	}
	psc := pod.SecurityContext
	if psc == nil || !*psc.RunAsNonRoot || *psc.RunAsUser != 65532 || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context: %+v", psc)
	}
	if len(pod.TopologySpreadConstraints) != 1 || pod.TopologySpreadConstraints[0].TopologyKey != corev1.LabelHostname {
		t.Errorf("topology spread: %+v", pod.TopologySpreadConstraints)
	}
	// grace = preStop 5 + drain 5 + shutdown 30 + 5 margin
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds != 45 {
		t.Errorf("terminationGracePeriodSeconds: %v", pod.TerminationGracePeriodSeconds)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("containers: %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != testImage {
		t.Errorf("image %q", c.Image)
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--model /models/current", "--addr :8080", "--drain-delay 5s", "--shutdown-timeout 30s", "--model-version 7"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds != 5 {
		t.Errorf("preStop: %+v", c.Lifecycle)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != PortName || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports: %+v", c.Ports)
	}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := "/ready"
		if name == "liveness" {
			want = "/health"
		}
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port != intstr.FromString(PortName) {
			t.Errorf("%s probe: %+v", name, p)
		}
	}
	if c.StartupProbe.PeriodSeconds*c.StartupProbe.FailureThreshold < 60 {
		t.Errorf("startup probe allows only %d s of loading", c.StartupProbe.PeriodSeconds*c.StartupProbe.FailureThreshold)
	}
	sc := c.SecurityContext
	if sc == nil || !*sc.RunAsNonRoot || *sc.RunAsUser != 65532 || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation ||
		len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container security context: %+v", sc)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/tmp" || pod.Volumes[0].EmptyDir == nil {
		t.Errorf("writable /tmp: %+v %+v", c.VolumeMounts, pod.Volumes)
	}
	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Cpu().String() != "500m" || req.Memory().String() != "256Mi" || lim.Cpu().String() != "2" || lim.Memory().String() != "512Mi" {
		t.Errorf("resources: %v / %v", req, lim)
	}
	if len(c.Env) != 1 || c.Env[0].Name != "CATDOG_THREADS" || c.Env[0].Value != "2" {
		t.Errorf("env: %+v", c.Env)
	}
}

func TestServiceHPAPDB(t *testing.T) {
	spec := testSpec()
	spec.MaxReplicas = 9
	objs, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	d := typed[appsv1.Deployment](t, objs.Deployment)
	svc := typed[corev1.Service](t, objs.Service)
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != PortName ||
		svc.Spec.Ports[0].TargetPort != intstr.FromString(PortName) {
		t.Errorf("service: %+v", svc.Spec)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("service selector %v does not select the pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	sa := typed[corev1.ServiceAccount](t, objs.ServiceAccount)
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("service account must not automount its token")
	}
	hpa := typed[autoscalingv2.HorizontalPodAutoscaler](t, objs.HPA)
	if hpa.APIVersion != "autoscaling/v2" || hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != d.Name ||
		*hpa.Spec.MinReplicas != 2 || hpa.Spec.MaxReplicas != 9 {
		t.Errorf("hpa: %+v", hpa.Spec)
	}
	m := hpa.Spec.Metrics
	if len(m) != 1 || m[0].Resource.Name != corev1.ResourceCPU || *m[0].Resource.Target.AverageUtilization != 70 {
		t.Errorf("hpa metrics: %+v", m)
	}
	if w := hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds; w == nil || *w != 300 {
		t.Errorf("scale-down stabilisation: %v", w)
	}
	pdb := typed[policyv1.PodDisruptionBudget](t, objs.PDB)
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) ||
		!labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("pdb: %+v", pdb.Spec)
	}
}

// TestDeployerRBAC: the deployer's Role grants exactly the requests catdog deploy, deploy
// status/history/rollback, the smoke test, kubectl rollout history and kubectl's client-side
// apply of deploy/k8s/catdog.yaml make (the e2e tests run them all as this identity), each
// limited to catdog's objects where RBAC can limit it.
func TestDeployerRBAC(t *testing.T) {
	r, err := BuildRBAC(Spec{})
	if err != nil {
		t.Fatal(err)
	}
	role := typed[rbacv1.Role](t, r.Role)
	var grants []string
	for _, rule := range role.Rules {
		if has(rule.Verbs, "*") || has(rule.Resources, "*") || has(rule.APIGroups, "*") {
			t.Errorf("wildcard rule %+v", rule)
		}
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, v := range rule.Verbs {
					names := "*"
					if len(rule.ResourceNames) > 0 {
						names = strings.Join(rule.ResourceNames, ",")
					}
					grants = append(grants, fmt.Sprintf("%s %s/%s %s", v, g, res, names))
				}
			}
		}
	}
	sort.Strings(grants)
	want := []string{
		"create /pods/proxy *", // smoke test: POST /predict
		"create /serviceaccounts *",
		"create /services *",
		"create apps/deployments *",
		"create autoscaling/horizontalpodautoscalers *",
		"create policy/poddisruptionbudgets *",
		"get /pods/proxy *",           // smoke test: GET /health, /ready, /version
		"get /serviceaccounts catdog", // kubectl apply -f (client-side: reads first)
		"get /services catdog",
		"get policy/poddisruptionbudgets catdog",
		"get apps/deployments catdog",                     // deploy (state before), status, history, rollback
		"get autoscaling/horizontalpodautoscalers catdog", // deploy status
		"list /pods *",                                    // smoke test: the new revision's pods
		"list apps/deployments catdog",                    // rollout wait (field selector metadata.name)
		"list apps/replicasets *",                         // history, rollback, smoke test
		"patch /serviceaccounts catdog",                   // server-side apply
		"patch /services catdog",
		"patch apps/deployments catdog",
		"patch autoscaling/horizontalpodautoscalers catdog",
		"patch policy/poddisruptionbudgets catdog",
		"watch apps/deployments catdog",
	}
	sort.Strings(want)
	if !slices.Equal(grants, want) {
		t.Errorf("the Role grants\n  %s\nwant exactly\n  %s", strings.Join(grants, "\n  "), strings.Join(want, "\n  "))
	}
	rb := typed[rbacv1.RoleBinding](t, r.RoleBinding)
	if rb.RoleRef.Name != role.Name || rb.Subjects[0].Kind != "ServiceAccount" || rb.Subjects[0].Name != "catdog-deployer" {
		t.Errorf("binding: %+v", rb)
	}
}

func has(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		mut  func(*Spec)
		want string // "" = valid
	}{
		{"valid", func(*Spec) {}, ""},
		{"tag", func(s *Spec) { s.Image = "ghcr.io/x/catdog:v1" }, "not pinned by digest"},
		{"tag allowed", func(s *Spec) { s.Image = "ghcr.io/x/catdog:v1"; s.AllowTag = true }, ""},
		{"no image", func(s *Spec) { s.Image = "" }, "image is required"},
		{"short digest", func(s *Spec) { s.Image = "ghcr.io/x/catdog@sha256:abc" }, "malformed digest"},
		{"bad name", func(s *Spec) { s.Name = "Cat_Dog" }, "name"},
		{"bad namespace", func(s *Spec) { s.Namespace = "-x" }, "namespace"},
		{"replicas", func(s *Spec) { s.Replicas = 4; s.MaxReplicas = 3 }, "below replicas"},
		{"cpu", func(s *Spec) { s.Resources.CPURequest = "lots" }, "cpu request"},
		{"cpu over limit", func(s *Spec) { s.Resources.CPURequest = "3" }, "exceeds limit"},
		{"deadline", func(s *Spec) { s.ProgressDeadline = 1500 * time.Millisecond }, "whole seconds"},
		{"version label", func(s *Spec) { s.Model.Version = "v 1" }, "model version"},
		{"root", func(s *Spec) { s.UID = -1 }, "non-root"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := testSpec()
			c.mut(&s)
			_, err := Build(s)
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrInvalidSpec containing %q", err, c.want)
			}
		})
	}
}

func TestRenderRoundTrips(t *testing.T) {
	objs, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Render(&buf, []string{"header"}, objs.List()...); err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(buf.String(), "---\n")
	if !strings.HasPrefix(docs[0], "# header") || len(docs) != 6 {
		t.Fatalf("%d documents:\n%s", len(docs), buf.String())
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(docs[3]), &d); err != nil {
		t.Fatal(err)
	}
	if d.Kind != "Deployment" || d.Spec.Template.Spec.Containers[0].Image != testImage {
		t.Fatalf("round trip: %+v", d.TypeMeta)
	}
}
