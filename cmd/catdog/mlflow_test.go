//go:build !catdog_light

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/drift/driftreport"
	"github.com/catdog-mlops/catdog/internal/drifttest"
	"github.com/catdog-mlops/catdog/internal/testenv"
	"github.com/catdog-mlops/catdog/mlflowclient"
	"github.com/catdog-mlops/catdog/mlflowclient/promote"
	"github.com/catdog-mlops/catdog/model/modeldir"
)

// fakePrepared writes a prepared.json whose manifest md5 the fake runs record as their split.
func fakePrepared(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prepared.json"), []byte(`{"size": 32, "classes": ["cat", "dog"], "manifest_md5": "fake-split"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fakeTrainApp is the app plus a command that drives the tracking adapter exactly as
// `catdog train` does (start, params, per-epoch metrics, Finish, the promotion gate), without
// libtorch work. prepared is the data folder the gate reads the split from.
func fakeTrainApp(out *bytes.Buffer, modelDir string, acc float64, prepared ...string) *cli.App {
	app := newApp()
	app.Writer, app.ErrWriter = out, out
	app.Commands = append(app.Commands, &cli.Command{
		Name:  "fake-train",
		Flags: append(trackingFlags(), &cli.StringFlag{Name: "params", Value: "no-params.yaml"}),
		Action: func(c *cli.Context) error {
			ts, err := startTracking(c)
			if err != nil || ts == nil {
				return err
			}
			ctx := c.Context
			_ = ts.LogParams(ctx, map[string]string{"lr": "0.001", "epochs": "3", splitParam: "fake-split"})
			for ep := int64(0); ep < 3; ep++ {
				_ = ts.LogMetrics(ctx, ep, map[string]float64{"val/accuracy": 0.5 + float64(ep)/10})
			}
			if err := ts.Finish(ctx, modelDir, acc, nil); err != nil || len(prepared) == 0 {
				return err
			}
			return ts.promoteAfterTraining(ctx, prepared[0])
		},
	})
	return app
}

func writeModelDir(t *testing.T) string {
	dir := t.TempDir()
	for _, n := range []string{"best_model.ot", "model.json", "metrics.json", "confusion_matrix.png", "learning_curves.png", "manifest.csv", "drift_profile.json"} {
		b := make([]byte, 1000+len(n))
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runApp(t *testing.T, app *cli.App, args ...string) (string, error) {
	t.Helper()
	err := app.RunContext(context.Background(), append([]string{"catdog"}, args...))
	return app.Writer.(*bytes.Buffer).String(), err
}

// TestTrackingCLI: a tracked run registers the champion; `catdog model pull` downloads it; a
// run made while the server is down is spooled, and `catdog mlflow sync` sends it later.
func TestTrackingCLI(t *testing.T) {
	start := time.Now()
	phase := func(s string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), s) }
	srv := testenv.StartMLflow(t)
	phase("server up")
	jdir := t.TempDir()
	common := []string{"--tracking-uri", srv.URI, "--mlflow-journal", jdir, "--registered-model", "cli-model", "--experiment", "cli"}

	// no tracking URI: no session, no error
	t.Setenv("MLFLOW_TRACKING_URI", "")
	var out bytes.Buffer
	if _, err := runApp(t, fakeTrainApp(&out, writeModelDir(t), 0.5), "fake-train"); err != nil || out.Len() != 0 {
		t.Fatalf("untracked run: %v %q", err, out.String())
	}

	dir1, prepared := writeModelDir(t), fakePrepared(t)
	out.Reset()
	got, err := runApp(t, fakeTrainApp(&out, dir1, 0.8, prepared), append([]string{"fake-train"}, common...)...)
	if err != nil || !strings.Contains(got, "registered cli-model version 1") || !strings.Contains(got, "promote cli-model v1: first") {
		t.Fatalf("tracked run: %v\n%s", err, got)
	}
	pull := func(wantVersion string, wantDir string) {
		t.Helper()
		dst := t.TempDir()
		var o bytes.Buffer
		got, err := runApp(t, fakeTrainApp(&o, "", 0), "model", "pull", "models:/cli-model@champion", "--out", dst, "--tracking-uri", srv.URI)
		if err != nil || !strings.Contains(got, "pulled cli-model version "+wantVersion) {
			t.Fatalf("model pull: %v\n%s", err, got)
		}
		// the drift reference travels with the model: serve and drift report read it from here
		for _, n := range []string{"best_model.ot", "model.json", "MLmodel", "drift_profile.json"} {
			if _, err := os.Stat(filepath.Join(dst, n)); err != nil {
				t.Fatalf("pulled model lacks %s: %v", n, err)
			}
		}
		if !strings.Contains(got, "verified 7 files against SHA256SUMS") {
			t.Errorf("model pull did not verify the digests:\n%s", got)
		}
		if l, err := provenanceLabels(dst); err != nil || l[LabelModelVersion] != wantVersion || l[LabelModelName] != "cli-model" || l[LabelModelRunID] == "" {
			t.Errorf("provenance of the pulled model: %v, %v", l, err)
		}
		a, _ := os.ReadFile(filepath.Join(dst, "best_model.ot"))
		b, _ := os.ReadFile(filepath.Join(wantDir, "best_model.ot"))
		if !bytes.Equal(a, b) {
			t.Fatal("pulled best_model.ot differs from the trained one")
		}
	}
	pull("1", dir1)
	phase("champion v1 pulled")

	// the server goes away; training still succeeds and the run is spooled
	srv.Stop()
	phase("server stopped")
	dir2 := writeModelDir(t)
	out.Reset()
	got, err = runApp(t, fakeTrainApp(&out, dir2, 0.9, prepared), append([]string{"fake-train"}, common...)...)
	if err != nil || !strings.Contains(got, "catdog mlflow sync") || !strings.Contains(got, "catdog model promote --run-id") {
		t.Fatalf("offline run: %v\n%s", err, got)
	}
	phase("offline run spooled; restarting server")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	got, err = runApp(t, fakeTrainApp(&out, "", 0), "mlflow", "sync", "--tracking-uri", srv.URI, "--mlflow-journal", jdir)
	if err != nil || !strings.Contains(got, "complete, removed") {
		t.Fatalf("mlflow sync: %v\n%s", err, got)
	}
	pull("1", dir1) // synced and registered, but not promoted yet
	out.Reset()
	got, err = runApp(t, fakeTrainApp(&out, "", 0), "model", "promote", "--tracking-uri", srv.URI, "--registered-model", "cli-model",
		"--data", prepared, "--params", filepath.Join(t.TempDir(), "absent.yaml"))
	if err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Fatalf("model promote with a missing --params: %v\n%s", err, got)
	}
	out.Reset()
	got, err = runApp(t, fakeTrainApp(&out, "", 0), "model", "promote", "--tracking-uri", srv.URI, "--registered-model", "cli-model", "--data", prepared)
	if err != nil || !strings.Contains(got, "promote cli-model v2: promoted") || !strings.Contains(got, "@champion -> v2") {
		t.Fatalf("model promote: %v\n%s", err, got)
	}
	pull("2", dir2)
	phase("synced, promoted; champion v2 pulled")
	out.Reset()
	got, _ = runApp(t, fakeTrainApp(&out, "", 0), "mlflow", "sync", "--tracking-uri", srv.URI, "--mlflow-journal", jdir)
	if !strings.Contains(got, "nothing to sync") {
		t.Fatalf("second sync: %s", got)
	}

	// a version whose files do not match its SHA256SUMS is refused by model pull
	ctx := context.Background()
	cl, err := mlflowclient.New(srv.URI)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := cl.GetOrCreateExperiment(ctx, "tampered", false)
	if err != nil {
		t.Fatal(err)
	}
	run, err := cl.CreateRun(ctx, mlflowclient.CreateRunRequest{ExperimentID: exp.ID})
	if err != nil {
		t.Fatal(err)
	}
	bad := writeModelDir(t)
	if err := writeDigests(bad); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "model.json"), []byte("{}"), 0o644); err != nil { // changed after the digests
		t.Fatal(err)
	}
	root, err := cl.RunArtifactRoot(ctx, run.Info.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.UploadDir(ctx, root, bad, "model"); err != nil {
		t.Fatal(err)
	}
	mv, err := cl.CreateModelVersion(ctx, "cli-model", "runs:/"+run.Info.RunID+"/model", run.Info.RunID)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	_, err = runApp(t, fakeTrainApp(&out, "", 0), "model", "pull", "models:/cli-model/"+mv.Version, "--out", t.TempDir(), "--tracking-uri", srv.URI)
	var de *DigestError
	if !errors.As(err, &de) || len(de.Mismatch) != 1 || de.Mismatch[0] != "model.json" {
		t.Fatalf("model pull of a tampered version: %v", err)
	}

	// --no-promote registers without judging; in GitHub Actions the run id and the version are
	// step outputs (train.yml's repro step), and `catdog model promote --run-id` judges exactly
	// that version later, writing its decision as step outputs.
	ghOut := filepath.Join(t.TempDir(), "github_output")
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("GITHUB_OUTPUT", ghOut)
	out.Reset()
	got, err = runApp(t, fakeTrainApp(&out, writeModelDir(t), 0.5, prepared), append([]string{"fake-train", "--no-promote"}, common...)...)
	if err != nil || strings.Contains(got, "promote cli-model") {
		t.Fatalf("--no-promote run: %v\n%s", err, got)
	}
	trained := testenv.GitHubOutputs(t, ghOut)
	loser, err := cl.GetModelVersion(ctx, "cli-model", trained["registered_version"])
	if err != nil || loser.RunID != trained["run_id"] || trained["run_id"] == "" {
		t.Fatalf("train step outputs %v: version %+v, %v", trained, loser, err)
	}
	if champ, err := cl.GetModelVersionByAlias(ctx, "cli-model", "champion"); err != nil || champ.Version != "2" {
		t.Fatalf("--no-promote moved @champion: %+v %v", champ, err)
	}
	// a version registered later must not be taken for this run's
	if _, err := cl.CreateModelVersion(ctx, "cli-model", "runs:/"+run.Info.RunID+"/model", run.Info.RunID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		want     map[string]string
		wantText string
	}{
		{"challenger loses", []string{"--run-id", trained["run_id"]},
			map[string]string{"decision": promote.OutcomeRejected, "version": loser.Version, "champion": "2", "champion_moved": "false"},
			"promote cli-model v" + loser.Version + ": rejected"},
		{"already champion", []string{"--version", "2"},
			map[string]string{"decision": promote.OutcomeAlready, "version": "2", "champion": "2", "champion_moved": "false"}, ": already"},
	} {
		if err := os.Remove(ghOut); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		got, err = runApp(t, fakeTrainApp(&out, "", 0), append([]string{"model", "promote", "--tracking-uri", srv.URI, "--registered-model", "cli-model", "--data", prepared}, tc.args...)...)
		if err != nil || !strings.Contains(got, tc.wantText) {
			t.Fatalf("%s: model promote: %v\n%s", tc.name, err, got)
		}
		if outs := testenv.GitHubOutputs(t, ghOut); fmt.Sprint(outs) != fmt.Sprint(tc.want) {
			t.Errorf("%s: step outputs %v, want %v", tc.name, outs, tc.want)
		}
	}

	// A champion whose run recorded no score on this split is pulled to be re-evaluated: the
	// download is checked against its SHA256SUMS as model pull checks it, so a tampered champion
	// stops the gate before anything is evaluated.
	if err := cl.SetAlias(ctx, "cli-model", "champion", mv.Version); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	got, err = runApp(t, fakeTrainApp(&out, "", 0), "model", "promote", "--tracking-uri", srv.URI, "--registered-model", "cli-model",
		"--data", prepared, "--run-id", trained["run_id"])
	de = nil
	if !errors.As(err, &de) || len(de.Mismatch) != 1 || de.Mismatch[0] != "model.json" || !strings.Contains(got, "pulling and re-evaluating it") {
		t.Fatalf("promote against a tampered champion: %v\n%s", err, got)
	}
	if champ, err := cl.GetModelVersionByAlias(ctx, "cli-model", "champion"); err != nil || champ.Version != mv.Version {
		t.Errorf("a failed gate moved @champion: %+v %v", champ, err)
	}
}

// TestDriftReportRegisteredModel: `catdog drift report --model models:/NAME@champion` downloads
// the registered model from a real mlflow server and compares against the drift profile that
// travelled with it (the same report as from the directory it was registered from).
func TestDriftReportRegisteredModel(t *testing.T) {
	srv := testenv.StartMLflow(t)
	dir := writeModelDir(t)
	local := driftModelDir(t) // a real profile: dev photos 300..359 at 64 px
	prof, err := os.ReadFile(filepath.Join(local, modeldir.DriftProfile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, modeldir.DriftProfile), prof, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	got, err := runApp(t, fakeTrainApp(&out, dir, 0.8, fakePrepared(t)), "fake-train", "--tracking-uri", srv.URI,
		"--mlflow-journal", t.TempDir(), "--registered-model", "drift-model", "--experiment", "drift")
	if err != nil || !strings.Contains(got, "promote drift-model v1: first") {
		t.Fatalf("tracked run: %v\n%s", err, got)
	}
	dev := filepath.Join(testenv.SharedData(t), "petimages-dev")
	var photos []string
	for i := 400; i < 420; i++ {
		photos = append(photos, filepath.Join(dev, "Cat", fmt.Sprintf("cat.%d.jpg", i)))
	}
	dark := filepath.Join(t.TempDir(), "dark")
	if _, err := drifttest.WriteDerived(photos, drifttest.Darken, dark); err != nil {
		t.Fatal(err)
	}
	reports := map[string]driftreport.Report{}
	for _, tc := range []struct{ name, model string }{
		{"registered", "models:/drift-model@champion"},
		{"directory", local},
	} {
		outDir := t.TempDir()
		t.Setenv("MLFLOW_TRACKING_URI", srv.URI)
		stdout, stderr, err := prepareCLI(t, "drift", "report", "--model", tc.model, "--data", dark, "--out", outDir, "-q")
		if err != nil {
			t.Fatalf("%s: %v\n%s\n%s", tc.name, err, stdout, stderr)
		}
		var rep driftreport.Report
		if b, err := os.ReadFile(filepath.Join(outDir, driftreport.JSONFile)); err != nil || json.Unmarshal(b, &rep) != nil {
			t.Fatalf("%s: report: %v", tc.name, err)
		}
		reports[tc.name] = rep
	}
	reg, loc := reports["registered"], reports["directory"]
	if reg.Model != "models:/drift-model@champion" || reg.ReferenceRows != 120 || reg.CurrentRows != 20 || !reg.DatasetDrift {
		t.Fatalf("registered: model %q, rows %d/%d, dataset drift %v", reg.Model, reg.ReferenceRows, reg.CurrentRows, reg.DatasetDrift)
	}
	for i, c := range reg.Columns {
		if c != loc.Columns[i] {
			t.Errorf("%s: registered %+v, directory %+v", c.Feature, c, loc.Columns[i])
		}
	}
	// an alias that does not exist is an error, not an empty report
	if _, _, err := prepareCLI(t, "drift", "report", "--model", "models:/drift-model@nope", "--data", dark, "--out", t.TempDir(), "-q"); err == nil {
		t.Error("models:/drift-model@nope: no error")
	}
}
