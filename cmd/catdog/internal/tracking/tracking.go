// Package tracking records one training run in MLflow through a write-ahead journal, so
// that tracking never stops training: every call is spooled first and sent when the server
// answers, and a run that could not be finished online is completed by `catdog mlflow sync`.
//
// A Session implements train.Tracker (LogParams, LogMetrics, SetTags, LogArtifacts) and
// Finish, which uploads the model directory as a self-describing MLflow model, registers a
// model version, moves the champion alias when the test metric improves and terminates the
// run FINISHED, FAILED or KILLED.
package tracking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/catdog-mlops/catdog/mlflowclient"
	"github.com/catdog-mlops/catdog/mlflowclient/journal"

	"github.com/catdog-mlops/catdog/model/modeldir"
)

// Defaults of Config.
const (
	DefaultExperiment = "catdog"
	DefaultAlias      = "champion"
	DefaultMetricKey  = "test_accuracy"
	DefaultFinishWait = 2 * time.Minute
	// ModelArtifactPath is the name of the run's LoggedModel (the files live in the model's
	// own artifact location, as with mlflow.<flavor>.log_model(name="model")).
	ModelArtifactPath = "model"
	// Flavor is the MLmodel flavor catdog writes.
	Flavor = "catdog"
)

// rootArtifacts are files of the model directory also logged at the artifact root, where
// the MLflow UI shows them first.
var rootArtifacts = modeldir.Reports

// Config configures Start. Client and JournalDir are required.
type Config struct {
	Client          *mlflowclient.Client
	JournalDir      string            // where the spool lives (one file per run)
	Experiment      string            // default DefaultExperiment
	RunName         string            // "" lets the server pick one
	RegisteredModel string            // "" disables registration
	Alias           string            // default DefaultAlias
	MetricKey       string            // metric compared for promotion, default DefaultMetricKey
	RegisterOnly    bool              // register the version but leave the alias alone (the caller runs a promotion gate)
	GitCommit       string            // mlflow.source.git.commit
	Tags            map[string]string // extra run tags (e.g. catdog.version)
	// ExperimentTags are set on the experiment when it lacks them; mlflow.experimentKind is
	// always custom_model_development unless given here.
	ExperimentTags map[string]string
	FinishWait     time.Duration // how long Finish may try to reach the server, default DefaultFinishWait
	Logger         *slog.Logger  // warnings about spooling; default discard
}

// Session is one tracked run. Its methods are safe for concurrent use.
type Session struct {
	cfg Config
	c   *mlflowclient.Client
	j   *journal.Journal
	log *slog.Logger

	flushMu sync.Mutex // one replay at a time (a concurrent replay could create the run twice)

	mu       sync.Mutex
	offline  bool
	retryAt  time.Time
	backoff  time.Duration
	lastStep int64
	seenKeys map[string]bool
	params   map[string]string     // logged so far: the LoggedModel's params
	dataset  *mlflowclient.Dataset // logged with LogDataset: what the model metrics were measured on
	finished bool
}

// Start opens a journal, records the run creation and tries to send it. An unreachable
// server is not an error: the run is created later from the journal.
func Start(ctx context.Context, cfg Config) (*Session, error) {
	if cfg.Client == nil || cfg.JournalDir == "" {
		return nil, errors.New("tracking: Client and JournalDir are required")
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger
	j, err := journal.Create(cfg.JournalDir)
	if err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, c: cfg.Client, j: j, log: log, seenKeys: map[string]bool{}, params: map[string]string{}}
	expTags := map[string]string{mlflowclient.TagExperimentKind: mlflowclient.ExperimentKindTraining}
	for k, v := range cfg.ExperimentTags {
		expTags[k] = v
	}
	err = s.record(ctx, journal.Entry{Op: journal.OpCreateRun, CreateRun: &journal.CreateRun{
		Experiment: cfg.Experiment, RunName: cfg.RunName, StartTime: time.Now().UnixMilli(), GitCommit: cfg.GitCommit,
		Tags: toTags(cfg.Tags), ExperimentTags: toTags(expTags)}})
	if err != nil { // the server rejected the run (e.g. the experiment is deleted): nothing to keep
		return nil, errors.Join(err, j.Remove())
	}
	return s, nil
}

func (cfg Config) withDefaults() Config {
	if cfg.Experiment == "" {
		cfg.Experiment = DefaultExperiment
	}
	if cfg.Alias == "" {
		cfg.Alias = DefaultAlias
	}
	if cfg.MetricKey == "" {
		cfg.MetricKey = DefaultMetricKey
	}
	if cfg.FinishWait == 0 {
		cfg.FinishWait = DefaultFinishWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Resume reopens the existing run runID (a sweep's parent after an interrupt): the run goes
// back to RUNNING and the session logs into it. Unlike Start it needs the server, because
// the run's experiment and artifact location come from it.
func Resume(ctx context.Context, cfg Config, runID string) (*Session, error) {
	if cfg.Client == nil || cfg.JournalDir == "" {
		return nil, errors.New("tracking: Client and JournalDir are required")
	}
	run, err := cfg.Client.GetRun(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("tracking: resume run %s: %w", runID, err)
	}
	if _, err := cfg.Client.UpdateRun(ctx, runID, mlflowclient.StatusRunning, time.Time{}); err != nil {
		return nil, fmt.Errorf("tracking: resume run %s: %w", runID, err)
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger
	j, err := journal.Create(cfg.JournalDir)
	if err != nil {
		return nil, err
	}
	if err := j.SetRun(run.Info.RunID, run.Info.ExperimentID, run.Info.ArtifactURI); err != nil {
		return nil, errors.Join(err, j.Remove())
	}
	return &Session{cfg: cfg, c: cfg.Client, j: j, log: log, seenKeys: map[string]bool{}, params: map[string]string{}}, nil
}

// RunID returns the server's run ID, or "" while the run exists only in the journal.
func (s *Session) RunID() string { return s.j.State().RunID }

// ExperimentID returns the server's experiment ID, or "" while the run exists only in the journal.
func (s *Session) ExperimentID() string { return s.j.State().ExperimentID }

func toTags(m map[string]string) []mlflowclient.Tag {
	var tags []mlflowclient.Tag
	for _, k := range sortedKeys(m) {
		tags = append(tags, mlflowclient.Tag{Key: k, Value: m[k]})
	}
	return tags
}

// record appends e to the journal and then tries to send everything pending. Only local
// failures (journal not writable) and permanently rejected entries are returned.
func (s *Session) record(ctx context.Context, e journal.Entry) error {
	if _, err := s.j.Append(e); err != nil {
		return err
	}
	return s.flush(ctx, false)
}

// flush replays pending entries unless the server was found offline moments ago (then it
// waits for a growing back-off, up to a minute, before trying again) or force is set.
func (s *Session) flush(ctx context.Context, force bool) error {
	s.mu.Lock()
	if s.offline && !force && time.Now().Before(s.retryAt) {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	s.flushMu.Lock()
	res, err := s.j.Replay(ctx, s.c)
	s.flushMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(err, journal.ErrOffline) {
		if !s.offline {
			s.backoff = 2 * time.Second
			s.log.Warn("mlflow: tracking server unavailable; spooling to the local journal (training goes on)",
				"journal", s.j.Path(), "err", err.Error())
		} else {
			s.backoff = min(2*s.backoff, time.Minute)
		}
		s.offline, s.retryAt = true, time.Now().Add(s.backoff)
		return nil
	}
	if err != nil {
		return err
	}
	if s.offline {
		s.log.Info("mlflow: tracking server back; spooled entries replayed", "applied", res.Applied)
		s.offline = false
	}
	if len(res.Skipped) > 0 {
		var errs []error
		for _, sk := range res.Skipped {
			errs = append(errs, fmt.Errorf("mlflow rejected %s (journal entry %d): %s", sk.Op, sk.Seq, sk.Error))
		}
		return errors.Join(errs...)
	}
	return nil
}

// LogParams implements train.Tracker.
func (s *Session) LogParams(ctx context.Context, params map[string]string) error {
	var b mlflowclient.Batch
	s.mu.Lock()
	for _, k := range sortedKeys(params) {
		b.Params = append(b.Params, mlflowclient.Param{Key: k, Value: params[k]})
		s.params[k] = params[k]
	}
	s.mu.Unlock()
	return s.logBatch(ctx, b)
}

// LogDataset records a dataset the run used (runs/log-inputs; the runs table's Dataset
// column). The model's metrics are linked to the last dataset logged.
func (s *Session) LogDataset(ctx context.Context, d mlflowclient.DatasetInput) error {
	if err := d.Dataset.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	ds := d.Dataset
	s.dataset = &ds
	s.mu.Unlock()
	return s.record(ctx, journal.Entry{Op: journal.OpLogInputs, Inputs: &journal.Inputs{Datasets: []mlflowclient.DatasetInput{d}}})
}

// LogMetrics implements train.Tracker. Points are timestamped now; replays keep the stamp,
// so the server de-duplicates them.
func (s *Session) LogMetrics(ctx context.Context, step int64, metrics map[string]float64) error {
	ts := time.Now().UnixMilli()
	var b mlflowclient.Batch
	s.mu.Lock()
	for _, k := range sortedKeys(metrics) {
		b.Metrics = append(b.Metrics, mlflowclient.Metric{Key: k, Value: mlflowclient.Float(metrics[k]), Timestamp: ts, Step: step})
		s.seenKeys[k] = true
	}
	s.lastStep = max(s.lastStep, step)
	s.mu.Unlock()
	return s.logBatch(ctx, b)
}

// SetTags implements train.Tracker.
func (s *Session) SetTags(ctx context.Context, tags map[string]string) error {
	var b mlflowclient.Batch
	for _, k := range sortedKeys(tags) {
		b.Tags = append(b.Tags, mlflowclient.Tag{Key: k, Value: tags[k]})
	}
	return s.logBatch(ctx, b)
}

func (s *Session) logBatch(ctx context.Context, b mlflowclient.Batch) error {
	if len(b.Metrics)+len(b.Params)+len(b.Tags) == 0 {
		return nil
	}
	if err := b.Validate(); err != nil { // never spool what the server would reject
		return err
	}
	return s.record(ctx, journal.Entry{Op: journal.OpLogBatch, Batch: &b})
}

// LogArtifacts implements train.Tracker: every file below localDir goes to artifactPath.
// The files are read when sent, so they must stay in place until the run is synced.
func (s *Session) LogArtifacts(ctx context.Context, localDir, artifactPath string) error {
	if err := mlflowclient.ValidateArtifactPath(artifactPath); err != nil {
		return err
	}
	abs, err := filepath.Abs(localDir)
	if err != nil {
		return err
	}
	return s.record(ctx, journal.Entry{Op: journal.OpUpload, Upload: &journal.Upload{LocalPath: abs, ArtifactPath: artifactPath}})
}

// Summary tells what Finish achieved.
type Summary struct {
	RunID        string
	ExperimentID string
	ModelID      string // the run's LoggedModel ("" when not logged yet)
	Status       string // FINISHED, FAILED or KILLED
	Version      string // registered model version ("" when not registered yet)
	Promoted     bool   // the alias now points at Version
	Spooled      int    // entries left in the journal (server unavailable); sync them later
	Journal      string // journal path when Spooled > 0
	Skipped      []journal.Skipped
}

// Finish ends the run. On success (runErr nil) it uploads modelDir as the "model" artifact
// with an MLmodel descriptor, logs the plots, metrics and manifest at the artifact root,
// logs the test metric, registers a model version and promotes the alias when the metric
// beats the current champion's. The run ends FINISHED, FAILED when runErr is set, or KILLED
// when ctx was cancelled (SIGINT/SIGTERM) or runErr is a cancellation. It never returns an
// error for an unreachable server: what could not be sent stays in the journal.
func (s *Session) Finish(ctx context.Context, modelDir string, testAccuracy float64, runErr error) (Summary, error) {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return Summary{}, errors.New("tracking: Finish called twice")
	}
	s.finished = true
	s.mu.Unlock()

	status := mlflowclient.StatusFinished
	switch {
	case ctx.Err() != nil || errors.Is(runErr, context.Canceled):
		status = mlflowclient.StatusKilled
	case runErr != nil:
		status = mlflowclient.StatusFailed
	}
	// the training context may be cancelled: finishing gets its own bounded context
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.FinishWait)
	defer cancel()

	var errs []error
	if status == mlflowclient.StatusFinished && modelDir != "" {
		errs = append(errs, s.recordModel(fctx, modelDir, testAccuracy)...)
	}
	if _, err := s.j.Append(journal.Entry{Op: journal.OpTerminate, Terminate: &journal.Terminate{Status: status, EndTime: time.Now().UnixMilli()}}); err != nil {
		errs = append(errs, err)
	}
	ferr := s.flush(fctx, true)
	if ferr != nil {
		errs = append(errs, ferr)
	}
	st := s.j.State()
	pending, _ := s.j.Pending()
	sum := Summary{RunID: st.RunID, ExperimentID: st.ExperimentID, ModelID: st.ModelID, Status: status,
		Version: st.Version, Promoted: st.Promoted, Spooled: len(pending), Skipped: st.Skipped}
	if sum.Spooled > 0 {
		sum.Journal = s.j.Path()
		s.log.Warn("mlflow: run not fully sent; replay it with `catdog mlflow sync`", "pending", sum.Spooled, "journal", sum.Journal)
		errs = append(errs, s.j.Close())
	} else if s.j.Done() {
		errs = append(errs, s.j.Remove())
	} else {
		errs = append(errs, s.j.Close())
	}
	return sum, errors.Join(errs...)
}

// recordModel journals the test metric, the plots at the run's artifact root, the model
// directory as the run's LoggedModel and its registration.
func (s *Session) recordModel(ctx context.Context, modelDir string, testAccuracy float64) []error {
	var errs []error
	abs, err := filepath.Abs(modelDir)
	if err != nil {
		return []error{err}
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return []error{fmt.Errorf("tracking: model dir: %w", err)}
	}
	s.mu.Lock()
	logAcc := !s.seenKeys[s.cfg.MetricKey] && !math.IsNaN(testAccuracy)
	step := s.lastStep
	s.mu.Unlock()
	if logAcc {
		errs = append(errs, s.LogMetrics(ctx, step, map[string]float64{s.cfg.MetricKey: testAccuracy}))
	}
	var size int64
	var files []string
	isRoot := map[string]bool{}
	for _, n := range rootArtifacts {
		isRoot[n] = true
	}
	for _, e := range entries {
		p := filepath.Join(abs, e.Name())
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		size += fi.Size()
		files = append(files, p)
		if isRoot[e.Name()] {
			errs = append(errs, s.appendOnly(journal.Entry{Op: journal.OpUpload, Upload: &journal.Upload{LocalPath: p, ArtifactPath: e.Name()}}))
		}
	}
	s.mu.Lock()
	var params []mlflowclient.Param
	for _, k := range sortedKeys(s.params) {
		params = append(params, mlflowclient.Param{Key: k, Value: s.params[k]})
	}
	ds := s.dataset
	s.mu.Unlock()
	errs = append(errs, s.appendOnly(journal.Entry{Op: journal.OpLoggedModel, Model: &journal.LoggedModel{
		Name: ModelArtifactPath, Files: files, Params: params, Tags: toTags(s.cfg.Tags), Step: step, Flavor: Flavor,
		ModelSizeBytes: size, Created: time.Now().UnixMilli(), Dataset: ds,
		FlavorConfig: map[string]any{
			"model_data": modeldir.Weights, "model_info": modeldir.Info, "format": "gotch VarStore (.ot)",
			"loader": "github.com/catdog-mlops/catdog/model.Load",
		}}}))
	if s.cfg.RegisteredModel != "" {
		errs = append(errs, s.appendOnly(journal.Entry{Op: journal.OpRegister, Register: &journal.Register{
			Model: s.cfg.RegisteredModel, ArtifactPath: ModelArtifactPath, Alias: s.registerAlias(), MetricKey: s.cfg.MetricKey, Value: mlflowclient.Float(testAccuracy)}}))
	}
	return errs
}

// registerAlias is the alias the registration moves ("" with RegisterOnly).
func (s *Session) registerAlias() string {
	if s.cfg.RegisterOnly {
		return ""
	}
	return s.cfg.Alias
}

func (s *Session) appendOnly(e journal.Entry) error {
	_, err := s.j.Append(e)
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
