package sweep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/catdog-mlops/catdog/internal/atomicfile"
)

// Trial states.
const (
	Pending = "pending"
	Running = "running"
	Done    = "done"
	Pruned  = "pruned" // stopped early by successive halving
	Failed  = "failed"
)

// StateFile is the name of the sweep's state in its directory.
const StateFile = "sweep-state.json"

// ErrSpecChanged is returned when the directory holds the state of a different search.
var ErrSpecChanged = errors.New("sweep: the directory holds a sweep with a different spec")

// TrialState is a trial and what running it produced.
type TrialState struct {
	Trial
	Status    string    `json:"status"`
	RunID     string    `json:"run_id,omitempty"` // the trial's tracked run
	History   []float64 `json:"history"`          // the metric after each epoch (epoch i+1)
	Best      float64   `json:"best"`             // best metric over History
	BestEpoch int       `json:"best_epoch"`       // 1-based; 0 when no epoch finished
	Error     string    `json:"error,omitempty"`
}

// State is the sweep's progress, saved after every epoch so a re-run resumes.
type State struct {
	SpecHash     string       `json:"spec_hash"`
	ParentRunID  string       `json:"parent_run_id,omitempty"`
	ExperimentID string       `json:"experiment_id,omitempty"`
	Trials       []TrialState `json:"trials"`
}

// Best returns the best completed trial (a pruned one only when no trial completed), or nil.
func (st *State) Best(s *Spec) *TrialState {
	var best *TrialState
	for _, want := range []string{Done, Pruned} {
		for i := range st.Trials {
			t := &st.Trials[i]
			if t.Status == want && t.BestEpoch > 0 && (best == nil || s.Better(t.Best, best.Best)) {
				best = t
			}
		}
		if best != nil {
			return best
		}
	}
	return nil
}

// Count returns how many trials are in each status.
func (st *State) Count() map[string]int {
	m := map[string]int{}
	for _, t := range st.Trials {
		m[t.Status]++
	}
	return m
}

// ErrPruned is what a Runner returns (or wraps) for a trial stopped because report said so.
var ErrPruned = errors.New("sweep: trial stopped early by successive halving")

// Runner trains one trial. It calls report after every epoch with the 1-based epoch and the
// spec's metric; when report returns false the trial must stop and return ErrPruned. RunID
// in the answer is the tracked run of the trial ("" when untracked).
type Runner interface {
	RunTrial(ctx context.Context, t Trial, report func(epoch int, metric float64) bool) (runID string, err error)
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, t Trial, report func(epoch int, metric float64) bool) (string, error)

// RunTrial implements Runner.
func (f RunnerFunc) RunTrial(ctx context.Context, t Trial, report func(int, float64) bool) (string, error) {
	return f(ctx, t, report)
}

// Event reports progress; the CLI draws it.
type Event struct {
	Trial  TrialState
	Epoch  int  // > 0 for an epoch report
	Ended  bool // the trial ended (Trial.Status says how)
	Total  int
	Resume bool // the trial was already finished in an earlier run of the sweep
}

// Options configure Run.
type Options struct {
	Spec     *Spec
	Dir      string // holds StateFile; created when missing
	Parallel int    // trials at once (default 1)
	Runner   Runner
	Progress func(Event) // optional; called from the trial goroutines, serialised
	// Prepare is called once with the state before any trial runs (e.g. to create or reopen
	// the parent run and record its ID in the state); nil skips it.
	Prepare func(ctx context.Context, st *State) error
}

// Run runs the trials not finished yet (all of them the first time), at most Parallel at a
// time, with successive halving when the spec says so. Interrupting it (ctx) leaves the
// state on disk; running it again with the same spec and directory resumes: finished and
// pruned trials are kept, interrupted and failed ones start over.
func Run(ctx context.Context, o Options) (*State, error) {
	if o.Spec == nil || o.Runner == nil || o.Dir == "" {
		return nil, errors.New("sweep: Spec, Runner and Dir are required")
	}
	if o.Parallel < 1 {
		o.Parallel = 1
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	st, err := LoadState(o.Dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		st = &State{SpecHash: o.Spec.Hash()}
		for _, t := range o.Spec.GenerateTrials() {
			st.Trials = append(st.Trials, TrialState{Trial: t, Status: Pending})
		}
	case err != nil:
		return nil, err
	case st.SpecHash != o.Spec.Hash():
		return nil, fmt.Errorf("%w (%s): use another directory to start a new sweep", ErrSpecChanged, o.Dir)
	}
	r := &runner{o: o, st: st}
	for i := range st.Trials {
		t := &st.Trials[i]
		if t.Status == Running || t.Status == Pending || t.Status == Failed { // interrupted or failed: start over
			t.Status, t.History, t.Best, t.BestEpoch, t.Error, t.RunID = Pending, nil, 0, 0, "", ""
		} else {
			r.emit(Event{Trial: *t, Ended: true, Resume: true})
		}
	}
	if err := r.save(); err != nil {
		return nil, err
	}
	if o.Prepare != nil {
		if err := o.Prepare(ctx, st); err != nil {
			return st, err
		}
		if err := r.save(); err != nil {
			return st, err
		}
	}
	// Every trial runs even when another fails (a plain Group, no shared cancellation); their
	// errors are joined. An interrupt stops starting trials and leaves the rest pending.
	var g errgroup.Group
	g.SetLimit(o.Parallel)
	errs := make([]error, len(st.Trials))
	for i := range st.Trials {
		if st.Trials[i].Status != Pending {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if ctx.Err() != nil { // interrupted while this trial waited for a slot
				return nil
			}
			errs[i] = r.runTrial(ctx, i)
			return nil
		})
	}
	_ = g.Wait() // trials' errors are in errs
	if ctx.Err() != nil {
		return st, fmt.Errorf("sweep interrupted; run it again to resume: %w", ctx.Err())
	}
	return st, errors.Join(errs...)
}

// LoadState reads the state in dir (an error matching os.ErrNotExist when there is none).
func LoadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("sweep: %s: %w", filepath.Join(dir, StateFile), err)
	}
	return &st, nil
}

type runner struct {
	o      Options
	mu     sync.Mutex // guards st and serialises Progress
	st     *State
	saveMu sync.Mutex
}

func (r *runner) emit(e Event) {
	if r.o.Progress != nil {
		e.Total = len(r.st.Trials)
		r.o.Progress(e)
	}
}

// save writes the state; r.mu must not be held.
func (r *runner) save() error {
	r.mu.Lock()
	b, err := json.MarshalIndent(r.st, "", "  ")
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sweep: state: %w", err)
	}
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	if err := atomicfile.WriteFile(filepath.Join(r.o.Dir, StateFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("sweep: state: %w", err)
	}
	return nil
}

func (r *runner) runTrial(ctx context.Context, i int) error {
	if ctx.Err() != nil {
		return nil
	}
	r.mu.Lock()
	t := &r.st.Trials[i]
	t.Status = Running
	trial := t.Trial
	r.mu.Unlock()
	if err := r.save(); err != nil {
		return err
	}
	report := func(epoch int, metric float64) bool {
		r.mu.Lock()
		if len(t.History) < epoch {
			t.History = append(t.History, make([]float64, epoch-len(t.History))...)
		}
		t.History[epoch-1] = metric
		if t.BestEpoch == 0 || r.o.Spec.Better(metric, t.Best) {
			t.Best, t.BestEpoch = metric, epoch
		}
		goOn := r.o.Spec.Method != Halving || r.promotable(i, epoch)
		r.emit(Event{Trial: *t, Epoch: epoch})
		r.mu.Unlock()
		_ = r.save() // best effort: the next save retries
		return goOn
	}
	runID, err := r.o.Runner.RunTrial(ctx, trial, report)
	r.mu.Lock()
	t.RunID = runID
	var out error
	switch {
	case ctx.Err() != nil:
		t.Status = Running // interrupted: the next run starts it over
	case errors.Is(err, ErrPruned):
		t.Status = Pruned
	case err != nil:
		t.Status, t.Error = Failed, err.Error()
		out = fmt.Errorf("sweep: trial %d: %w", i, err)
	default:
		t.Status = Done
	}
	ended := ctx.Err() == nil
	if ended {
		r.emit(Event{Trial: *t, Ended: true})
	}
	r.mu.Unlock()
	return errors.Join(out, r.save())
}

// promotable applies successive halving at a rung epoch (MinEpochs·Eta^k): trial i goes on
// only if its metric there is among the best max(1, n/Eta) of the n trials that reached the
// rung so far. r.mu is held.
func (r *runner) promotable(i, epoch int) bool {
	h := r.o.Spec.Halving
	rung := h.MinEpochs
	for rung < epoch {
		rung *= h.Eta
	}
	if rung != epoch {
		return true
	}
	mine := r.st.Trials[i].History[epoch-1]
	var vals []float64
	for _, t := range r.st.Trials {
		if len(t.History) >= epoch && !math.IsNaN(t.History[epoch-1]) {
			vals = append(vals, t.History[epoch-1])
		}
	}
	sort.Slice(vals, func(a, b int) bool { return r.o.Spec.Better(vals[a], vals[b]) })
	keep := max(1, len(vals)/h.Eta)
	return !r.o.Spec.Better(vals[keep-1], mine) // mine is at least as good as the keep-th best
}
