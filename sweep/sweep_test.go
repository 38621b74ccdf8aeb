package sweep

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseSpecErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no method", "metric: m\nparameters: {lr: {values: [1]}}", "method"},
		{"no metric", "method: grid\nparameters: {lr: {values: [1]}}", "metric is required"},
		{"bad goal", "method: grid\nmetric: m\ngoal: up\nparameters: {lr: {values: [1]}}", "goal"},
		{"empty space", "method: grid\nmetric: m", "empty"},
		{"random without trials", "method: random\nmetric: m\nparameters: {lr: {values: [1]}}", "number of trials"},
		{"grid with trials", "method: grid\nmetric: m\ntrials: 3\nparameters: {lr: {values: [1]}}", "every combination"},
		{"range in a grid", "method: grid\nmetric: m\nparameters: {lr: {min: 0.1, max: 1}}", "needs values"},
		{"values and range", "method: random\ntrials: 2\nmetric: m\nparameters: {lr: {values: [1], min: 0, max: 1}}", "not both"},
		{"min above max", "method: random\ntrials: 2\nmetric: m\nparameters: {lr: {min: 2, max: 1}}", "min <= max"},
		{"log from zero", "method: random\ntrials: 2\nmetric: m\nparameters: {lr: {min: 0, max: 1, log: true}}", "min > 0"},
		{"unknown key", "method: grid\nmetric: m\nparamters: {}", "paramters"},
		{"eta 1", "method: halving\ntrials: 2\nmetric: m\nhalving: {eta: 1}\nparameters: {lr: {values: [1]}}", "eta"},
		{"map value", "method: grid\nmetric: m\nparameters: {lr: {values: [{a: 1}]}}", "not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSpec([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseSpec: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestGenerateTrials(t *testing.T) {
	grid, err := parseSpec([]byte("method: grid\nmetric: val_accuracy\nparameters:\n  lr: {values: [0.001, 0.003]}\n  batch_size: {values: [16, 32, 64]}\n  arch.widths: {values: [[8, 16], [16, 32]]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ts := grid.GenerateTrials()
	if len(ts) != 12 {
		t.Fatalf("grid: %d trials, want 12", len(ts))
	}
	seen := map[string]bool{}
	for i, tr := range ts {
		key := fmt.Sprint(tr.Params["lr"], tr.Params["batch_size"], tr.Params["arch.widths"])
		if seen[key] || tr.Index != i {
			t.Fatalf("grid trial %d (%s) repeated or misnumbered", i, key)
		}
		seen[key] = true
	}
	if FormatValue(ts[0].Params["arch.widths"]) != "[8 16]" {
		t.Errorf("list value formats as %q", FormatValue(ts[0].Params["arch.widths"]))
	}
	rs := "method: random\nmetric: m\ntrials: 20\nseed: 7\nparameters:\n  lr: {min: 1.0e-4, max: 1.0e-2, log: true}\n  batch_size: {values: [16, 32]}\n  epochs: {min: 1, max: 3, int: true}\n"
	a, _ := parseSpec([]byte(rs))
	b, _ := parseSpec([]byte(rs))
	ta, tb := a.GenerateTrials(), b.GenerateTrials()
	if !reflect.DeepEqual(ta, tb) || len(ta) != 20 {
		t.Fatalf("random trials are not reproducible from the seed")
	}
	lrs := map[float64]bool{}
	for _, tr := range ta {
		lr := tr.Params["lr"].(float64)
		ep := tr.Params["epochs"].(int)
		if lr < 1e-4 || lr > 1e-2 || ep < 1 || ep > 3 {
			t.Fatalf("sample out of range: %v", tr.Params)
		}
		lrs[lr] = true
	}
	if len(lrs) < 15 {
		t.Errorf("only %d distinct lr values in 20 samples", len(lrs))
	}
	c, _ := parseSpec([]byte(strings.Replace(rs, "seed: 7", "seed: 8", 1)))
	if reflect.DeepEqual(c.GenerateTrials(), ta) || c.Hash() == a.Hash() {
		t.Error("another seed gives the same trials or the same hash")
	}
}

// fakeRunner "trains" a trial: the metric after epoch e is quality(params)·e/epochs.
type fakeRunner struct {
	epochs  int
	delay   time.Duration
	mu      sync.Mutex
	started []int
	epochsT atomic.Int64
	running atomic.Int64
	maxPar  atomic.Int64
}

func (f *fakeRunner) RunTrial(ctx context.Context, tr Trial, report func(int, float64) bool) (string, error) {
	f.mu.Lock()
	f.started = append(f.started, tr.Index)
	f.mu.Unlock()
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.maxPar.Load()
		if n <= m || f.maxPar.CompareAndSwap(m, n) {
			break
		}
	}
	q := tr.Params["lr"].(float64)
	for e := 1; e <= f.epochs; e++ {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(f.delay):
		}
		f.epochsT.Add(1)
		if !report(e, q*float64(e)/float64(f.epochs)) {
			return fmt.Sprint("run-", tr.Index), ErrPruned
		}
	}
	return fmt.Sprint("run-", tr.Index), nil
}

func TestHalvingStopsBadTrialsEarly(t *testing.T) {
	// lr values in this order: the 2nd, 4th and 5th trials are worse than an earlier one
	spec, err := parseSpec([]byte("method: halving\nmetric: m\nhalving: {min_epochs: 1, eta: 2}\nparameters:\n  lr: {values: [0.5, 0.2, 0.9, 0.1, 0.3, 1.0]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRunner{epochs: 4}
	st, err := Run(context.Background(), Options{Spec: spec, Dir: t.TempDir(), Runner: f})
	if err != nil {
		t.Fatal(err)
	}
	want := map[float64]string{0.5: Done, 0.2: Pruned, 0.9: Done, 0.1: Pruned, 0.3: Pruned, 1.0: Done}
	for _, tr := range st.Trials {
		lr := tr.Params["lr"].(float64)
		if tr.Status != want[lr] {
			t.Errorf("trial lr=%v: %s after %d epochs, want %s", lr, tr.Status, len(tr.History), want[lr])
		}
		if tr.Status == Pruned && len(tr.History) >= 4 {
			t.Errorf("pruned trial lr=%v ran all %d epochs", lr, len(tr.History))
		}
		if tr.RunID != fmt.Sprint("run-", tr.Index) {
			t.Errorf("trial %d run ID %q", tr.Index, tr.RunID)
		}
	}
	if got := f.epochsT.Load(); got >= 24 {
		t.Errorf("halving trained %d epochs, no fewer than the full 24", got)
	}
	if b := st.Best(spec); b == nil || b.Params["lr"] != 1.0 || b.BestEpoch != 4 {
		t.Errorf("best trial %+v", b)
	}
	png := filepath.Join(t.TempDir(), "parallel.png")
	if err := PlotParallel(png, spec, st); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, png)
}

func TestRunResumesAfterInterrupt(t *testing.T) {
	spec, err := parseSpec([]byte("method: random\nmetric: m\ntrials: 6\nseed: 3\nparameters:\n  lr: {min: 0.1, max: 1}\n  batch_size: {values: [8, 16]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeRunner{epochs: 3, delay: 20 * time.Millisecond}
	var ended atomic.Int64
	progress := func(e Event) {
		if e.Ended && e.Trial.Status == Done && ended.Add(1) == 3 {
			cancel() // interrupt after three trials
		}
	}
	_, err = Run(ctx, Options{Spec: spec, Dir: dir, Runner: f, Parallel: 2, Progress: progress})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Run: %v", err)
	}
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	done := st.Count()[Done]
	if done < 3 || done == 6 {
		t.Fatalf("state after the interrupt: %v", st.Count())
	}
	f2 := &fakeRunner{epochs: 3}
	var resumed atomic.Int64
	st2, err := Run(context.Background(), Options{Spec: spec, Dir: dir, Runner: f2, Parallel: 2, Progress: func(e Event) {
		if e.Resume {
			resumed.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if st2.Count()[Done] != 6 || len(f2.started) != 6-done || int(resumed.Load()) != done {
		t.Fatalf("resume: %v, ran %v again, %d reported as resumed; want the %d unfinished trials only", st2.Count(), f2.started, resumed.Load(), 6-done)
	}
	for _, i := range f2.started {
		if st.Trials[i].Status == Done {
			t.Errorf("trial %d finished before the interrupt and ran again", i)
		}
	}
	// another spec in the same directory is refused
	other, _ := parseSpec([]byte("method: random\nmetric: m\ntrials: 5\nparameters:\n  lr: {min: 0.1, max: 1}\n"))
	if _, err := Run(context.Background(), Options{Spec: other, Dir: dir, Runner: f2}); !errors.Is(err, ErrSpecChanged) {
		t.Fatalf("Run with another spec: %v", err)
	}
}

func TestRunParallel(t *testing.T) {
	spec, _ := parseSpec([]byte("method: grid\nmetric: m\nparameters:\n  lr: {values: [0.1, 0.2, 0.3, 0.4]}\n"))
	f := &fakeRunner{epochs: 2, delay: 50 * time.Millisecond}
	st, err := Run(context.Background(), Options{Spec: spec, Dir: t.TempDir(), Runner: f, Parallel: 2})
	if err != nil || st.Count()[Done] != 4 {
		t.Fatalf("Run: %v %v", st.Count(), err)
	}
	if m := f.maxPar.Load(); m != 2 {
		t.Errorf("at most %d trials ran at once with --parallel 2", m)
	}
}

func TestFailedTrialIsReported(t *testing.T) {
	spec, _ := parseSpec([]byte("method: grid\nmetric: m\nparameters:\n  lr: {values: [0.1, 0.2]}\n"))
	boom := errors.New("loss diverged")
	r := RunnerFunc(func(ctx context.Context, tr Trial, report func(int, float64) bool) (string, error) {
		if tr.Index == 1 {
			return "r1", boom
		}
		report(1, 0.5)
		return "r0", nil
	})
	dir := t.TempDir()
	st, err := Run(context.Background(), Options{Spec: spec, Dir: dir, Runner: r})
	if !errors.Is(err, boom) || st.Trials[1].Status != Failed || st.Trials[1].Error != boom.Error() || st.Trials[0].Status != Done {
		t.Fatalf("Run = %+v, %v", st.Trials, err)
	}
	// the next run retries the failed trial only
	var ran []int
	fixed := RunnerFunc(func(ctx context.Context, tr Trial, report func(int, float64) bool) (string, error) {
		ran = append(ran, tr.Index)
		report(1, 0.7)
		return "r", nil
	})
	st, err = Run(context.Background(), Options{Spec: spec, Dir: dir, Runner: fixed})
	if err != nil || !reflect.DeepEqual(ran, []int{1}) || st.Trials[1].Status != Done || st.Trials[1].Error != "" {
		t.Fatalf("re-run = %+v, %v, ran %v; want only trial 1 retried", st.Trials, err, ran)
	}
}

// TestAllTrialsRunAndErrorsJoin: a failing trial stops no other one, at any parallelism, and
// every failure is in the returned error.
func TestAllTrialsRunAndErrorsJoin(t *testing.T) {
	for _, parallel := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("parallel %d", parallel), func(t *testing.T) {
			spec, _ := parseSpec([]byte("method: grid\nmetric: m\nparameters:\n  lr: {values: [0.1, 0.2, 0.3, 0.4]}\n"))
			fail := map[int]error{0: errors.New("trial 0 diverged"), 2: errors.New("trial 2 diverged")}
			r := RunnerFunc(func(ctx context.Context, tr Trial, report func(int, float64) bool) (string, error) {
				if err := fail[tr.Index]; err != nil {
					return "r", err
				}
				report(1, 0.5)
				return "r", nil
			})
			st, err := Run(context.Background(), Options{Spec: spec, Dir: t.TempDir(), Runner: r, Parallel: parallel})
			for i, e := range fail {
				if !errors.Is(err, e) {
					t.Errorf("err = %v, want it to hold trial %d's error", err, i)
				}
			}
			if c := st.Count(); c[Done] != 2 || c[Failed] != 2 {
				t.Errorf("trials %v, want 2 done and 2 failed", c)
			}
		})
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 300 {
		t.Fatalf("plot is %v", b)
	}
}
