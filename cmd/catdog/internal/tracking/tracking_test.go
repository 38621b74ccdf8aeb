package tracking

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/internal/testenv"
	"github.com/catdog-mlops/catdog/mlflowclient"
	"github.com/catdog-mlops/catdog/mlflowclient/journal"
)

var server *testenv.MLflowServer

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMLflow(m, "tracking", &server)) }

func client(t *testing.T, uri string) *mlflowclient.Client {
	t.Helper()
	c, err := mlflowclient.New(uri, mlflowclient.WithRetry(mlflowclient.RetryPolicy{MaxRetries: 1, BaseDelay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond}),
		mlflowclient.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// modelDir writes what `catdog train` leaves in its output directory.
func modelDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, n := range map[string]int{"best_model.ot": 200_000, "model.json": 100, "metrics.json": 50, "confusion_matrix.png": 3000, "learning_curves.png": 4000, "manifest.csv": 500} {
		b := make([]byte, n)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// logEpochs simulates the training loop's calls for epochs [from, to).
func logEpochs(t *testing.T, ctx context.Context, s *Session, e *testenv.MLflowExpectation, from, to int64) {
	t.Helper()
	for ep := from; ep < to; ep++ {
		start := time.Now()
		m := map[string]float64{"train/loss": 1 / float64(ep+1), "val/accuracy": 0.5 + float64(ep)/100}
		if err := s.LogMetrics(ctx, ep, m); err != nil {
			t.Fatalf("LogMetrics(%d): %v", ep, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("LogMetrics(%d) blocked training for %v", ep, d)
		}
		// read the timestamps back from the journal-independent view: we log them as sent
		for k, v := range m {
			e.AddMetric(k, ep, v, -1)
		}
	}
}

// checkHistories checks there is exactly one point per step (nothing lost, nothing duplicated).
func checkHistories(t *testing.T, ctx context.Context, c *mlflowclient.Client, runID string, keys []string, steps int) {
	t.Helper()
	for _, k := range keys {
		h, err := c.GetMetricHistory(ctx, runID, k)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int64]int{}
		for _, m := range h {
			seen[m.Step]++
		}
		if len(h) != steps || len(seen) != steps {
			t.Fatalf("metric %s: %d points over %d steps, want exactly %d (one per epoch): %+v", k, len(h), len(seen), steps, h)
		}
	}
}

func TestSessionRegistersAndPromotes(t *testing.T) {
	ctx := context.Background()
	c := client(t, server.URI)
	model := fmt.Sprintf("catdog-%d", time.Now().UnixNano())
	exp := fmt.Sprintf("exp-%d", time.Now().UnixNano())
	var last struct {
		runID, dir string
	}
	for i, acc := range []float64{0.80, 0.70, 0.90} {
		jdir := t.TempDir()
		s, err := Start(ctx, Config{Client: c, JournalDir: jdir, Experiment: exp, RunName: fmt.Sprintf("run-%d", i), RegisteredModel: model,
			GitCommit: "abc123", Tags: map[string]string{"catdog.version": "test"}})
		if err != nil {
			t.Fatal(err)
		}
		if s.RunID() == "" {
			t.Fatal("run not created while the server is up")
		}
		params := map[string]string{"lr": "0.001", "epochs": "3", "seed": "42"}
		if err := s.LogParams(ctx, params); err != nil {
			t.Fatal(err)
		}
		if err := s.SetTags(ctx, map[string]string{"dataset.md5": "d41d8cd9"}); err != nil {
			t.Fatal(err)
		}
		if err := s.LogDataset(ctx, testDataset); err != nil {
			t.Fatal(err)
		}
		e := testenv.MLflowExpectation{}
		logEpochs(t, ctx, s, &e, 0, 3)
		dir := modelDir(t)
		sum, err := s.Finish(ctx, dir, acc, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantPromoted := i != 1
		if sum.Status != mlflowclient.StatusFinished || sum.Spooled != 0 || sum.Version != fmt.Sprint(i+1) || sum.Promoted != wantPromoted {
			t.Fatalf("run %d (acc %.2f): summary %+v, want version %d promoted=%t", i, acc, sum, i+1, wantPromoted)
		}
		if left, _ := journal.List(jdir); len(left) != 0 {
			t.Fatalf("journal not removed after a complete run: %v", left)
		}
		checkHistories(t, ctx, c, sum.RunID, []string{"train/loss", "val/accuracy"}, 3)
		run, _ := c.GetRun(ctx, sum.RunID)
		if v, ok := run.Metric("test_accuracy"); !ok || v != acc {
			t.Fatalf("test_accuracy = %v, %t", v, ok)
		}
		last.runID, last.dir = sum.RunID, dir
		if sum.ModelID == "" || sum.ExperimentID == "" {
			t.Fatalf("summary %+v lacks the logged model or the experiment", sum)
		}
		if i == 2 {
			arts, files := map[string]string{}, map[string]string{}
			for _, n := range []string{"best_model.ot", "model.json", "metrics.json", "confusion_matrix.png", "learning_curves.png", "manifest.csv"} {
				files[n] = filepath.Join(dir, n)
			}
			for _, n := range rootArtifacts {
				arts[n] = filepath.Join(dir, n)
			}
			step := int64(2)
			testenv.CheckMLflow(t, testenv.MLflowExpectation{TrackingURI: server.URI, RunID: sum.RunID, Status: "FINISHED",
				Params: params, Tags: map[string]string{"dataset.md5": "d41d8cd9", "catdog.version": "test", "mlflow.source.git.commit": "abc123", "mlflow.runName": "run-2"},
				Artifacts:      arts,
				ExperimentTags: map[string]string{mlflowclient.TagExperimentKind: mlflowclient.ExperimentKindTraining},
				Datasets: []testenv.MLflowDatasetExpect{{Name: "petimages", Digest: testDataset.Dataset.Digest, SourceType: "dvc",
					Source: map[string]any{"uri": "/srv/dvc-remote", "path": "petimages"}, Profile: map[string]any{"train": 1600.0, "val": 200.0, "test": 200.0},
					Context: "training"}},
				LoggedModel: &testenv.MLflowLoggedModelExpect{Name: ModelArtifactPath, Status: "READY", Step: &step,
					Metrics: map[string]float64{"test_accuracy": acc, "val/accuracy": 0.52, "train/loss": 1.0 / 3},
					Params:  params, Files: files, Registered: &testenv.MLflowModelRef{Name: model, Version: "3"}},
				Model: &testenv.MLflowModelExpect{Name: model, Version: "3", Alias: "champion", MLmodelFlavor: Flavor,
					Files: map[string]string{"best_model.ot": filepath.Join(dir, "best_model.ot"), "model.json": filepath.Join(dir, "model.json")}}})
		}
	}
	// catdog model pull's path: the champion downloads as a servable directory
	out := t.TempDir()
	mv, files, err := c.DownloadModel(ctx, "models:/"+model+"@champion", out)
	if err != nil || mv.RunID != last.runID || len(files) != 7 {
		t.Fatalf("DownloadModel = %+v, %v, %v", mv, files, err)
	}
	b, _ := os.ReadFile(filepath.Join(out, "MLmodel"))
	m, err := mlflowclient.ParseMLmodel(b)
	if err != nil || m.RunID != last.runID || m.Flavors[Flavor]["model_data"] != "best_model.ot" || m.ModelSizeBytes == 0 || !strings.HasPrefix(m.ModelID, "m-") {
		t.Fatalf("MLmodel = %+v, %v", m, err)
	}
}

// testDataset is what `catdog train` logs for DVC-tracked photos.
var testDataset = mlflowclient.DatasetInput{
	Tags: []mlflowclient.Tag{{Key: mlflowclient.TagDatasetContext, Value: "training"}},
	Dataset: mlflowclient.Dataset{Name: "petimages", Digest: "0123456789abcdef0123456789abcdef.dir", SourceType: "dvc",
		Source: `{"uri": "/srv/dvc-remote", "path": "petimages"}`, Profile: `{"train": 1600, "val": 200, "test": 200}`},
}

// TestExperimentKindSetOnExistingExperiment: an experiment made elsewhere without the
// training kind gets it; one with another kind keeps it.
func TestExperimentKindSetOnExistingExperiment(t *testing.T) {
	ctx := context.Background()
	c := client(t, server.URI)
	for _, tc := range []struct{ have, want string }{{"", mlflowclient.ExperimentKindTraining}, {"genai_development", "genai_development"}} {
		name := fmt.Sprintf("kind-%q-%d", tc.have, time.Now().UnixNano())
		var tags []mlflowclient.Tag
		if tc.have != "" {
			tags = append(tags, mlflowclient.Tag{Key: mlflowclient.TagExperimentKind, Value: tc.have})
		}
		id, err := c.CreateExperiment(ctx, name, tags...)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Start(ctx, Config{Client: c, JournalDir: t.TempDir(), Experiment: name})
		if err != nil {
			t.Fatal(err)
		}
		if s.ExperimentID() != id {
			t.Fatalf("session experiment %q, want %q", s.ExperimentID(), id)
		}
		if _, err := s.Finish(ctx, "", 0, nil); err != nil {
			t.Fatal(err)
		}
		exp, err := c.GetExperiment(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := exp.Tag(mlflowclient.TagExperimentKind); v != tc.want {
			t.Fatalf("experiment with kind %q: kind %q after a run, want %q", tc.have, v, tc.want)
		}
	}
}

func TestSessionFailedAndKilled(t *testing.T) {
	c := client(t, server.URI)
	exp := fmt.Sprintf("exp-%d", time.Now().UnixNano())
	tests := []struct {
		name   string
		cancel bool
		runErr error
		want   string
	}{
		{"training error", false, errors.New("out of memory"), mlflowclient.StatusFailed},
		{"interrupted", true, context.Canceled, mlflowclient.StatusKilled},
		{"cancelled context without error", true, nil, mlflowclient.StatusKilled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := Start(ctx, Config{Client: c, JournalDir: t.TempDir(), Experiment: exp, RegisteredModel: "never-" + exp})
			if err != nil {
				t.Fatal(err)
			}
			logEpochs(t, ctx, s, &testenv.MLflowExpectation{}, 0, 1)
			if tc.cancel {
				cancel()
			}
			sum, err := s.Finish(ctx, modelDir(t), 0.99, tc.runErr)
			if err != nil {
				t.Fatal(err)
			}
			run, err := c.GetRun(context.Background(), sum.RunID)
			if err != nil || run.Info.Status != tc.want || run.Info.EndTime == 0 || sum.Version != "" {
				t.Fatalf("run %+v, summary %+v, err %v; want status %s and no version", run.Info, sum, err, tc.want)
			}
		})
	}
	if _, err := c.GetRegisteredModel(context.Background(), "never-"+exp); !errors.Is(err, mlflowclient.ErrNotFound) {
		t.Fatalf("a failed run registered a model: %v", err)
	}
}

// TestJournalSurvivesServerOutage stops the real server in the middle of a run, keeps
// logging (spooled), restarts the server on the same port and store, and syncs: every
// metric point arrives exactly once, in order, and a second replay changes nothing.
func TestJournalSurvivesServerOutage(t *testing.T) {
	srv := testenv.StartMLflow(t) // its own server: this test stops it
	ctx := context.Background()
	c := client(t, srv.URI)
	jdir := t.TempDir()
	model := "outage"
	params := map[string]string{"lr": "0.01"}

	// run A starts online and loses the server after 4 epochs
	a, err := Start(ctx, Config{Client: c, JournalDir: jdir, Experiment: "outage", RunName: "a", RegisteredModel: model})
	if err != nil || a.RunID() == "" {
		t.Fatalf("Start = %v (run %q)", err, a.RunID())
	}
	if err := a.LogParams(ctx, params); err != nil {
		t.Fatal(err)
	}
	logEpochs(t, ctx, a, &testenv.MLflowExpectation{}, 0, 4)
	srv.Stop()
	logEpochs(t, ctx, a, &testenv.MLflowExpectation{}, 4, 10)
	dirA := modelDir(t)
	sumA, err := a.Finish(ctx, dirA, 0.9, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sumA.Spooled == 0 || sumA.Journal == "" || sumA.Version != "" {
		t.Fatalf("Finish while the server is down: %+v, want spooled entries", sumA)
	}

	// run B starts while the server is down: it exists only in the journal
	b, err := Start(ctx, Config{Client: c, JournalDir: jdir, Experiment: "outage", RunName: "b", RegisteredModel: model})
	if err != nil || b.RunID() != "" {
		t.Fatalf("Start offline = %v, run %q", err, b.RunID())
	}
	logEpochs(t, ctx, b, &testenv.MLflowExpectation{}, 0, 5)
	sumB, err := b.Finish(ctx, modelDir(t), 0.8, nil)
	if err != nil || sumB.Spooled == 0 {
		t.Fatalf("offline Finish = %+v, %v", sumB, err)
	}

	// keep a copy of run A's journal as it was before the sync, to replay it again later
	backup := t.TempDir()
	copyJournal(t, strings.TrimSuffix(sumA.Journal, ".jsonl"), backup)

	// sync while still down: nothing lost, still pending
	res, err := journal.Sync(ctx, c, jdir)
	if err != nil || len(res) == 0 || !errors.Is(res[0].Err, journal.ErrOffline) {
		t.Fatalf("Sync while down = %+v, %v; want ErrOffline", res, err)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	res, err = journal.Sync(ctx, c, jdir)
	if err != nil || len(res) != 2 {
		t.Fatalf("Sync = %+v, %v", res, err)
	}
	for _, r := range res {
		if r.Err != nil || !r.Removed || len(r.Result.Skipped) != 0 {
			t.Fatalf("sync of %s: %+v", r.Path, r)
		}
	}
	runA, runB := res[0].RunID, res[1].RunID
	if runA != sumA.RunID || runB == "" {
		t.Fatalf("synced runs %q %q, want %q and a new one", runA, runB, sumA.RunID)
	}
	checkHistories(t, ctx, c, runA, []string{"train/loss", "val/accuracy"}, 10)
	checkHistories(t, ctx, c, runB, []string{"train/loss", "val/accuracy"}, 5)

	// the official client sees the complete runs; A (0.9) is the champion, B (0.8) is not
	arts := map[string]string{"confusion_matrix.png": filepath.Join(dirA, "confusion_matrix.png")}
	testenv.CheckMLflow(t, testenv.MLflowExpectation{TrackingURI: srv.URI, RunID: runA, Status: "FINISHED", Params: params, Artifacts: arts,
		ExperimentTags: map[string]string{mlflowclient.TagExperimentKind: mlflowclient.ExperimentKindTraining},
		LoggedModel: &testenv.MLflowLoggedModelExpect{Name: ModelArtifactPath, Status: "READY", Metrics: map[string]float64{"test_accuracy": 0.9},
			Files: map[string]string{"best_model.ot": filepath.Join(dirA, "best_model.ot")}, Registered: &testenv.MLflowModelRef{Name: model, Version: "1"}},
		Model: &testenv.MLflowModelExpect{Name: model, Version: "1", Alias: "champion", MLmodelFlavor: Flavor}})
	rb, _ := c.GetRun(ctx, runB)
	if rb.Info.Status != "FINISHED" || rb.Info.RunName != "b" {
		t.Fatalf("run B = %+v", rb.Info)
	}

	// replaying run A's pre-sync journal again duplicates nothing
	res, err = journal.Sync(ctx, c, backup)
	if err != nil || len(res) != 1 || res[0].Err != nil || res[0].Result.Applied == 0 || res[0].RunID != runA {
		t.Fatalf("second Sync = %+v, %v", res, err)
	}
	checkHistories(t, ctx, c, runA, []string{"train/loss", "val/accuracy"}, 10)
	checkHistories(t, ctx, c, runA, []string{"test_accuracy"}, 1)
	vs, _, err := c.SearchModelVersions(ctx, mlflowclient.ModelVersionQuery{Filter: "name='" + model + "'"})
	if err != nil || len(vs) != 2 {
		t.Fatalf("model versions after the second replay = %d, %v; want 2 (A and B once each)", len(vs), err)
	}
	ra, _ := c.GetRun(ctx, runA)
	lms, _, err := c.SearchLoggedModels(ctx, []string{ra.Info.ExperimentID}, "source_run_id = '"+runA+"'", "")
	if err != nil || len(lms) != 1 || len(ra.Outputs.ModelOutputs) != 1 {
		t.Fatalf("after the second replay run A has %d logged models (%v) and outputs %+v; want exactly one", len(lms), err, ra.Outputs)
	}
}

// copyJournal copies the journal and state files of the journal with path prefix base.
func copyJournal(t *testing.T, base, to string) {
	t.Helper()
	for _, name := range []string{base + ".jsonl", base + ".state.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(name)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStartRejectsDeletedExperiment(t *testing.T) {
	ctx := context.Background()
	c := client(t, server.URI)
	name := fmt.Sprintf("deleted-%d", time.Now().UnixNano())
	id, err := c.CreateExperiment(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteExperiment(ctx, id); err != nil {
		t.Fatal(err)
	}
	jdir := t.TempDir()
	s, err := Start(ctx, Config{Client: c, JournalDir: jdir, Experiment: name})
	if err == nil || s != nil || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("Start(deleted experiment) = %v, %v; want a clear error", s, err)
	}
	if left, _ := journal.List(jdir); len(left) != 0 {
		t.Fatalf("journal kept for a rejected run: %v", left)
	}
}

func TestSessionConcurrentLogging(t *testing.T) {
	ctx := context.Background()
	c := client(t, server.URI)
	s, err := Start(ctx, Config{Client: c, JournalDir: t.TempDir(), Experiment: fmt.Sprintf("conc-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				if err := s.LogMetrics(ctx, int64(g*5+i), map[string]float64{"m": float64(g)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	sum, err := s.Finish(ctx, "", 0, nil)
	if err != nil || sum.Spooled != 0 {
		t.Fatalf("Finish = %+v, %v", sum, err)
	}
	checkHistories(t, ctx, c, sum.RunID, []string{"m"}, 20)
	runs, _, err := c.SearchRuns(ctx, mlflowclient.RunQuery{ExperimentIDs: []string{mustExp(t, c, s)}})
	if err != nil || len(runs) != 1 {
		t.Fatalf("concurrent logging created %d runs (%v), want 1", len(runs), err)
	}
}

func mustExp(t *testing.T, c *mlflowclient.Client, s *Session) string {
	exp, err := c.GetExperimentByName(context.Background(), s.cfg.Experiment)
	if err != nil {
		t.Fatal(err)
	}
	return exp.ID
}
