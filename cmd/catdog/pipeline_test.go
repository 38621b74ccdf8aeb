//go:build !catdog_light

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/internal/testenv"
	"github.com/catdog-mlops/catdog/mlflowclient"
)

// TestPipelineTracked runs the main job on a small real subset, in process: prepare -> train
// (tracked by a real mlflow server) -> evaluate -> predict, then reads the run back from the
// server (and through the official Python client) and checks what the team would look at.
func TestPipelineTracked(t *testing.T) {
	srv := testenv.StartMLflow(t)
	work := t.TempDir()

	ws := filepath.Join(work, "ws") // a DVC workspace: the photos are tracked and pushed to a remote
	photos := filepath.Join(ws, "photos")
	copyPhotos(t, photos, 30)
	// one bad file among them: reported, skipped, never fatal
	if err := os.WriteFile(filepath.Join(photos, "Cat", "cat.999.jpg"), []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	params := filepath.Join(work, "params.yaml")
	if err := os.WriteFile(params, []byte("epochs: 3\nbatch_size: 16\nlr: 0.003\ninput_size: 64\ntta: false\nthreads: 2\n"+
		"arch: {name: catdognet-v1, widths: [8, 16, 32], dropout: 0.1, classes: 2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prepared, models := filepath.Join(work, "prepared"), filepath.Join(work, "models")

	run := func(args ...string) string {
		t.Helper()
		out, err := runCatdog(t, args...)
		if err != nil {
			t.Fatalf("catdog %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	remote := filepath.Join(work, "dvc-remote")
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd) // `catdog data -C` changes directory, as dvc -C does; restored at the end
	run("data", "init", "-C", ws, "--no-scm")
	run("data", "remote", "add", "-C", ws, "-d", "local", remote)
	run("data", "add", "-C", ws, "photos")
	run("data", "push", "-C", ws)
	if err := os.Chdir(wd); err != nil {
		t.Fatal(err)
	}
	dvcFile := filepath.Join(ws, "photos.dvc")
	dirMD5, err := dvcFileMD5(dvcFile)
	if err != nil || !strings.HasSuffix(dirMD5, ".dir") {
		t.Fatalf("photos.dvc: %q, %v", dirMD5, err)
	}

	out := run("prepare", "--data", photos, "--out", prepared, "--size", "64", "--quiet")
	if !strings.Contains(out, "cat.999.jpg") || !strings.Contains(out, "60 accepted") {
		t.Errorf("prepare report does not list the bad file or the accepted count:\n%s", out)
	}
	out = run("train", "--params", params, "--data", prepared, "--out", models, "--quiet",
		"--tracking-uri", srv.URI, "--experiment", "pipeline", "--registered-model", "pipeline-model",
		"--mlflow-journal", filepath.Join(work, "journal"), "--dvc-file", dvcFile)
	if !strings.Contains(out, "TEST ACCURACY:") {
		t.Fatalf("train output lacks the test accuracy:\n%s", out)
	}
	runURL := regexp.MustCompile(`MLflow run: +(http://\S+/#/experiments/(\d+)/runs/([0-9a-f]{32}))\n`).FindStringSubmatch(out)
	expURL := regexp.MustCompile(`MLflow experiment: +(http://\S+)\n`).FindStringSubmatch(out)
	if runURL == nil || expURL == nil || expURL[1] != srv.URI+"/#/experiments/"+runURL[2]+"/runs" || !strings.HasPrefix(runURL[1], srv.URI+"/#/") {
		t.Fatalf("train output lacks the run and experiment-runs UI addresses:\n%s", out)
	}
	evalJSON := filepath.Join(work, "eval.json")
	run("evaluate", "--model", models, "--data", prepared, "--split", "test", "--json", evalJSON)
	var ev struct {
		N        int     `json:"n"`
		Accuracy float64 `json:"accuracy"`
	}
	b, err := os.ReadFile(evalJSON)
	if err != nil || json.Unmarshal(b, &ev) != nil || ev.N != 6 {
		t.Fatalf("evaluate JSON: %v %s", err, b)
	}
	var metrics struct {
		Test struct {
			Accuracy float64 `json:"accuracy"`
		} `json:"test"`
	}
	b, _ = os.ReadFile(filepath.Join(models, "metrics.json"))
	if err := json.Unmarshal(b, &metrics); err != nil || metrics.Test.Accuracy != ev.Accuracy {
		t.Errorf("evaluate accuracy %v differs from training's test accuracy %v (%v)", ev.Accuracy, metrics.Test.Accuracy, err)
	}
	out = run("predict", "--model", models, "--json", filepath.Join(photos, "Dog", "dog.3.jpg"))
	var pred prediction
	if err := json.Unmarshal([]byte(out), &pred); err != nil || (pred.Label != "cat" && pred.Label != "dog") ||
		pred.Probabilities["cat"]+pred.Probabilities["dog"] < 0.999 {
		t.Errorf("predict: %v %q", err, out)
	}

	// What the server holds.
	ctx := context.Background()
	c, err := mlflowclient.New(srv.URI)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := c.GetExperimentByName(ctx, "pipeline")
	if err != nil {
		t.Fatal(err)
	}
	runs, _, err := c.SearchRuns(ctx, mlflowclient.RunQuery{ExperimentIDs: []string{exp.ID}})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs: %v %d", err, len(runs))
	}
	r := runs[0]
	if r.Info.Status != "FINISHED" {
		t.Errorf("run status %s", r.Info.Status)
	}
	if v, _ := r.Param("input_size"); v != "64" {
		t.Errorf("param input_size = %q", v)
	}
	if acc, ok := r.Metric("test_accuracy"); !ok || acc != ev.Accuracy {
		t.Errorf("test_accuracy metric %v (%v), evaluate says %v", acc, ok, ev.Accuracy)
	}
	hist, err := c.GetMetricHistory(ctx, r.Info.RunID, "val_accuracy")
	if err != nil || len(hist) != 3 {
		t.Fatalf("val_accuracy history: %v %v", err, hist)
	}
	for i, m := range hist {
		if m.Step != int64(i+1) {
			t.Errorf("val_accuracy point %d has step %d", i, m.Step)
		}
	}
	mv, err := c.GetModelVersionByAlias(ctx, "pipeline-model", "champion")
	if err != nil || mv.RunID != r.Info.RunID {
		t.Fatalf("champion alias: %v %+v", err, mv)
	}
	if runURL[3] != r.Info.RunID || runURL[2] != exp.ID {
		t.Errorf("printed run address %s is not run %s of experiment %s", runURL[1], r.Info.RunID, exp.ID)
	}
	// The official Python client sees the same artifacts, byte for byte, the experiment's
	// training kind, the DVC-tracked data as the run's dataset, and the LoggedModel (with
	// the test metrics) behind the registered version.
	files := map[string]string{"model.json": filepath.Join(models, "model.json"), "best_model.ot": filepath.Join(models, "best_model.ot")}
	step := int64(3)
	testenv.CheckMLflow(t, testenv.MLflowExpectation{
		TrackingURI: srv.URI, RunID: r.Info.RunID, Status: "FINISHED",
		Params:         map[string]string{"epochs": "3", "input_size": "64", "data_dvc_md5": dirMD5},
		ExperimentTags: map[string]string{mlflowclient.TagExperimentKind: mlflowclient.ExperimentKindTraining},
		Datasets: []testenv.MLflowDatasetExpect{{Name: "photos", Digest: dirMD5, SourceType: "dvc", Context: "training",
			Source: map[string]any{"uri": remote, "path": "photos"},
			Profile: map[string]any{"train": 48.0, "val": 6.0, "test": 6.0, "files": 61.0, "size_bytes": float64(dirSize(t, photos)),
				"classes": []any{"cat", "dog"}, "image_size": 64.0, "rejected": 1.0}}},
		LoggedModel: &testenv.MLflowLoggedModelExpect{Name: "model", Status: "READY", Step: &step, Files: files,
			Metrics:    map[string]float64{"test_accuracy": ev.Accuracy},
			Params:     map[string]string{"input_size": "64"},
			Registered: &testenv.MLflowModelRef{Name: "pipeline-model", Version: mv.Version}},
		Model: &testenv.MLflowModelExpect{Name: "pipeline-model", Version: mv.Version, Alias: "champion", Files: files},
	})
	// `catdog mlflow links` (the end of `make run`) finds the same addresses
	out = run("mlflow", "links", "--tracking-uri", srv.URI, "--experiment", "pipeline")
	if !strings.Contains(out, "MLflow latest run: "+runURL[1]) || !strings.Contains(out, "MLflow experiment: "+expURL[1]) {
		t.Errorf("mlflow links:\n%s\nwant %s and %s", out, runURL[1], expURL[1])
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
