package k8s

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func ptr[T any](v T) *T { return &v }

// deployment is a Deployment of generation gen wanting 2 replicas, in the given status.
func deployment(gen int64, st appsv1.DeploymentStatus) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultName, Namespace: DefaultNamespace, Generation: gen},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr(int32(2)), ProgressDeadlineSeconds: ptr(int32(120))},
		Status:     st,
	}
}

func progressing(reason string) []appsv1.DeploymentCondition {
	return []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: reason,
		Message: `ReplicaSet "catdog-5d9c" has timed out progressing.`}}
}

// TestRolloutStatus: every branch of kubectl's DeploymentStatusViewer, in its order.
func TestRolloutStatus(t *testing.T) {
	for _, c := range []struct {
		name    string
		dep     *appsv1.Deployment
		msg     string
		done    bool
		errWant error
	}{
		{"spec update not observed yet", deployment(3, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}),
			"waiting for the deployment spec update to be observed", false, nil},
		{"observed generation behind wins over a deadline condition", deployment(3, appsv1.DeploymentStatus{ObservedGeneration: 2, Conditions: progressing(reasonDeadline)}),
			"waiting for the deployment spec update to be observed", false, nil},
		{"progress deadline exceeded", deployment(3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 2, Conditions: progressing(reasonDeadline)}),
			"", false, ErrProgressDeadline},
		{"another Progressing reason is not a failure", deployment(3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 2, Conditions: progressing("ReplicaSetUpdated")}),
			"1 out of 2 new replicas have been updated", false, nil},
		{"updated below desired", deployment(3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 2}),
			"1 out of 2 new replicas have been updated", false, nil},
		{"old replicas pending termination", deployment(3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 2, AvailableReplicas: 3}),
			"1 old replicas are pending termination", false, nil},
		{"updated replicas not yet available", deployment(3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1}),
			"1 of 2 updated replicas are available", false, nil},
		{"complete", deployment(3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}),
			"successfully rolled out", true, nil},
		{"complete above the spec (the HPA scaled up)", deployment(3, appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}),
			"successfully rolled out", true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg, done, err := RolloutStatus(c.dep)
			if msg != c.msg || done != c.done || !errors.Is(err, c.errWant) || (c.errWant == nil) != (err == nil) {
				t.Errorf("RolloutStatus = %q, %t, %v; want %q, %t, %v", msg, done, err, c.msg, c.done, c.errWant)
			}
			if err != nil && (!strings.Contains(err.Error(), "progressDeadlineSeconds 120") || !strings.Contains(err.Error(), "timed out progressing")) {
				t.Errorf("the deadline error names neither the deadline nor the controller's message: %v", err)
			}
		})
	}
}

// stuck is a Deployment the controller is rolling out: 1 of 2 replicas updated.
func stuck() *appsv1.Deployment {
	return deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 2})
}

// TestWaitRolloutEnds: how a rollout wait ends — done, failed on the progress deadline, out of
// time (ErrRolloutTimeout and the limit's cause, not an interrupt), interrupted (context.Canceled,
// not "did not finish in time"). The Deployment comes from client-go's fake clientset (list +
// watch); the controller's status updates are written into it.
func TestWaitRolloutEnds(t *testing.T) {
	done := deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2})
	for _, c := range []struct {
		name string
		// ctx derives the wait's context from a test context
		ctx func(context.Context) (context.Context, context.CancelFunc)
		// later, when set, replaces the Deployment 200 ms into the wait (a status update)
		later            *appsv1.Deployment
		want, notWant    []error
		msg              []string
		minWait, maxWait time.Duration
	}{
		{name: "completes on a status update",
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return withLimit(ctx, "deploy", time.Minute)
			},
			later: done, minWait: 150 * time.Millisecond, maxWait: 30 * time.Second},
		{name: "progress deadline exceeded",
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return withLimit(ctx, "deploy", time.Minute)
			},
			later: func() *appsv1.Deployment {
				d := stuck()
				d.Status.Conditions = progressing(reasonDeadline)
				return d
			}(),
			want: []error{ErrProgressDeadline}, notWant: []error{ErrRolloutTimeout, context.Canceled},
			msg: []string{"exceeded its progress deadline"}, minWait: 150 * time.Millisecond, maxWait: 30 * time.Second},
		{name: "time limit",
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return withLimit(ctx, "deploy", 400*time.Millisecond)
			},
			want: []error{ErrRolloutTimeout, ErrTimeLimit}, notWant: []error{ErrInterrupted, context.Canceled},
			msg:     []string{"rollout did not finish in time: deploy time limit reached (400ms)", "last: 1 out of 2 new replicas have been updated"},
			minWait: 400 * time.Millisecond, maxWait: 30 * time.Second},
		{name: "interrupted",
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				ctx, cancel := withLimit(ctx, "deploy", time.Minute)
				ictx, interrupt := context.WithCancel(ctx)
				time.AfterFunc(400*time.Millisecond, interrupt)
				return ictx, func() { interrupt(); cancel() }
			},
			want: []error{ErrInterrupted, context.Canceled}, notWant: []error{ErrRolloutTimeout, ErrTimeLimit, context.DeadlineExceeded},
			msg:     []string{"rollout wait interrupted (last: 1 out of 2 new replicas have been updated)"},
			minWait: 400 * time.Millisecond, maxWait: 30 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := fake.NewClientset(stuck())
			var mu sync.Mutex
			var events []string
			d := &Deployer{Client: cs, Progress: func(e Event) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, e.Message)
			}}
			ctx, cancel := c.ctx(context.Background())
			defer cancel()
			if c.later != nil {
				time.AfterFunc(200*time.Millisecond, func() {
					if _, err := cs.AppsV1().Deployments(DefaultNamespace).UpdateStatus(context.Background(), c.later, metav1.UpdateOptions{}); err != nil {
						t.Error(err)
					}
				})
			}
			start := time.Now()
			_, err := d.waitRollout(ctx, DefaultNamespace, DefaultName, StageRollout)
			took := time.Since(start)
			if took < c.minWait || took > c.maxWait {
				t.Errorf("the wait took %v, want between %v and %v", took, c.minWait, c.maxWait)
			}
			if len(c.want) == 0 && err != nil {
				t.Fatalf("waitRollout: %v", err)
			}
			checkErr(t, err, c.want, c.notWant, c.msg)
			mu.Lock()
			defer mu.Unlock()
			if len(events) == 0 || events[0] != "1 out of 2 new replicas have been updated" {
				t.Errorf("progress events %q, want the first state reported", events)
			}
			if c.later == done && events[len(events)-1] != "successfully rolled out" {
				t.Errorf("progress events %q, want the last one successfully rolled out", events)
			}
		})
	}
}

// TestDeployLimits: Options.Timeout bounds the deploy, after which the rollback still runs (it
// has its own limit); an interrupt during the rollout wait is reported as one and starts no
// rollback. The fake clientset's apply does not bump the generation, so a reactor serves the
// first GET (the state before the deploy) at an older generation: the deploy then waits for a
// rollout the controller never completes.
func TestDeployLimits(t *testing.T) {
	for _, c := range []struct {
		name      string
		interrupt time.Duration // cancel the caller's context after this long (0: never)
		want      []error
		notWant   []error
		msg       []string
		rollback  bool // the rollback was attempted (it lists the ReplicaSets)
	}{
		{name: "time limit, then the rollback", want: []error{ErrRolloutTimeout, ErrTimeLimit, ErrNoPreviousRevision}, notWant: []error{context.Canceled},
			msg: []string{"deploy time limit reached (500ms)", "the rollback failed too"}, rollback: true},
		{name: "interrupted: no rollback", interrupt: 300 * time.Millisecond, want: []error{ErrInterrupted, context.Canceled},
			notWant: []error{ErrRolloutTimeout, ErrTimeLimit}, msg: []string{"rollout wait interrupted", "not rolled back (interrupted)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := fake.NewClientset(stuck())
			first := true
			var mu sync.Mutex
			cs.PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
				mu.Lock()
				defer mu.Unlock()
				if !first {
					return false, nil, nil
				}
				first = false
				before := stuck()
				before.Generation = 1
				return true, before, nil
			})
			d := &Deployer{Client: cs}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.interrupt > 0 {
				time.AfterFunc(c.interrupt, cancel)
			}
			spec := testSpec()
			spec.Namespace = DefaultNamespace
			start := time.Now()
			res, err := d.Deploy(ctx, spec, Options{Timeout: 500 * time.Millisecond, Smoke: SmokeOptions{Sample: []byte("jpeg")}})
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("the deploy took %v with a 500ms limit", took)
			}
			if res.Outcome != OutcomeFailed || !errors.Is(res.Cause, err) && res.Cause == nil {
				t.Errorf("result %+v, want failed with a cause", res)
			}
			checkErr(t, err, c.want, c.notWant, c.msg)
			listedRS := false
			for _, a := range cs.Actions() {
				listedRS = listedRS || a.GetVerb() == "list" && a.GetResource().Resource == "replicasets"
			}
			if listedRS != c.rollback {
				t.Errorf("rollback attempted = %t, want %t", listedRS, c.rollback)
			}
		})
	}
}

// checkErr asserts that err wraps every error of want and none of notWant, and that its text
// holds every string of msg.
func checkErr(t *testing.T, err error, want, notWant []error, msg []string) {
	t.Helper()
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Errorf("error %v does not wrap %v", err, w)
		}
	}
	for _, w := range notWant {
		if errors.Is(err, w) {
			t.Errorf("error %v wraps %v", err, w)
		}
	}
	for _, m := range msg {
		if err == nil || !strings.Contains(err.Error(), m) {
			t.Errorf("error %v lacks %q", err, m)
		}
	}
}

// TestWaitRolloutStalled: catdog keeps progressDeadlineSeconds on its own watch — a rollout
// whose state does not change for that long fails with ErrProgressDeadline before the
// controller says so, and every change of state restarts the clock (a slow rollout that keeps
// moving is not failed).
func TestWaitRolloutStalled(t *testing.T) {
	withDeadline := func(d *appsv1.Deployment) *appsv1.Deployment {
		d.Spec.ProgressDeadlineSeconds = ptr(int32(1))
		return d
	}
	step := func(updated, available int32) *appsv1.Deployment {
		return withDeadline(deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: updated, AvailableReplicas: available}))
	}
	done := withDeadline(deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}))
	for _, c := range []struct {
		name             string
		updates          []*appsv1.Deployment // written 700 ms apart, the first 700 ms into the wait
		want             error
		minWait, maxWait time.Duration
	}{
		{name: "no change for the deadline", want: ErrProgressDeadline, minWait: time.Second, maxWait: 5 * time.Second},
		{name: "a change every 700 ms restarts the clock", updates: []*appsv1.Deployment{step(1, 3), step(2, 2), done},
			minWait: 2100 * time.Millisecond, maxWait: 5 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := fake.NewClientset(step(1, 2))
			d := &Deployer{Client: cs}
			ctx, cancel := withLimit(context.Background(), "deploy", time.Minute)
			defer cancel()
			for i, u := range c.updates {
				time.AfterFunc(time.Duration(i+1)*700*time.Millisecond, func() {
					if _, err := cs.AppsV1().Deployments(DefaultNamespace).UpdateStatus(context.Background(), u, metav1.UpdateOptions{}); err != nil {
						t.Error(err)
					}
				})
			}
			start := time.Now()
			_, err := d.waitRollout(ctx, DefaultNamespace, DefaultName, StageRollout)
			if took := time.Since(start); took < c.minWait || took > c.maxWait {
				t.Errorf("the wait took %v, want between %v and %v", took, c.minWait, c.maxWait)
			}
			if c.want == nil {
				if err != nil {
					t.Fatalf("waitRollout: %v", err)
				}
				return
			}
			checkErr(t, err, []error{c.want}, []error{ErrRolloutTimeout, context.Canceled},
				[]string{"exceeded its progress deadline (progressDeadlineSeconds 1): no change of rollout state for 1s (last: 1 out of 2 new replicas have been updated)"})
		})
	}
}
