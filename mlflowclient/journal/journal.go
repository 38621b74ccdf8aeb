// Package journal is a write-ahead spool for MLflow tracking: every operation of a run
// (create, log-batch, artifact upload, model registration, terminate) is appended to a
// local JSON-lines file before it is sent, and Replay applies the entries not yet applied,
// in order, idempotently. When the tracking server is unreachable the entries simply stay
// pending; the next Replay (the next tracking call, or `catdog mlflow sync`) sends them.
//
// Idempotency on replay: metric points keep their original timestamps, and the server
// ignores exact duplicate points; params with equal values and tags are idempotent;
// uploads overwrite; a registration first looks for a version already registered from the
// run; run creation is recorded in the state file together with the applied sequence number.
package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/catdog-mlops/catdog/mlflowclient"

	"github.com/catdog-mlops/catdog/internal/atomicfile"
)

// Operation kinds.
const (
	OpCreateRun = "create_run"
	OpLogBatch  = "log_batch"
	OpUpload    = "upload"
	OpRegister  = "register"
	OpTerminate = "terminate"
	OpMLmodel   = "mlmodel"
	// OpLogInputs records datasets the run used (runs/log-inputs).
	OpLogInputs = "log_inputs"
	// OpLoggedModel logs an MLflow 3 LoggedModel from a local model directory.
	OpLoggedModel = "logged_model"
)

const (
	suffix       = ".jsonl"
	maxEntrySize = 32 << 20 // bound on one journal line
	maxEntries   = 1 << 20  // bound on the entries of one journal
)

// ErrLocked is returned by Open when another process (a running training, or a sync)
// holds the journal.
var ErrLocked = errors.New("journal: in use by another process")

// Entry is one recorded operation. Exactly one payload field is set, matching Op.
type Entry struct {
	Seq       int64               `json:"seq"`
	Op        string              `json:"op"`
	Time      int64               `json:"time"` // ms, when recorded
	CreateRun *CreateRun          `json:"create_run,omitempty"`
	Batch     *mlflowclient.Batch `json:"batch,omitempty"`
	Upload    *Upload             `json:"upload,omitempty"`
	Register  *Register           `json:"register,omitempty"`
	Terminate *Terminate          `json:"terminate,omitempty"`
	MLmodel   *MLmodel            `json:"mlmodel,omitempty"`
	Inputs    *Inputs             `json:"inputs,omitempty"`
	Model     *LoggedModel        `json:"logged_model,omitempty"`
}

// Inputs records the datasets a run used.
type Inputs struct {
	Datasets []mlflowclient.DatasetInput `json:"datasets"`
}

// LoggedModel logs the files of LocalDir as an MLflow 3 LoggedModel of the run, as
// mlflow.<flavor>.log_model(name=Name, step=Step) does: the model is created (PENDING) with
// Params and Tags, recorded as an output of the run at Step, its files and a generated
// MLmodel are uploaded to the model's own artifact location, the run's metrics at Step are
// linked to it (measured on Dataset when set), and it is finalized READY. Each part is
// idempotent, so a replay after a crash finishes the job without a second model.
type LoggedModel struct {
	Name           string                `json:"name"`
	ModelType      string                `json:"model_type,omitempty"`
	Files          []string              `json:"files"` // absolute paths, uploaded at the model's root
	Params         []mlflowclient.Param  `json:"params,omitempty"`
	Tags           []mlflowclient.Tag    `json:"tags,omitempty"`
	Step           int64                 `json:"step"`
	Flavor         string                `json:"flavor"`
	FlavorConfig   map[string]any        `json:"flavor_config"`
	ModelSizeBytes int64                 `json:"model_size_bytes"`
	Created        int64                 `json:"created"` // ms
	Dataset        *mlflowclient.Dataset `json:"dataset,omitempty"`
}

// MLmodel writes an MLmodel descriptor into the run's ArtifactPath at replay time, when the
// run ID and artifact URI it records are known.
type MLmodel struct {
	ArtifactPath   string         `json:"artifact_path"`
	Flavor         string         `json:"flavor"`
	FlavorConfig   map[string]any `json:"flavor_config"`
	ModelSizeBytes int64          `json:"model_size_bytes"`
	ModelUUID      string         `json:"model_uuid"`
	Created        int64          `json:"created"` // ms
	Metadata       map[string]any `json:"metadata,omitempty"`
}

// CreateRun creates the journal's run in an experiment (created when missing).
type CreateRun struct {
	Experiment string             `json:"experiment"`
	RunName    string             `json:"run_name,omitempty"`
	StartTime  int64              `json:"start_time"`
	GitCommit  string             `json:"git_commit,omitempty"`
	Tags       []mlflowclient.Tag `json:"tags,omitempty"`
	// ExperimentTags are set on the experiment when it lacks them (e.g. mlflow.experimentKind).
	ExperimentTags []mlflowclient.Tag `json:"experiment_tags,omitempty"`
}

// Upload sends a local file or directory tree to ArtifactPath below the run's artifact root.
type Upload struct {
	LocalPath    string `json:"local_path"`
	ArtifactPath string `json:"artifact_path"`
}

// Register creates a version of Model and moves Alias to it when Value beats the metric
// MetricKey of the alias's current version. The version's source is the run's LoggedModel
// (models:/<model_id>) once one was logged, else the run's ArtifactPath.
type Register struct {
	Model        string             `json:"model"`
	ArtifactPath string             `json:"artifact_path"`
	Alias        string             `json:"alias,omitempty"`
	MetricKey    string             `json:"metric_key,omitempty"`
	Value        mlflowclient.Float `json:"value"`
}

// Terminate ends the run.
type Terminate struct {
	Status  string `json:"status"`
	EndTime int64  `json:"end_time"`
}

// Skipped records an entry the server rejected permanently (it is not retried).
type Skipped struct {
	Seq   int64  `json:"seq"`
	Op    string `json:"op"`
	Error string `json:"error"`
}

// State is what has been applied so far; it is saved next to the journal.
type State struct {
	RunID        string    `json:"run_id,omitempty"`
	ExperimentID string    `json:"experiment_id,omitempty"`
	ArtifactURI  string    `json:"artifact_uri,omitempty"`
	Applied      int64     `json:"applied"` // highest applied (or skipped) sequence number
	Version      string    `json:"model_version,omitempty"`
	ModelID      string    `json:"model_id,omitempty"`           // the run's LoggedModel
	ModelURI     string    `json:"model_artifact_uri,omitempty"` // its artifact location
	Promoted     bool      `json:"promoted,omitempty"`
	Terminated   string    `json:"terminated,omitempty"` // final status once applied
	Skipped      []Skipped `json:"skipped,omitempty"`
}

// Journal is one run's spool file, held with an exclusive lock while open.
type Journal struct {
	path string // <dir>/<name>.jsonl

	mu    sync.Mutex
	f     *os.File
	lock  *os.File
	last  int64 // highest sequence number written
	state State
}

// Create starts a new journal in dir (created when missing). A run that already exists on
// the server can be attached with SetRun.
func Create(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	name := fmt.Sprintf("%s-%d", time.Now().UTC().Format("20060102T150405.000000000Z"), os.Getpid())
	return Open(filepath.Join(dir, name+suffix))
}

// Open opens (or creates) the journal at path and locks it.
func Open(path string) (*Journal, error) {
	lock, err := os.OpenFile(strings.TrimSuffix(path, suffix)+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("journal: lock %s: %w", path, err)
	}
	j := &Journal{path: path, lock: lock}
	if err := truncateTornTail(path); err != nil {
		j.Close()
		return nil, err
	}
	entries, err := j.read()
	if err != nil {
		j.Close()
		return nil, err
	}
	if n := len(entries); n > 0 {
		j.last = entries[n-1].Seq
	}
	if b, err := os.ReadFile(j.statePath()); err == nil {
		if err := json.Unmarshal(b, &j.state); err != nil {
			j.Close()
			return nil, fmt.Errorf("journal: state %s: %w", j.statePath(), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		j.Close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	if j.f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		j.Close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	return j, nil
}

// truncateTornTail drops an incomplete last line (a crash mid-write) so that appends start
// on a fresh line.
func truncateTornTail(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && (len(data) == 0 || data[len(data)-1] == '\n')) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := os.Truncate(path, int64(bytes.LastIndexByte(data, '\n')+1)); err != nil {
		return fmt.Errorf("journal: drop torn entry: %w", err)
	}
	return nil
}

// List returns the journal files in dir, oldest first.
func List(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if err != nil {
		return nil, err
	}
	sort.Strings(m)
	return m, nil
}

// Path returns the journal file path.
func (j *Journal) Path() string { return j.path }

// filesDir is a directory owned by the journal for files that must outlive the process
// until they are uploaded (e.g. a generated MLmodel).
func (j *Journal) filesDir() string { return strings.TrimSuffix(j.path, suffix) + ".files" }

func (j *Journal) statePath() string { return strings.TrimSuffix(j.path, suffix) + ".state.json" }

// State returns a copy of the applied state.
func (j *Journal) State() State {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.state
	s.Skipped = append([]Skipped(nil), s.Skipped...)
	return s
}

// SetRun attaches the journal to an existing run (no create_run entry is needed then).
func (j *Journal) SetRun(runID, experimentID, artifactURI string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.state.RunID, j.state.ExperimentID, j.state.ArtifactURI = runID, experimentID, artifactURI
	return j.saveState()
}

// Append writes e (its Seq and Time are assigned) and syncs it to disk.
func (j *Journal) Append(e Entry) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.last >= maxEntries {
		return 0, fmt.Errorf("journal: %s is full (%d entries)", j.path, maxEntries)
	}
	e.Seq = j.last + 1
	if e.Time == 0 {
		e.Time = time.Now().UnixMilli()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return 0, fmt.Errorf("journal: encode: %w", err)
	}
	if len(b) > maxEntrySize {
		return 0, fmt.Errorf("journal: entry of %d bytes exceeds %d", len(b), maxEntrySize)
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return 0, fmt.Errorf("journal: write: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return 0, fmt.Errorf("journal: sync: %w", err)
	}
	j.last = e.Seq
	return e.Seq, nil
}

// Pending returns the entries not applied yet, in order.
func (j *Journal) Pending() ([]Entry, error) {
	j.mu.Lock()
	applied := j.state.Applied
	j.mu.Unlock()
	all, err := j.read()
	if err != nil {
		return nil, err
	}
	i := sort.Search(len(all), func(i int) bool { return all[i].Seq > applied })
	return all[i:], nil
}

// Done reports whether every entry is applied and the run was terminated.
func (j *Journal) Done() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state.Applied >= j.last && j.state.Terminated != ""
}

// read parses the journal; a torn last line (a crash mid-write) is ignored.
func (j *Journal) read() ([]Entry, error) {
	f, err := os.Open(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxEntrySize+1)
	var out []Entry
	var torn error
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if torn != nil { // a bad line followed by more lines: real corruption
			return nil, torn
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			torn = fmt.Errorf("journal: %s: corrupt entry after seq %d: %w", j.path, len(out), err)
			continue
		}
		if len(out) > 0 && e.Seq != out[len(out)-1].Seq+1 {
			return nil, fmt.Errorf("journal: %s: sequence jumps from %d to %d", j.path, out[len(out)-1].Seq, e.Seq)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("journal: %s: %w", j.path, err)
	}
	return out, nil
}

// saveState writes the state with temp-and-rename; j.mu is held.
func (j *Journal) saveState() error {
	b, err := json.MarshalIndent(j.state, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(j.statePath(), b, 0o600); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Close releases the journal's lock.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var errs []error
	if j.f != nil {
		errs = append(errs, j.f.Close())
		j.f = nil
	}
	if j.lock != nil {
		errs = append(errs, j.lock.Close())
		j.lock = nil
	}
	return errors.Join(errs...)
}

// Remove closes the journal and deletes its files (use once Done).
func (j *Journal) Remove() error {
	base := strings.TrimSuffix(j.path, suffix)
	err := j.Close()
	return errors.Join(err, os.Remove(j.path), os.Remove(j.statePath()), os.RemoveAll(j.filesDir()), os.Remove(base+".lock"))
}
