package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
)

// Stage names a step of a deploy in progress events.
type Stage string

// The stages of a deploy.
const (
	StageValidate Stage = "validate" // server-side dry run of every object
	StageApply    Stage = "apply"
	StageRollout  Stage = "rollout"
	StageSmoke    Stage = "smoke"
	StageRollback Stage = "rollback"
)

// Event is one progress report. Progress is set for rollout states.
type Event struct {
	Stage    Stage
	Message  string
	Progress *Progress
}

// Outcome is how a deploy ended.
type Outcome string

// Outcomes of Deploy.
const (
	OutcomeDeployed   Outcome = "deployed"    // new revision rolled out and smoke-tested
	OutcomeUnchanged  Outcome = "unchanged"   // the spec was already applied; nothing changed
	OutcomeRolledBack Outcome = "rolled-back" // failed, and the previous revision is serving again
	OutcomeFailed     Outcome = "failed"      // failed, and no rollback happened (or it failed too)
)

// Errors callers branch on.
var (
	ErrNamespaceNotFound  = errors.New("namespace not found")
	ErrForbidden          = errors.New("forbidden by RBAC")
	ErrUnreachable        = errors.New("API server unreachable")
	ErrNoPreviousRevision = errors.New("no previous revision to roll back to")
)

// Result describes a finished deploy.
type Result struct {
	Outcome    Outcome
	Image      string
	Digest     string
	Revision   int64 // the Deployment's revision serving at the end
	Generation int64
	// Cause is why a deploy failed (also returned as the error).
	Cause error
	// RolledBackTo is the revision the rollback restored.
	RolledBackTo int64
}

// Deployer applies specs to a cluster. Progress, when set, receives every step.
type Deployer struct {
	Client   kubernetes.Interface
	Progress func(Event)
	// Server names the API server in errors (the kubeconfig's server URL).
	Server string
}

// Options of one deploy.
type Options struct {
	// Timeout bounds the whole deploy: reading the current state, the dry run, the apply, the
	// rollout wait and the smoke test (default 10 minutes). A failure at the limit wraps
	// ErrTimeLimit (and ErrRolloutTimeout when the rollout wait was running).
	Timeout time.Duration
	// RollbackTimeout bounds the rollback after a failure — its own deadline, started when the
	// rollback starts, so that a deploy that used up Timeout can still roll back (default:
	// Timeout). A deploy therefore ends within Timeout + RollbackTimeout.
	RollbackTimeout time.Duration
	Smoke           SmokeOptions
	// NoRollback leaves a failed version in place.
	NoRollback bool
}

func (d *Deployer) report(e Event) {
	if d.Progress != nil {
		d.Progress(e)
	}
}

// explain turns API errors into errors that name the cause: the unreachable address, the
// forbidden verb and resource (the server's message names both), the missing namespace.
func (d *Deployer) explain(err error, what string) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// the caller's context ended (an interrupt or a time limit): not the API server's fault
		return fmt.Errorf("%s: %w", what, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: %w: %w", what, ErrForbidden, err)
	case apierrors.IsNotFound(err) && isNamespaceNotFound(err):
		return fmt.Errorf("%s: %w: %w (create it first: kubectl create namespace NAME)", what, ErrNamespaceNotFound, err)
	case errors.As(err, &ue) || errors.As(err, &ne):
		addr := d.Server
		if ue != nil {
			addr = ue.URL
			if u, perr := url.Parse(ue.URL); perr == nil {
				addr = u.Scheme + "://" + u.Host
			}
		}
		return fmt.Errorf("%s: %w at %s: %w", what, ErrUnreachable, addr, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isNamespaceNotFound(err error) bool {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		det := se.Status().Details
		return det != nil && det.Kind == "namespaces"
	}
	return false
}

func applyOpts(dryRun bool) metav1.ApplyOptions {
	o := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if dryRun {
		o.DryRun = []string{metav1.DryRunAll}
	}
	return o
}

// apply applies every object of objs (server-side, field manager "catdog"); the Deployment
// gets initialReplicas when it is being created (0: leave replicas out).
func (d *Deployer) apply(ctx context.Context, objs Objects, initialReplicas int32, dryRun bool) (*appsv1.Deployment, error) {
	o := applyOpts(dryRun)
	ns := *objs.Deployment.Namespace
	cs := d.Client
	if _, err := cs.CoreV1().ServiceAccounts(ns).Apply(ctx, objs.ServiceAccount, o); err != nil {
		return nil, d.explain(err, "apply ServiceAccount "+ns+"/"+*objs.ServiceAccount.Name)
	}
	if _, err := cs.CoreV1().Services(ns).Apply(ctx, objs.Service, o); err != nil {
		return nil, d.explain(err, "apply Service "+ns+"/"+*objs.Service.Name)
	}
	dep := objs.Deployment
	if initialReplicas > 0 {
		c := *dep
		spec := *dep.Spec
		spec.Replicas = &initialReplicas
		c.Spec = &spec
		dep = &c
	}
	applied, err := cs.AppsV1().Deployments(ns).Apply(ctx, dep, o)
	if err != nil {
		return nil, d.explain(err, "apply Deployment "+ns+"/"+*dep.Name)
	}
	if initialReplicas > 0 && !dryRun {
		// Hand spec.replicas over before catdog's next apply leaves it out: a second manager
		// keeps the value, so dropping it from catdog's set does not reset it; the HPA's scale
		// updates then own it.
		hand := appsv1ac.Deployment(*dep.Name, ns).WithSpec(appsv1ac.DeploymentSpec().WithReplicas(initialReplicas))
		if _, err := cs.AppsV1().Deployments(ns).Apply(ctx, hand, metav1.ApplyOptions{FieldManager: FieldManager + "-replicas-handoff", Force: true}); err != nil {
			return nil, d.explain(err, "hand replicas of Deployment "+ns+"/"+*dep.Name+" to the HPA")
		}
	}
	if _, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Apply(ctx, objs.HPA, o); err != nil {
		return nil, d.explain(err, "apply HorizontalPodAutoscaler "+ns+"/"+*objs.HPA.Name)
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets(ns).Apply(ctx, objs.PDB, o); err != nil {
		return nil, d.explain(err, "apply PodDisruptionBudget "+ns+"/"+*objs.PDB.Name)
	}
	return applied, nil
}

// Deploy validates spec, applies it server-side, waits for the rollout, smoke-tests the new
// pods and, when the rollout or the smoke test fails, rolls back to the previous revision and
// waits for that. Bad input (an invalid spec, a missing namespace, missing permissions) is
// found by a server-side dry run of every object before anything changes.
//
// o.Timeout bounds everything up to the end of the smoke test; running out of it is a failure
// like any other (rolled back). The rollback has its own limit, o.RollbackTimeout. When ctx is
// cancelled (an interrupt) nothing is rolled back: the error wraps ErrInterrupted and
// context.Canceled and the Deployment is left as it is.
func (d *Deployer) Deploy(parent context.Context, spec Spec, o Options) (Result, error) {
	spec = spec.WithDefaults()
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.RollbackTimeout <= 0 {
		o.RollbackTimeout = o.Timeout
	}
	res := Result{Image: spec.Image, Digest: Digest(spec.Image), Outcome: OutcomeFailed}
	fail := func(err error) (Result, error) {
		res.Cause = err
		return res, err
	}
	objs, err := Build(spec)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := withLimit(parent, "deploy", o.Timeout)
	defer cancel()
	ns, name := spec.Namespace, spec.Name
	before, err := d.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) && !isNamespaceNotFound(err):
		before = nil
	case err != nil:
		return fail(stopped(ctx, d.explain(err, "get Deployment "+ns+"/"+name)))
	}
	initial := int32(0)
	if before == nil {
		initial = spec.Replicas
	}

	d.report(Event{Stage: StageValidate, Message: "server-side dry run of ServiceAccount, Service, Deployment, HorizontalPodAutoscaler, PodDisruptionBudget"})
	if _, err := d.apply(ctx, objs, initial, true); err != nil {
		return fail(stopped(ctx, err))
	}
	d.report(Event{Stage: StageApply, Message: "applying " + spec.Image + " (field manager " + FieldManager + ")"})
	applied, err := d.apply(ctx, objs, initial, false)
	if err != nil {
		return fail(stopped(ctx, err))
	}
	res.Generation = applied.Generation
	if before != nil && applied.Generation == before.Generation {
		d.report(Event{Stage: StageApply, Message: fmt.Sprintf("unchanged: generation %d, nothing to roll out", applied.Generation)})
		dep, err := d.waitRollout(ctx, ns, name, StageRollout)
		if err != nil {
			return fail(err)
		}
		res.Outcome, res.Revision = OutcomeUnchanged, Revision(dep)
		return res, nil
	}

	dep, rerr := d.waitRollout(ctx, ns, name, StageRollout)
	if rerr == nil {
		res.Revision = Revision(dep)
		d.report(Event{Stage: StageSmoke, Message: "smoke test of the new pods through the API server's pod proxy: /health, /ready, /version, /predict"})
		rerr = stopped(ctx, d.Smoke(ctx, spec, o.Smoke))
		if rerr == nil {
			res.Outcome = OutcomeDeployed
			return res, nil
		}
		rerr = fmt.Errorf("smoke test of revision %d failed: %w", res.Revision, rerr)
	}
	res.Cause = rerr
	if parent.Err() != nil {
		return fail(fmt.Errorf("%w; not rolled back (interrupted)", stopped(parent, rerr)))
	}
	if o.NoRollback || before == nil {
		if before == nil {
			rerr = fmt.Errorf("%w (first deploy: nothing to roll back to)", rerr)
		}
		return fail(rerr)
	}
	d.report(Event{Stage: StageRollback, Message: "rolling back: " + rerr.Error()})
	to, err := d.Rollback(parent, ns, name, o.RollbackTimeout)
	if err != nil {
		return fail(fmt.Errorf("%w; the rollback failed too: %w", rerr, err))
	}
	res.Outcome, res.RolledBackTo = OutcomeRolledBack, to.Revision
	res.Revision, res.Image, res.Digest = to.Revision, to.Image, Digest(to.Image)
	return res, fmt.Errorf("%w; rolled back to revision %d (%s)", rerr, to.Revision, to.Image)
}

// RevisionInfo is one ReplicaSet of a Deployment, as `kubectl rollout history` lists it.
type RevisionInfo struct {
	Revision    int64
	ReplicaSet  string
	Image       string
	ChangeCause string
	Replicas    int32
	Created     time.Time
	Current     bool
}

// History lists the Deployment's revisions, oldest first.
func (d *Deployer) History(ctx context.Context, namespace, name string) ([]RevisionInfo, error) {
	dep, rss, err := d.replicaSets(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	cur := Revision(dep)
	var out []RevisionInfo
	for _, rs := range rss {
		img := ""
		if cs := rs.Spec.Template.Spec.Containers; len(cs) > 0 {
			img = cs[0].Image
		}
		out = append(out, RevisionInfo{Revision: Revision(rs), ReplicaSet: rs.Name, Image: img,
			ChangeCause: rs.Annotations[AnnotationChangeCause], Replicas: rs.Status.Replicas,
			Created: rs.CreationTimestamp.Time, Current: Revision(rs) == cur})
	}
	return out, nil
}

// replicaSets returns the Deployment and the ReplicaSets it owns, by revision.
func (d *Deployer) replicaSets(ctx context.Context, namespace, name string) (*appsv1.Deployment, []*appsv1.ReplicaSet, error) {
	dep, err := d.Client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, d.explain(err, "get Deployment "+namespace+"/"+name)
	}
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil {
		return nil, nil, err
	}
	list, err := d.Client.AppsV1().ReplicaSets(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, nil, d.explain(err, "list ReplicaSets of "+namespace+"/"+name)
	}
	var rss []*appsv1.ReplicaSet
	for i := range list.Items {
		rs := &list.Items[i]
		if metav1.IsControlledBy(rs, dep) {
			rss = append(rss, rs)
		}
	}
	sort.Slice(rss, func(i, j int) bool { return Revision(rss[i]) < Revision(rss[j]) })
	return dep, rss, nil
}

// Rollback restores the previous revision as `kubectl rollout undo` does — the template of the
// ReplicaSet with the highest revision below the current one (without its pod-template-hash
// label) and that ReplicaSet's annotations — applied server-side as catdog, then waits for
// that rollout. timeout bounds the whole rollback (default 10 minutes); running out of it wraps
// ErrTimeLimit, a cancelled ctx ErrInterrupted.
func (d *Deployer) Rollback(ctx context.Context, namespace, name string, timeout time.Duration) (RevisionInfo, error) {
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := withLimit(ctx, "rollback", timeout)
	defer cancel()
	dep, rss, err := d.replicaSets(ctx, namespace, name)
	if err != nil {
		return RevisionInfo{}, stopped(ctx, err)
	}
	cur := Revision(dep)
	var prev *appsv1.ReplicaSet
	for _, rs := range rss {
		if r := Revision(rs); r < cur && (prev == nil || r > Revision(prev)) {
			prev = rs
		}
	}
	if prev == nil {
		return RevisionInfo{}, fmt.Errorf("deployment %s/%s at revision %d: %w", namespace, name, cur, ErrNoPreviousRevision)
	}
	tmpl := prev.Spec.Template.DeepCopy()
	delete(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	raw, err := json.Marshal(tmpl)
	if err != nil {
		return RevisionInfo{}, err
	}
	tac := &corev1ac.PodTemplateSpecApplyConfiguration{}
	if err := json.Unmarshal(raw, tac); err != nil {
		return RevisionInfo{}, fmt.Errorf("template of %s: %w", prev.Name, err)
	}
	ac, err := appsv1ac.ExtractDeployment(dep, FieldManager)
	if err != nil {
		return RevisionInfo{}, fmt.Errorf("extract catdog's fields of %s/%s: %w", namespace, name, err)
	}
	if ac.Spec == nil {
		ac.WithSpec(appsv1ac.DeploymentSpec())
	}
	ac.Spec.Template = tac
	for k, v := range prev.Annotations {
		if rollbackAnnotation(k) {
			ac.WithAnnotations(map[string]string{k: v})
		}
	}
	img := ""
	if cs := prev.Spec.Template.Spec.Containers; len(cs) > 0 {
		img = cs[0].Image
	}
	d.report(Event{Stage: StageRollback, Message: fmt.Sprintf("applying the template of revision %d (%s, %s)", Revision(prev), prev.Name, img)})
	if _, err := d.Client.AppsV1().Deployments(namespace).Apply(ctx, ac, applyOpts(false)); err != nil {
		return RevisionInfo{}, stopped(ctx, d.explain(err, "roll back Deployment "+namespace+"/"+name))
	}
	after, err := d.waitRollout(ctx, namespace, name, StageRollback)
	if err != nil {
		return RevisionInfo{}, fmt.Errorf("rollback to revision %d: %w", Revision(prev), err)
	}
	return RevisionInfo{Revision: Revision(after), ReplicaSet: prev.Name, Image: img,
		ChangeCause: prev.Annotations[AnnotationChangeCause], Current: true}, nil
}

// rollbackAnnotation says which ReplicaSet annotations a rollback copies to the Deployment
// (kubectl's rollout undo skips the controller's own bookkeeping the same way).
func rollbackAnnotation(k string) bool {
	switch k {
	case AnnotationRevision, "deployment.kubernetes.io/revision-history", "deployment.kubernetes.io/desired-replicas",
		"deployment.kubernetes.io/max-replicas", "kubectl.kubernetes.io/last-applied-configuration":
		return false
	}
	return true
}

// Status is the current state of a deployment, for `catdog deploy status`.
type Status struct {
	Message     string
	Done        bool
	Err         error
	Progress    Progress
	Revision    int64
	Image       string
	HPAReplicas int32 // the HPA's desired replicas (0 without an HPA)
}

// Status reads the Deployment (and its HPA) once.
func (d *Deployer) Status(ctx context.Context, namespace, name string) (Status, error) {
	dep, err := d.Client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return Status{}, d.explain(err, "get Deployment "+namespace+"/"+name)
	}
	msg, done, serr := RolloutStatus(dep)
	st := Status{Message: msg, Done: done, Err: serr, Progress: progressOf(dep), Revision: Revision(dep)}
	if cs := dep.Spec.Template.Spec.Containers; len(cs) > 0 {
		st.Image = cs[0].Image
	}
	if hpa, err := d.Client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
		st.HPAReplicas = hpa.Status.DesiredReplicas
	}
	return st, nil
}
