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

// ErrRolloutTimeout is wrapped when a rollout did not finish within the caller's timeout.
var ErrRolloutTimeout = errors.New("rollout did not finish in time")

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
			return "", false, fmt.Errorf("deployment %q %w (progressDeadlineSeconds %d): %s",
				d.Name, ErrProgressDeadline, deref(d.Spec.ProgressDeadlineSeconds), c.Message)
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
// change of state; timeout bounds the wait.
func (d *Deployer) waitRollout(ctx context.Context, namespace, name string, stage Stage, timeout time.Duration) (*appsv1.Deployment, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	deps := d.Client.AppsV1().Deployments(namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return deps.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return deps.Watch(ctx, o)
		},
	}
	var last string
	var final *appsv1.Deployment
	_, err := watchtools.UntilWithSync(ctx, lw, &appsv1.Deployment{}, nil, func(e watch.Event) (bool, error) {
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
			return done, nil
		}
		return false, nil
	})
	if err != nil && errors.Is(err, context.DeadlineExceeded) || errors.Is(err, watchtools.ErrWatchClosed) && ctx.Err() != nil {
		msg := "no state seen"
		if final != nil {
			msg, _, _ = RolloutStatus(final)
		}
		return final, fmt.Errorf("deployment %s/%s: %w within %v (last: %s)", namespace, name, ErrRolloutTimeout, timeout, msg)
	}
	return final, err
}
