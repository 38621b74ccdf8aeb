//go:build !catdog_light

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/internal/testenv"
	"github.com/catdog-mlops/catdog/mlflowclient"
	"github.com/catdog-mlops/catdog/sweep"
)

// copyPhotos copies the first n photos of each class of the shared dev set into dir/{Cat,Dog}.
func copyPhotos(t *testing.T, dir string, n int) {
	t.Helper()
	shared := testenv.SharedData(t)
	for _, class := range []string{"Cat", "Dog"} {
		if err := os.MkdirAll(filepath.Join(dir, class), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("%s.%d.jpg", strings.ToLower(class), i)
			b, err := os.ReadFile(filepath.Join(shared, "petimages-dev", class, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, class, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// cancelOn is an error stream that cancels when a line containing every one of want appears.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	want   []string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	hit := w.cancel != nil
	for _, s := range w.want {
		hit = hit && bytes.Contains(p, []byte(s))
	}
	if hit {
		w.cancel()
	}
	return w.buf.Write(p)
}

func (w *cancelOn) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestSweepNestedRunsResume runs a real successive-halving sweep of tiny trials against a
// real mlflow server, interrupts it after the first trial, runs it again (--parallel 2) and
// checks through the official Python client that the parent has every trial as a finished
// child run with its params and per-epoch metrics, the best trial and the plot.
func TestSweepNestedRunsResume(t *testing.T) {
	srv := testenv.StartMLflow(t)
	work := t.TempDir()
	photos := filepath.Join(work, "photos")
	copyPhotos(t, photos, 16)
	params := filepath.Join(work, "params.yaml")
	if err := os.WriteFile(params, []byte("epochs: 2\nbatch_size: 8\nlr: 0.003\ninput_size: 32\ntta: false\nthreads: 1\nema_decay: 0\n"+
		"arch: {name: catdognet-v1, widths: [8, 16, 32], dropout: 0.1, classes: 2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(work, "sweep.yaml")
	// lr 1e-6 barely moves the (same-seed) initial weights: at the first rung its validation
	// loss is worse than trial 0's, so halving (eta 2) stops it after one of its two epochs.
	if err := os.WriteFile(spec, []byte("method: halving\nmetric: val_loss\ngoal: minimize\nhalving: {min_epochs: 1, eta: 2}\n"+
		"parameters:\n  lr: {values: [0.003, 0.000001, 0.001]}\n  arch.dropout: {values: [0.1]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prepared, out := filepath.Join(work, "prepared"), filepath.Join(work, "sweep")
	run := func(ctx context.Context, errw interface {
		Write([]byte) (int, error)
		String() string
	}, args ...string) (string, error) {
		t.Helper()
		var stdout bytes.Buffer
		app := newApp()
		app.Writer, app.ErrWriter = &stdout, errw
		app.ExitErrHandler = func(*cli.Context, error) {}
		err := app.RunContext(ctx, append([]string{"catdog"}, args...))
		return stdout.String() + errw.String(), err
	}
	if o, err := run(context.Background(), &cancelOn{}, "prepare", "--data", photos, "--out", prepared, "--size", "32", "--quiet"); err != nil {
		t.Fatalf("prepare: %v\n%s", err, o)
	}
	args := []string{"sweep", "--spec", spec, "--params", params, "--data", prepared, "--out", out,
		"--tracking-uri", srv.URI, "--experiment", "sweep-test", "--mlflow-journal", filepath.Join(work, "journal")}

	// first run: interrupted as soon as trial 1 of 3 has ended
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w1 := &cancelOn{want: []string{"trial 1/3 ", " after "}, cancel: cancel}
	o1, err := run(ctx, w1, args...)
	if err == nil || !strings.Contains(err.Error(), "run it again to resume") {
		t.Fatalf("interrupted sweep: %v\n%s", err, o1)
	}
	st, err := sweep.LoadState(out)
	if err != nil || st.ParentRunID == "" || st.Trials[0].Status != sweep.Done {
		t.Fatalf("state after the interrupt: %+v %v\n%s", st, err, o1)
	}

	// second run resumes: trial 0 is not trained again
	o2, err := run(context.Background(), &cancelOn{}, append(args, "--parallel", "2")...)
	if err != nil {
		t.Fatalf("resumed sweep: %v\n%s", err, o2)
	}
	if !strings.Contains(o2, "trial 1/3: done in an earlier run") || strings.Contains(o2, "trial 1/3 epoch") {
		t.Errorf("resume retrained trial 0 or did not say it was kept:\n%s", o2)
	}
	st2, err := sweep.LoadState(out)
	if err != nil || st2.ParentRunID != st.ParentRunID {
		t.Fatalf("resume made another parent run: %v %v", st2, err)
	}
	c := st2.Count()
	if c[sweep.Done]+c[sweep.Pruned] != 3 || c[sweep.Pruned] < 1 {
		t.Fatalf("trials %v, want 3 finished of which at least one stopped early\n%s", c, o2)
	}
	for _, tr := range st2.Trials {
		if tr.Status == sweep.Pruned && len(tr.History) != 1 {
			t.Errorf("pruned trial %d ran %d epochs, want 1 (the rung)", tr.Index, len(tr.History))
		}
	}
	best := st2.Best(mustSpec(t, spec))
	plot := filepath.Join(out, "report", "parallel_coordinates.png")
	if !strings.Contains(o2, "MLflow sweep run:  "+srv.URI+"/#/experiments/") || !strings.Contains(o2, "best trial ") {
		t.Errorf("sweep output lacks the best trial or the parent run's address:\n%s", o2)
	}

	// what the official Python client sees: the parent, its 3 finished children (an
	// interrupted child, if any, ended KILLED) with params and per-epoch metrics
	cl, err := mlflowclient.New(srv.URI)
	if err != nil {
		t.Fatal(err)
	}
	parent, err := cl.GetRun(context.Background(), st2.ParentRunID)
	if err != nil || parent.Info.Status != mlflowclient.StatusFinished {
		t.Fatalf("parent run: %+v %v", parent, err)
	}
	if v, _ := parent.Tag("catdog.sweep.best_trial"); v != fmt.Sprint(best.Index) {
		t.Errorf("parent best_trial tag %q, want %d", v, best.Index)
	}
	testenv.CheckMLflow(t, testenv.MLflowExpectation{TrackingURI: srv.URI, RunID: st2.ParentRunID, Status: "FINISHED",
		Params:         map[string]string{"sweep.method": "halving", "sweep.metric": "val_loss", "sweep.trials": "3"},
		Tags:           map[string]string{"catdog.sweep.best_run_id": best.RunID, "best.lr": sweep.FormatValue(best.Params["lr"])},
		ExperimentTags: map[string]string{mlflowclient.TagExperimentKind: mlflowclient.ExperimentKindTraining},
		Artifacts:      map[string]string{"parallel_coordinates.png": plot},
		Children: &testenv.MLflowChildrenExpect{Count: 3, Status: "FINISHED",
			Params: []string{"lr", "arch.dropout"}, Metrics: []string{"val_loss", "val_accuracy"}},
	})
}

func mustSpec(t *testing.T, path string) *sweep.Spec {
	s, err := sweep.ReadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
