// Package k8s deploys catdog serve to Kubernetes: one typed Spec builds every object as a
// client-go apply configuration (Deployment, Service, ServiceAccount, HorizontalPodAutoscaler,
// PodDisruptionBudget and the deployer's Role/RoleBinding); Deployer applies them server-side,
// waits for the rollout as `kubectl rollout status` decides, smoke-tests the new pods through the
// API server's pod proxy and rolls back as `kubectl rollout undo` does when either fails.
//
// Progress is reported as data (an Event callback); nothing in this package draws.
package k8s

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Defaults of a Spec. The resources are sized from catdog serve's measured resident memory
// (192 MiB after load at concurrency 32 with a 224×224 model, BENCHMARKS.md) and its two
// libtorch threads; the grace period covers the preStop sleep, serve's drain delay and its
// shutdown timeout.
const (
	DefaultName             = "catdog"
	DefaultNamespace        = "catdog"
	DefaultReplicas         = 2
	DefaultMaxReplicas      = 6
	DefaultTargetCPU        = 70
	DefaultPort             = 8080
	DefaultUID              = 65532
	DefaultModelPath        = "/models/current"
	DefaultCPURequest       = "500m"
	DefaultCPULimit         = "2"
	DefaultMemoryRequest    = "256Mi"
	DefaultMemoryLimit      = "512Mi"
	DefaultProgressDeadline = 120 * time.Second
	DefaultPreStopSleep     = 5 * time.Second
	DefaultDrainDelay       = 5 * time.Second
	DefaultShutdownTimeout  = 30 * time.Second
	DefaultScaleDownWindow  = 5 * time.Minute
	DefaultDeployerName     = "catdog-deployer"
	FieldManager            = "catdog"
)

// Annotation and label keys catdog writes.
const (
	AnnotationImageDigest  = "catdog.dev/image-digest"
	AnnotationModelName    = "catdog.dev/model-name"
	AnnotationModelVersion = "catdog.dev/model-version"
	AnnotationRunID        = "catdog.dev/mlflow-run-id"
	AnnotationChangeCause  = "kubernetes.io/change-cause"
	LabelName              = "app.kubernetes.io/name"
	LabelInstance          = "app.kubernetes.io/instance"
	LabelVersion           = "app.kubernetes.io/version"
	LabelComponent         = "app.kubernetes.io/component"
	LabelPartOf            = "app.kubernetes.io/part-of"
	LabelManagedBy         = "app.kubernetes.io/managed-by"
)

// Model identifies the model the image serves (from the MLflow registry).
type Model struct {
	Name    string // registered model name, e.g. "catdog"
	Version string // registry version, e.g. "3"
	RunID   string // MLflow run id that produced it
}

// Resources are Kubernetes quantities ("500m", "256Mi").
type Resources struct {
	CPURequest, CPULimit       string
	MemoryRequest, MemoryLimit string
}

// Spec is everything a deployment of catdog serve varies by. The zero value of a field means
// its default (see WithDefaults); Image is required.
type Spec struct {
	Name      string
	Namespace string
	// Image is the reference pushed by CI, pinned by digest (repo@sha256:…), unless AllowTag.
	Image    string
	AllowTag bool
	Model    Model

	Replicas    int32 // HPA minimum and the first rollout's replica count
	MaxReplicas int32 // HPA maximum
	TargetCPU   int32 // HPA CPU utilisation target, percent of the request
	// ScaleDownWindow is the HPA's scale-down stabilisation window.
	ScaleDownWindow time.Duration
	Resources       Resources

	Port      int32  // container port of catdog serve (the image's)
	UID       int64  // the image's non-root uid
	ModelPath string // model directory inside the image

	ProgressDeadline time.Duration
	// PreStopSleep keeps a terminating pod serving while endpoints are withdrawn; then SIGTERM
	// starts serve's own drain (DrainDelay of 503 on /ready, then ShutdownTimeout for in-flight
	// requests). The grace period is their sum plus a margin.
	PreStopSleep    time.Duration
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration

	// Deployer is the name of the least-privilege ServiceAccount/Role/RoleBinding for CD.
	Deployer string
}

// ErrInvalidSpec is wrapped by every validation error of a Spec.
var ErrInvalidSpec = errors.New("invalid deployment spec")

// WithDefaults returns s with every zero field set to its default.
func (s Spec) WithDefaults() Spec {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.Name, DefaultName)
	def(&s.Namespace, DefaultNamespace)
	def(&s.ModelPath, DefaultModelPath)
	def(&s.Deployer, DefaultDeployerName)
	def(&s.Resources.CPURequest, DefaultCPURequest)
	def(&s.Resources.CPULimit, DefaultCPULimit)
	def(&s.Resources.MemoryRequest, DefaultMemoryRequest)
	def(&s.Resources.MemoryLimit, DefaultMemoryLimit)
	if s.Replicas == 0 {
		s.Replicas = DefaultReplicas
	}
	if s.MaxReplicas == 0 {
		s.MaxReplicas = max(DefaultMaxReplicas, s.Replicas)
	}
	if s.TargetCPU == 0 {
		s.TargetCPU = DefaultTargetCPU
	}
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.UID == 0 {
		s.UID = DefaultUID
	}
	defDur(&s.ScaleDownWindow, DefaultScaleDownWindow)
	defDur(&s.ProgressDeadline, DefaultProgressDeadline)
	defDur(&s.PreStopSleep, DefaultPreStopSleep)
	defDur(&s.DrainDelay, DefaultDrainDelay)
	defDur(&s.ShutdownTimeout, DefaultShutdownTimeout)
	return s
}

// digestRef is repo[:tag]@sha256:<64 hex>.
var digestRef = regexp.MustCompile(`^[a-z0-9]+(?:[._/:-][a-z0-9]+)*(?::[\w][\w.-]{0,127})?@sha256:[a-f0-9]{64}$`)

// Digest returns the sha256 digest of a digest-pinned reference, or "" for a tag.
func Digest(image string) string {
	if i := strings.LastIndex(image, "@"); i >= 0 && strings.HasPrefix(image[i+1:], "sha256:") {
		return image[i+1:]
	}
	return ""
}

// Validate checks a defaulted spec. Every error wraps ErrInvalidSpec.
func (s Spec) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	for _, f := range []struct{ field, v string }{{"name", s.Name}, {"namespace", s.Namespace}, {"deployer", s.Deployer}} {
		if msgs := validation.IsDNS1123Label(f.v); len(msgs) > 0 {
			bad("%s %q: %s", f.field, f.v, strings.Join(msgs, "; "))
		}
	}
	switch {
	case s.Image == "":
		bad("image is required (repo@sha256:…, as CI pushed it)")
	case strings.ContainsAny(s.Image, " \t\n"):
		bad("image %q contains white space", s.Image)
	case Digest(s.Image) == "" && !s.AllowTag:
		bad("image %q is not pinned by digest (repo@sha256:…); a tag can move under a running deployment — pass --allow-tag to deploy it anyway", s.Image)
	case Digest(s.Image) != "" && !digestRef.MatchString(s.Image):
		bad("image %q: malformed digest reference (want repo@sha256:<64 hex digits>)", s.Image)
	}
	if s.Replicas < 1 {
		bad("replicas %d: must be at least 1", s.Replicas)
	}
	if s.MaxReplicas < s.Replicas {
		bad("max replicas %d is below replicas %d", s.MaxReplicas, s.Replicas)
	}
	if s.TargetCPU < 1 || s.TargetCPU > 100 {
		bad("target CPU utilisation %d%%: must be 1–100", s.TargetCPU)
	}
	if s.Port < 1 || s.Port > 65535 {
		bad("port %d: out of range", s.Port)
	}
	if s.UID < 1 {
		bad("uid %d: must be a non-root uid", s.UID)
	}
	if !strings.HasPrefix(s.ModelPath, "/") {
		bad("model path %q: must be absolute", s.ModelPath)
	}
	for _, q := range []struct{ field, v string }{
		{"cpu request", s.Resources.CPURequest}, {"cpu limit", s.Resources.CPULimit},
		{"memory request", s.Resources.MemoryRequest}, {"memory limit", s.Resources.MemoryLimit},
	} {
		if _, err := resource.ParseQuantity(q.v); err != nil {
			bad("%s %q: %v", q.field, q.v, err)
		}
	}
	if len(errs) == 0 {
		cmp := func(a, b string) int { qa, qb := resource.MustParse(a), resource.MustParse(b); return qa.Cmp(qb) }
		if cmp(s.Resources.CPURequest, s.Resources.CPULimit) > 0 {
			bad("cpu request %s exceeds limit %s", s.Resources.CPURequest, s.Resources.CPULimit)
		}
		if cmp(s.Resources.MemoryRequest, s.Resources.MemoryLimit) > 0 {
			bad("memory request %s exceeds limit %s", s.Resources.MemoryRequest, s.Resources.MemoryLimit)
		}
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"progress deadline", s.ProgressDeadline}, {"preStop sleep", s.PreStopSleep}, {"drain delay", s.DrainDelay},
		{"shutdown timeout", s.ShutdownTimeout}, {"scale-down window", s.ScaleDownWindow}} {
		if d.v < time.Second || d.v%time.Second != 0 {
			bad("%s %v: must be whole seconds, at least 1 s", d.field, d.v)
		}
	}
	if s.ProgressDeadline <= s.DrainDelay {
		bad("progress deadline %v must exceed the drain delay %v", s.ProgressDeadline, s.DrainDelay)
	}
	for k, v := range map[string]string{"model name": s.Model.Name, "model version": s.Model.Version, "run id": s.Model.RunID} {
		if len(v) > 253 || strings.ContainsAny(v, "\n\r") {
			bad("%s %q: at most 253 characters on one line", k, v)
		}
	}
	if s.Model.Version != "" {
		if msgs := validation.IsValidLabelValue(s.Model.Version); len(msgs) > 0 {
			bad("model version %q: %s", s.Model.Version, strings.Join(msgs, "; "))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidSpec, errors.Join(errs...))
	}
	return nil
}

// gracePeriod is terminationGracePeriodSeconds: preStop sleep + drain delay + shutdown timeout
// + 5 s margin, so that SIGKILL never cuts serve's drain short.
func (s Spec) gracePeriod() time.Duration {
	return s.PreStopSleep + s.DrainDelay + s.ShutdownTimeout + 5*time.Second
}

// ChangeCause is the deterministic kubernetes.io/change-cause of a spec (no time stamps, so
// re-applying an unchanged spec changes nothing).
func (s Spec) ChangeCause() string {
	cause := "catdog deploy " + s.Image
	if s.Model.Name != "" || s.Model.Version != "" {
		cause += fmt.Sprintf(" (model %s v%s", orDash(s.Model.Name), orDash(s.Model.Version))
		if s.Model.RunID != "" {
			cause += ", run " + s.Model.RunID
		}
		cause += ")"
	}
	return cause
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
