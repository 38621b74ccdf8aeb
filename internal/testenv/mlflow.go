package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MLflowServer is a real `mlflow server` from the project virtualenv, listening on
// 127.0.0.1 with a SQLite backend store and a local --artifacts-destination (artifacts are
// served through the server's proxy, so runs get mlflow-artifacts:/ URIs).
type MLflowServer struct {
	URI  string // http://127.0.0.1:<port>
	Port int
	Dir  string // holds mlflow.db and artifacts/

	bin  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedBuf
}

type lockedBuf struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if len(l.b) > 1<<20 {
		l.b = l.b[len(l.b)-(1<<19):]
	}
	return len(p), nil
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// MLflowBin returns the mlflow executable of the project virtualenv ($CATDOG_VENV, default
// <repo>/.venv) without a testing.TB, for TestMain.
func MLflowBin() (string, error) {
	venv := os.Getenv("CATDOG_VENV")
	if venv == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				venv = filepath.Join(dir, ".venv")
				break
			}
			if filepath.Dir(dir) == dir {
				return "", fmt.Errorf("testenv: no go.mod above %s", wd)
			}
		}
	}
	p := filepath.Join(venv, "bin", "mlflow")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("testenv: mlflow is not installed in %s; run `make venv` (make test does it): %w", venv, err)
	}
	return p, nil
}

// StartMLflowServer starts a server with its store in dir (created when missing). Stop it
// with Stop. It is the TestMain-friendly form of StartMLflow.
func StartMLflowServer(dir string) (*MLflowServer, error) {
	bin, err := MLflowBin()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &MLflowServer{URI: fmt.Sprintf("http://127.0.0.1:%d", port), Port: port, Dir: dir, bin: bin}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// RunWithMLflow is the TestMain of a package whose tests share one real mlflow server: it
// starts the server in a temporary directory, stores it in *srv, runs the tests, stops the
// server and returns the exit code for os.Exit. A server that does not start fails the
// package (with the install hint), never skips it; pkg names the package in that message.
func RunWithMLflow(m *testing.M, pkg string, srv **MLflowServer) int {
	dir, err := os.MkdirTemp("", pkg+"-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	s, err := StartMLflowServer(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s tests need a real mlflow server: %v\n", pkg, err)
		return 1
	}
	defer s.Stop()
	*srv = s
	return m.Run()
}

// StartMLflow starts a server for one test (or test package) in a temporary directory and
// stops it at cleanup. A missing mlflow fails the test with an install hint.
func StartMLflow(t testing.TB) *MLflowServer {
	t.Helper()
	s, err := StartMLflowServer(t.TempDir())
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the server on its port with its backing store; it waits for /health.
func (s *MLflowServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		select {
		case <-s.done:
		default:
			return nil // running
		}
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "artifacts"), 0o755); err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "server",
		"--backend-store-uri", "sqlite:///"+filepath.Join(s.Dir, "mlflow.db"),
		"--artifacts-destination", filepath.Join(s.Dir, "artifacts"),
		"--serve-artifacts",
		"--host", "127.0.0.1", "--port", strconv.Itoa(s.Port), "--workers", "1")
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false", "PYTHONUNBUFFERED=1",
		"MLFLOW_DISABLE_TELEMETRY=true", "DO_NOT_TRACK=true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.out == nil {
		s.out = &lockedBuf{}
	}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: start mlflow server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := WaitHTTP(ctx, s.URI+"/health", done); err != nil {
		s.stopLocked()
		return fmt.Errorf("testenv: mlflow server did not become ready at %s: %w\n--- output ---\n%s", s.URI, err, tail(s.out.String(), 4000))
	}
	return nil
}

// Stop terminates the server (SIGTERM to its process group, SIGKILL after 10 s). The store
// stays, so Start brings the same server back on the same port.
func (s *MLflowServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *MLflowServer) stopLocked() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// Output returns the server's recent output.
func (s *MLflowServer) Output() string { return s.out.String() }

// ArtifactsDir is the server's --artifacts-destination.
func (s *MLflowServer) ArtifactsDir() string { return filepath.Join(s.Dir, "artifacts") }

// MLflowExpectation is what the independent Python reader (mlflowclient/testdata/reader.py,
// run with the official mlflow client from the virtualenv) checks on the server.
type MLflowExpectation struct {
	TrackingURI string              `json:"tracking_uri"`
	RunID       string              `json:"run_id,omitempty"`
	Status      string              `json:"status,omitempty"`
	Params      map[string]string   `json:"params,omitempty"`
	Tags        map[string]string   `json:"tags,omitempty"`
	Metrics     map[string][][3]any `json:"metrics,omitempty"`   // full history: [step, value, timestamp]
	Artifacts   map[string]string   `json:"artifacts,omitempty"` // run-relative path -> local file (byte-equal)
	Model       *MLflowModelExpect  `json:"model,omitempty"`
	// ExperimentTags are checked on the run's experiment.
	ExperimentTags map[string]string `json:"experiment_tags,omitempty"`
	// Datasets are the run's expected dataset inputs.
	Datasets []MLflowDatasetExpect `json:"datasets,omitempty"`
	// LoggedModel is the run's expected MLflow 3 LoggedModel (its only model output).
	LoggedModel *MLflowLoggedModelExpect `json:"logged_model,omitempty"`
	// Children are the expected child runs (tag mlflow.parentRunId = RunID).
	Children *MLflowChildrenExpect `json:"children,omitempty"`
}

// MLflowDatasetExpect is one expected dataset input; Source and Profile compare as JSON.
type MLflowDatasetExpect struct {
	Name       string         `json:"name"`
	Digest     string         `json:"digest"`
	SourceType string         `json:"source_type"`
	Source     map[string]any `json:"source"`
	Profile    map[string]any `json:"profile"`
	Context    string         `json:"context"`
}

// MLflowLoggedModelExpect describes a LoggedModel: its metrics and params (subsets), files
// (path in the model -> local file), the registered version made from it and the step it
// was logged at (nil: not checked).
type MLflowLoggedModelExpect struct {
	Name       string             `json:"name"`
	Status     string             `json:"status,omitempty"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	Params     map[string]string  `json:"params,omitempty"`
	Files      map[string]string  `json:"files,omitempty"`
	Registered *MLflowModelRef    `json:"registered,omitempty"`
	Step       *int64             `json:"step,omitempty"`
}

// MLflowModelRef names a registered model version.
type MLflowModelRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// MLflowChildrenExpect describes the child runs of a parent run.
type MLflowChildrenExpect struct {
	Count   int               `json:"count"`
	Status  string            `json:"status,omitempty"` // count only the children in this status
	Tags    map[string]string `json:"tag,omitempty"`
	Params  []string          `json:"params,omitempty"`
	Metrics []string          `json:"metrics,omitempty"`
}

// MLflowModelExpect describes a registered model version to check.
type MLflowModelExpect struct {
	Name          string            `json:"name"`
	Version       string            `json:"version"`
	Alias         string            `json:"alias,omitempty"`
	Files         map[string]string `json:"files,omitempty"` // path in the model dir -> local file
	MLmodelFlavor string            `json:"mlmodel_flavor,omitempty"`
}

// AddMetric appends one expected metric point (NaN is sent as the string "NaN").
func (e *MLflowExpectation) AddMetric(key string, step int64, value float64, ts int64) {
	if e.Metrics == nil {
		e.Metrics = map[string][][3]any{}
	}
	var v any = value
	if math.IsNaN(value) {
		v = "NaN"
	} else if math.IsInf(value, 0) {
		v = math.Copysign(math.MaxFloat64, value) // the SQL store clamps ±Inf
	}
	e.Metrics[key] = append(e.Metrics[key], [3]any{step, v, ts})
}

// CheckMLflow runs the Python reader and fails the test when anything differs.
func CheckMLflow(t testing.TB, e MLflowExpectation) {
	t.Helper()
	py := VenvBin(t, "python")
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "expect.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join(RepoRoot(t), "mlflowclient", "testdata", "reader.py"), f)
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI="+e.TrackingURI, "PYTHONWARNINGS=ignore",
		"MLFLOW_DISABLE_TELEMETRY=true", "DO_NOT_TRACK=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python reader (official mlflow client) found differences: %v\n%s", err, out)
	}
	var res struct {
		OK      bool `json:"ok"`
		Checked int  `json:"checked"`
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || !res.OK || res.Checked == 0 {
		t.Fatalf("python reader: %s", out)
	}
	t.Logf("python reader: %d checks passed", res.Checked)
}
