//go:build !catdog_light

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/catdog-mlops/catdog/cmd/catdog/internal/tracking"
	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/internal/atomicfile"
	"github.com/catdog-mlops/catdog/internal/buildinfo"
	"github.com/catdog-mlops/catdog/mlflowclient"
	"github.com/catdog-mlops/catdog/sweep"
	"github.com/catdog-mlops/catdog/train"
)

// TagParentRun is the tag MLflow's UI nests child runs under their parent with.
const TagParentRun = "mlflow.parentRunId"

// sweepMetrics are the per-epoch figures a sweep can optimise.
var sweepMetrics = map[string]func(train.EpochStats) float64{
	"val_accuracy":   func(s train.EpochStats) float64 { return s.ValAcc },
	"val_loss":       func(s train.EpochStats) float64 { return s.ValLoss },
	"train_accuracy": func(s train.EpochStats) float64 { return s.TrainAcc },
	"train_loss":     func(s train.EpochStats) float64 { return s.TrainLoss },
}

// sweepCommand is `catdog sweep`: a hyper-parameter search, each trial a child run.
func sweepCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "spec", Value: "sweep.yaml", Usage: "search space and method (YAML, see docs/sweep.md)", EnvVars: []string{"CATDOG_SWEEP_SPEC"}},
		paramsFlag("params.yaml"),
		preparedFlag(),
		&cli.StringFlag{Name: "out", Value: "sweeps", Usage: "sweep folder: state (for resuming), trial models, report", EnvVars: []string{"CATDOG_SWEEP_DIR"}},
		&cli.IntFlag{Name: "parallel", Value: 1, Usage: "trials at once (libtorch threads are split between them)", EnvVars: []string{"CATDOG_SWEEP_PARALLEL"}},
		&cli.IntFlag{Name: "epochs", Usage: "override the base epochs (the budget of a trial that is not stopped)", EnvVars: []string{"CATDOG_EPOCHS"}},
		&cli.IntFlag{Name: "limit", Usage: "train each trial on at most this many images", EnvVars: []string{"CATDOG_TRAIN_LIMIT"}},
		quietFlag(),
		deviceFlag(),
		trackingURIFlag(),
		experimentFlag(),
		&cli.StringFlag{Name: "run-name", Usage: "name of the parent run (default sweep-<spec hash>)", EnvVars: []string{"MLFLOW_RUN_NAME"}},
		journalFlag(),
	}
	return &cli.Command{
		Name:  "sweep",
		Usage: sweepUsage,
		Description: "Runs the trials of --spec (grid, random, or halving: successive halving stops bad trials\n" +
			"early) over the --params base, in sequence or --parallel N at a time. With a tracking URI\n" +
			"each trial is a child run (mlflow.parentRunId) of one parent run, which gets the best trial\n" +
			"and a parallel-coordinates plot. Interrupting and running the same command again resumes.",
		Flags:  flags,
		Action: runSweep,
	}
}

func runSweep(c *cli.Context) error {
	ctx := c.Context
	fail := func(err error) error { return cli.Exit(fmt.Sprintf("catdog sweep: %v", err), 2) }
	if err := checkDevice(c); err != nil {
		return fail(err)
	}
	spec, err := sweep.ReadSpec(c.String("spec"))
	if err != nil {
		return fail(err)
	}
	metricOf, ok := sweepMetrics[spec.Metric]
	if !ok {
		return fail(fmt.Errorf("metric %q: want one of val_accuracy, val_loss, train_accuracy, train_loss", spec.Metric))
	}
	base, err := trainParams(c)
	if err != nil {
		return fail(err)
	}
	parallel := max(1, c.Int("parallel"))
	trials := spec.GenerateTrials()
	for _, t := range trials { // every trial must make valid params before anything runs
		if _, err := trialParams(base, t.Params, parallel); err != nil {
			return fail(fmt.Errorf("trial %d %v: %w", t.Index, t.Params, err))
		}
	}
	prep, err := imageprep.ReadPrepared(c.String("data"))
	if err != nil {
		return fail(fmt.Errorf("--data: %w (run `catdog prepare` first)", err))
	}
	for _, t := range trials {
		if p, _ := trialParams(base, t.Params, parallel); p.InputSize != prep.Size {
			return fail(fmt.Errorf("trial %d: input_size %d, but %s was prepared at %d px", t.Index, p.InputSize, c.String("data"), prep.Size))
		}
	}
	dir := c.String("out")
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := &sweepRunner{c: c, base: base, parallel: parallel, dir: dir, metricOf: metricOf, log: log}
	var parent *tracking.Session
	var cl *mlflowclient.Client
	if c.String("tracking-uri") != "" {
		if cl, err = newMLflowClient(c, mlflowclient.WithRetry(mlflowclient.RetryPolicy{MaxRetries: 2, BaseDelay: 250 * time.Millisecond, MaxDelay: 2 * time.Second, Jitter: 100 * time.Millisecond}),
			mlflowclient.WithTimeout(30*time.Second), mlflowclient.WithLogger(log)); err != nil {
			return fail(err)
		}
		r.cl = cl
	}
	var plMu sync.Mutex // parent logging from the trial goroutines
	progress := func(e sweep.Event) {
		t := e.Trial
		w := c.App.ErrWriter
		switch {
		case e.Resume:
			fmt.Fprintf(w, "trial %d/%d: %s in an earlier run (%s %.4f)\n", t.Index+1, e.Total, t.Status, spec.Metric, t.Best)
		case e.Ended:
			msg := fmt.Sprintf("%s after %d epoch(s), best %s %.4f (epoch %d)", t.Status, len(t.History), spec.Metric, t.Best, t.BestEpoch)
			if t.Status == sweep.Failed {
				msg = "failed: " + t.Error
			}
			fmt.Fprintf(w, "trial %d/%d %s: %s\n", t.Index+1, e.Total, sweep.FormatParams(t.Params), msg)
			if parent != nil && t.BestEpoch > 0 {
				plMu.Lock()
				_ = parent.LogMetrics(context.WithoutCancel(ctx), int64(t.Index), map[string]float64{"trial_" + spec.Metric: t.Best})
				plMu.Unlock()
			}
		case !c.Bool("quiet"):
			fmt.Fprintf(w, "trial %d/%d epoch %d: %s %.4f\n", t.Index+1, e.Total, e.Epoch, spec.Metric, t.History[e.Epoch-1])
		}
	}
	prepare := func(ctx context.Context, st *sweep.State) error {
		if cl == nil {
			return nil
		}
		cfg := tracking.Config{Client: cl, JournalDir: journalDir(c), Experiment: c.String("experiment"),
			RunName: c.String("run-name"), GitCommit: mlflowclient.GitCommit(ctx, "."), Logger: log,
			Tags: map[string]string{"catdog.version": buildinfo.Version(), "catdog.sweep.method": spec.Method}}
		if cfg.RunName == "" {
			cfg.RunName = "sweep-" + spec.Hash()
		}
		var err error
		if st.ParentRunID != "" {
			parent, err = tracking.Resume(ctx, cfg, st.ParentRunID)
		} else {
			parent, err = tracking.Start(ctx, cfg)
			if err == nil && parent.RunID() == "" {
				_, _ = parent.Finish(ctx, "", math.NaN(), errors.New("tracking server unreachable"))
				err = fmt.Errorf("mlflow: the tracking server must be reachable when a sweep starts (its trials are nested under the parent run)")
			}
		}
		if err != nil {
			return err
		}
		st.ParentRunID, st.ExperimentID = parent.RunID(), parent.ExperimentID()
		r.parentID = st.ParentRunID
		space, _ := json.Marshal(spec.Parameters)
		fmt.Fprintf(c.App.ErrWriter, "mlflow: sweep parent run %s: %s\n", st.ParentRunID, cl.RunURL(st.ExperimentID, st.ParentRunID))
		return parent.LogParams(ctx, map[string]string{"sweep.method": spec.Method, "sweep.metric": spec.Metric, "sweep.goal": spec.Goal,
			"sweep.trials": fmt.Sprint(len(trials)), "sweep.space": string(space), "sweep.spec_hash": spec.Hash(),
			"sweep.halving": fmt.Sprintf("min_epochs=%d eta=%d", spec.Halving.MinEpochs, spec.Halving.Eta)})
	}
	st, runErr := sweep.Run(ctx, sweep.Options{Spec: spec, Dir: dir, Parallel: parallel, Runner: r, Progress: progress, Prepare: prepare})
	if st == nil {
		return fail(runErr)
	}
	w := c.App.Writer
	writeSweepTable(w, spec, st)
	best := st.Best(spec)
	plot := filepath.Join(dir, "report", "parallel_coordinates.png")
	var perr error
	if best != nil {
		if perr = os.MkdirAll(filepath.Dir(plot), 0o755); perr == nil {
			perr = sweep.PlotParallel(plot, spec, st)
		}
		if perr == nil {
			fmt.Fprintf(w, "\nbest trial %d: %s %.4f (epoch %d), %s\nparallel coordinates: %s\n", best.Index, spec.Metric, best.Best, best.BestEpoch, sweep.FormatParams(best.Params), plot)
		}
	}
	if parent != nil {
		report := ""
		if best != nil && perr == nil {
			report = filepath.Dir(plot)
			if b, err := json.MarshalIndent(st, "", "  "); err == nil {
				perr = atomicfile.WriteFile(filepath.Join(report, "sweep_results.json"), append(b, '\n'), 0o644)
			}
		}
		finishParent(ctx, parent, spec, st, best, report, runErr, log)
		fmt.Fprintf(w, "\nMLflow sweep run:  %s\nMLflow experiment: %s\n", cl.RunURL(st.ExperimentID, st.ParentRunID), cl.ExperimentURL(st.ExperimentID))
	}
	return errors.Join(runErr, perr)
}

// finishParent logs the best trial and the report on the parent run and ends it.
// reportDir (the plot and the results), when set, goes to the run's artifact root.
func finishParent(ctx context.Context, parent *tracking.Session, spec *sweep.Spec, st *sweep.State, best *sweep.TrialState, reportDir string, runErr error, log *slog.Logger) {
	kill := ctx // an interrupt ends the run KILLED, but what it found is still logged
	ctx = context.WithoutCancel(ctx)
	if best != nil {
		tags := map[string]string{"catdog.sweep.best_trial": fmt.Sprint(best.Index), "catdog.sweep.best_run_id": best.RunID}
		for k, v := range best.Params {
			tags["best."+k] = sweep.FormatValue(v)
		}
		warn(log, parent.SetTags(ctx, tags))
		warn(log, parent.LogMetrics(ctx, int64(len(st.Trials)), map[string]float64{"best_" + spec.Metric: best.Best}))
	}
	counts := st.Count()
	warn(log, parent.SetTags(ctx, map[string]string{"catdog.sweep.done": fmt.Sprint(counts[sweep.Done]),
		"catdog.sweep.pruned": fmt.Sprint(counts[sweep.Pruned]), "catdog.sweep.failed": fmt.Sprint(counts[sweep.Failed])}))
	if reportDir != "" {
		warn(log, parent.LogArtifacts(ctx, reportDir, ""))
	}
	_, err := parent.Finish(kill, "", math.NaN(), runErr)
	warn(log, err)
}

func warn(log *slog.Logger, err error) {
	if err != nil {
		log.Warn("tracking: the sweep's parent run", "error", err)
	}
}

// writeSweepTable prints one line per trial, best first.
func writeSweepTable(w io.Writer, spec *sweep.Spec, st *sweep.State) {
	ts := append([]sweep.TrialState(nil), st.Trials...)
	sort.SliceStable(ts, func(a, b int) bool {
		if (ts[a].BestEpoch > 0) != (ts[b].BestEpoch > 0) {
			return ts[a].BestEpoch > 0
		}
		return spec.Better(ts[a].Best, ts[b].Best)
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "trial\tstatus\tepochs\t%s\tbest epoch\t%s\n", spec.Metric, strings.Join(spec.Names(), "\t"))
	for _, t := range ts {
		row := []string{fmt.Sprint(t.Index), t.Status, fmt.Sprint(len(t.History)), "-", "-"}
		if t.BestEpoch > 0 {
			row[3], row[4] = fmt.Sprintf("%.4f", t.Best), fmt.Sprint(t.BestEpoch)
		}
		for _, n := range spec.Names() {
			row = append(row, sweep.FormatValue(t.Params[n]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

// trialParams sets the trial's values (params.yaml keys, dotted for nested ones) on base.
// With parallel trials the libtorch and augmentation threads are split between them
// unless the trial sets its own.
func trialParams(base train.Params, set map[string]any, parallel int) (train.Params, error) {
	b, err := yaml.Marshal(base)
	if err != nil {
		return base, err
	}
	var tree map[string]any
	if err := yaml.Unmarshal(b, &tree); err != nil {
		return base, err
	}
	for key, v := range set {
		parts := strings.Split(key, ".")
		m := tree
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				return base, fmt.Errorf("unknown parameter %q (not a params.yaml key)", key)
			}
			m = sub
		}
		last := parts[len(parts)-1]
		if _, ok := m[last]; !ok {
			return base, fmt.Errorf("unknown parameter %q (not a params.yaml key)", key)
		}
		m[last] = v
	}
	if parallel > 1 {
		share := max(1, runtime.NumCPU()/parallel)
		for _, k := range []string{"threads", "workers"} {
			if _, set := set[k]; !set {
				tree[k] = share
			}
		}
	}
	if b, err = yaml.Marshal(tree); err != nil {
		return base, err
	}
	var p train.Params
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return base, err
	}
	return p, p.Validate()
}

// sweepRunner trains one trial with train.Run, tracked as a child run of the parent.
type sweepRunner struct {
	c        *cli.Context
	base     train.Params
	parallel int
	dir      string
	metricOf func(train.EpochStats) float64
	log      *slog.Logger
	cl       *mlflowclient.Client // nil: untracked
	parentID string
}

func (r *sweepRunner) RunTrial(ctx context.Context, t sweep.Trial, report func(int, float64) bool) (string, error) {
	p, err := trialParams(r.base, t.Params, r.parallel)
	if err != nil {
		return "", err
	}
	c := r.c
	opts := train.Options{Params: p, DataDir: c.String("data"), OutDir: filepath.Join(r.dir, fmt.Sprintf("trial-%03d", t.Index)),
		Log: r.log, Limit: c.Int("limit"), Name: "catdog",
		EpochEnd: func(s train.EpochStats) error {
			if !report(s.Epoch, r.metricOf(s)) {
				return sweep.ErrPruned
			}
			return nil
		}}
	var s *tracking.Session
	if r.cl != nil {
		tp, _ := json.Marshal(t.Params)
		s, err = tracking.Start(ctx, tracking.Config{Client: r.cl, JournalDir: journalDir(c), Experiment: c.String("experiment"),
			RunName: fmt.Sprintf("trial-%03d", t.Index), GitCommit: mlflowclient.GitCommit(ctx, "."), Logger: r.log,
			Tags: map[string]string{TagParentRun: r.parentID, "catdog.sweep.trial": fmt.Sprint(t.Index),
				"catdog.sweep.params": string(tp), "catdog.version": buildinfo.Version()}})
		if err != nil {
			return "", err
		}
		opts.Tracker = s
	}
	_, err = train.Run(ctx, opts)
	if s == nil {
		return "", err
	}
	state, finishErr := sweep.Done, err
	if errors.Is(err, sweep.ErrPruned) {
		state, finishErr = sweep.Pruned, nil
	} else if err != nil {
		state = sweep.Failed
	}
	_ = s.SetTags(ctx, map[string]string{"catdog.sweep.state": state})
	sum, ferr := s.Finish(ctx, "", math.NaN(), finishErr)
	if ferr != nil {
		r.log.Warn("tracking: trial run", "trial", t.Index, "error", ferr)
	}
	return sum.RunID, err
}
