package k8s

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// Annotations the deployment controller writes.
const (
	AnnotationRevision = "deployment.kubernetes.io/revision"
	reasonDeadline     = "ProgressDeadlineExceeded"
)

// ErrProgressDeadline is wrapped when a rollout exceeded progressDeadlineSeconds.
var ErrProgressDeadline = errors.New("exceeded its progress deadline")

// ErrRolloutTimeout is wrapped when a rollout did not finish before the deadline of the
// caller's context (with, when the context has one, the cause naming the time limit).
var ErrRolloutTimeout = errors.New("rollout did not finish in time")

// ErrTimeLimit is the cause of a deploy's or a rollback's context once its time limit
// (Options.Timeout, Options.RollbackTimeout) has passed; the error of the step that was running
// then wraps it.
var ErrTimeLimit = errors.New("time limit reached")

// ErrInterrupted is wrapped, with context.Canceled, when the caller cancelled a deploy or a
// rollback (an interrupt) while it waited.
var ErrInterrupted = errors.New("interrupted")

// withLimit bounds ctx by limit; once it passes, context.Cause names what ran out of time.
func withLimit(ctx context.Context, what string, limit time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, limit, fmt.Errorf("%s %w (%v)", what, ErrTimeLimit, limit))
}

// stopped explains an error that happened because ctx ended: an interrupt (the caller
// cancelled: wraps ErrInterrupted and context.Canceled) or a time limit (wraps the context's
// cause, ErrTimeLimit for the deploy's and rollback's limits). Otherwise err is returned as is.
func stopped(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		if errors.Is(err, ErrInterrupted) {
			return err
		}
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
		return fmt.Errorf("%w (%w): %w", ErrInterrupted, context.Canceled, err)
	}
	cause := context.Cause(ctx)
	if errors.Is(err, cause) {
		return err
	}
	return fmt.Errorf("%w: %w", cause, err)
}

// Progress is a Deployment's rollout state, as `kubectl rollout status` reads it.
type Progress struct {
	Generation, ObservedGeneration               int64
	Desired, Replicas, Updated, Ready, Available int32
}

// RolloutStatus decides like `kubectl rollout status` (kubectl's DeploymentStatusViewer):
// done once the controller has observed the latest generation, every desired replica is
// updated, no old replica is left and every updated replica is available; a Progressing
// condition with reason ProgressDeadlineExceeded is a failure.
func RolloutStatus(d *appsv1.Deployment) (msg string, done bool, err error) {
	if d.Generation > d.Status.ObservedGeneration {
		return "waiting for the deployment spec update to be observed", false, nil
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == reasonDeadline {
			return "", false, deadlineError(d, c.Message)
		}
	}
	st := d.Status
	if d.Spec.Replicas != nil && st.UpdatedReplicas < *d.Spec.Replicas {
		return fmt.Sprintf("%d out of %d new replicas have been updated", st.UpdatedReplicas, *d.Spec.Replicas), false, nil
	}
	if st.Replicas > st.UpdatedReplicas {
		return fmt.Sprintf("%d old replicas are pending termination", st.Replicas-st.UpdatedReplicas), false, nil
	}
	if st.AvailableReplicas < st.UpdatedReplicas {
		return fmt.Sprintf("%d of %d updated replicas are available", st.AvailableReplicas, st.UpdatedReplicas), false, nil
	}
	return "successfully rolled out", true, nil
}

// deadlineError is the failure of a rollout past its progress deadline: the Deployment, its
// progressDeadlineSeconds, then why (the controller's condition message, or catdog's own clock).
func deadlineError(d *appsv1.Deployment, why string) error {
	return fmt.Errorf("deployment %q %w (progressDeadlineSeconds %d): %s", d.Name, ErrProgressDeadline, deref(d.Spec.ProgressDeadlineSeconds), why)
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func progressOf(d *appsv1.Deployment) Progress {
	return Progress{Generation: d.Generation, ObservedGeneration: d.Status.ObservedGeneration, Desired: deref(d.Spec.Replicas),
		Replicas: d.Status.Replicas, Updated: d.Status.UpdatedReplicas, Ready: d.Status.ReadyReplicas, Available: d.Status.AvailableReplicas}
}

// Revision returns the deployment controller's revision annotation of an object (0 if none).
func Revision(m metav1.Object) int64 {
	r, _ := strconv.ParseInt(m.GetAnnotations()[AnnotationRevision], 10, 64)
	return r
}

// waitRollout watches the Deployment until RolloutStatus says done or fails, reporting every
// change of state. ctx bounds the wait: at its deadline the error wraps ErrRolloutTimeout and
// the context's cause (the time limit); when it is cancelled (an interrupt), ErrInterrupted and
// context.Canceled.
func (d *Deployer) waitRollout(ctx context.Context, namespace, name string, stage Stage) (*appsv1.Deployment, error) {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	deps := d.Client.AppsV1().Deployments(namespace)
	// as client-go's generated informers do: a client that cannot serve watch-list streams (the
	// fake clientset of the unit tests) says so, and the reflector then lists and watches
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return deps.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return deps.Watch(ctx, o)
		},
	}, d.Client)
	var last string
	var final *appsv1.Deployment
	// The controller marks a rollout failed only when it next looks at it: at the whole second
	// after lastUpdateTime + progressDeadlineSeconds, or later when its queue is busy. catdog
	// keeps the same deadline on its own watch (no change of rollout state for that long) and
	// fails the rollout at whichever of the two comes first.
	wctx, stall := context.WithCancelCause(ctx)
	defer stall(nil)
	var stallTimer *time.Timer
	defer func() {
		if stallTimer != nil {
			stallTimer.Stop()
		}
	}()
	var lastProgress Progress
	_, err := watchtools.UntilWithSync(wctx, lw, &appsv1.Deployment{}, nil, func(e watch.Event) (bool, error) {
		switch e.Type {
		case watch.Deleted:
			return false, fmt.Errorf("deployment %s/%s was deleted during the rollout", namespace, name)
		case watch.Added, watch.Modified:
			dep, ok := e.Object.(*appsv1.Deployment)
			if !ok {
				return false, nil
			}
			final = dep
			msg, done, err := RolloutStatus(dep)
			if err != nil {
				return false, err
			}
			p := progressOf(dep)
			if line := fmt.Sprintf("%s %+v", msg, p); line != last {
				last = line
				d.report(Event{Stage: stage, Message: msg, Progress: &p})
			}
			if !done && (stallTimer == nil || p != lastProgress) {
				lastProgress = p
				stallTimer = resetStall(stallTimer, dep, msg, stall)
			}
			return done, nil
		}
		return false, nil
	})
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(wctx), ErrProgressDeadline) {
		return final, context.Cause(wctx)
	}
	if err != nil && ctx.Err() != nil {
		msg := "no state seen"
		if final != nil {
			msg, _, _ = RolloutStatus(final)
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return final, fmt.Errorf("deployment %s/%s: rollout wait %w (last: %s): %w", namespace, name, ErrInterrupted, msg, ctx.Err())
		}
		return final, fmt.Errorf("deployment %s/%s: %w: %w (last: %s)", namespace, name, ErrRolloutTimeout, context.Cause(ctx), msg)
	}
	return final, err
}

// resetStall (re)starts the timer that fails a rollout whose state has not changed for the
// Deployment's progressDeadlineSeconds; msg is the state it stopped at. Without a deadline
// (progressDeadlineSeconds unset), there is no timer.
func resetStall(t *time.Timer, dep *appsv1.Deployment, msg string, stall context.CancelCauseFunc) *time.Timer {
	if t != nil {
		t.Stop()
	}
	secs := deref(dep.Spec.ProgressDeadlineSeconds)
	if secs <= 0 {
		return nil
	}
	err := deadlineError(dep, fmt.Sprintf("no change of rollout state for %ds (last: %s)", secs, msg))
	return time.AfterFunc(time.Duration(secs)*time.Second, func() { stall(err) })
}
