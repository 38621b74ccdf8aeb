//go:build !catdog_light

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/ci/publish"
	"github.com/catdog-mlops/catdog/inference"
	"github.com/catdog-mlops/catdog/internal/testenv"
	"github.com/catdog-mlops/catdog/mlflowclient"
	"github.com/catdog-mlops/catdog/mlflowclient/promote"
)

// envTestMain makes the test binary run main() instead of the tests, so that a test can start
// this package's catdog as a process of its own: `catdog serve`, and the `catdog evaluate` the
// promotion gate runs (torchBinary is os.Executable() in the libtorch build).
const envTestMain = "CATDOG_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envTestMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLifecycleShipAndCheck is the ship-and-check half of the lifecycle on small real models
// and a real mlflow server: two splits of the same photos, v1 trained and promoted on split A,
// v2 trained on split B with --no-promote; `catdog model promote --run-id` on split B pulls v1
// (SHA256SUMS verified) and re-evaluates it with `catdog evaluate` in its own process, and the
// score equals an evaluation of the pulled files; then `catdog serve --model
// models:/NAME@champion` (a process of its own) scored over HTTP by `catdog evaluate --server`
// gives the accuracy of the local evaluation, and the image built from the pulled champion
// carries its name, version, run id and metrics as io.catdog.model.* labels.
func TestLifecycleShipAndCheck(t *testing.T) {
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	srv := testenv.StartMLflow(t)
	work := t.TempDir()
	photos := filepath.Join(work, "photos")
	copyPhotos(t, photos, 20)
	params := filepath.Join(work, "params.yaml")
	if err := os.WriteFile(params, []byte("epochs: 1\nbatch_size: 8\nlr: 0.003\ninput_size: 32\ntta: false\nthreads: 2\nema_decay: 0\n"+
		"arch: {name: catdognet-v1, widths: [8, 16], dropout: 0.1, classes: 2}\npromote: {metric: test_accuracy, margin: 0.0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MLFLOW_TRACKING_URI", srv.URI)
	t.Setenv(envTestMain, "1") // for the processes started below, not for this one
	t.Setenv("GITHUB_ACTIONS", "")
	const name = "life"
	run := func(args ...string) string {
		t.Helper()
		out, err := runCatdog(t, args...)
		if err != nil {
			t.Fatalf("catdog %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	type evaluation struct {
		Accuracy float64 `json:"accuracy"`
		Loss     float64 `json:"loss"`
		N        int     `json:"n"`
	}
	evaluate := func(args ...string) evaluation {
		t.Helper()
		var ev evaluation
		out := run(append([]string{"evaluate", "--split", "test", "--json", "-"}, args...)...)
		if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.N == 0 {
			t.Fatalf("evaluate %v: %v\n%s", args, err, out)
		}
		return ev
	}

	// two test splits of the same photos (another seed and fractions: 16 test photos in B)
	prepA, prepB := filepath.Join(work, "prepA"), filepath.Join(work, "prepB")
	run("prepare", "--data", photos, "--out", prepA, "--size", "32", "--seed", "1", "--quiet")
	run("prepare", "--data", photos, "--out", prepB, "--size", "32", "--seed", "2", "--split", "0.5,0.1,0.4", "--quiet")
	train := func(prepared, out string, extra ...string) {
		t.Helper()
		run(append([]string{"train", "--params", params, "--data", prepared, "--out", out, "--quiet",
			"--experiment", "life", "--registered-model", name, "--mlflow-journal", filepath.Join(work, "journal")}, extra...)...)
	}
	train(prepA, filepath.Join(work, "m1"))
	train(prepB, filepath.Join(work, "m2"), "--no-promote")
	step("v1 (split A, promoted) and v2 (split B, --no-promote) trained")
	ctx := context.Background()
	cl, err := mlflowclient.New(srv.URI)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := cl.GetModelVersion(ctx, name, "2")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	// The gate on split B: v1's recorded score is on split A, so v1 is pulled and re-evaluated.
	out := run("model", "promote", "--params", params, "--data", prepB, "--registered-model", name, "--run-id", v2.RunID, "--json")
	var d promote.Decision
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{\n"):]), &d); err != nil {
		t.Fatalf("promote --json: %v\n%s", err, out)
	}
	if d.Challenger != "2" || d.Champion != "1" || d.ChampionScore.Source != "re-evaluated" || d.ChallengerScore.Source != "run metric" ||
		!strings.Contains(out, "v1 was not evaluated on split") || !regexp.MustCompile(`verified \d+ files against SHA256SUMS`).MatchString(out) {
		t.Fatalf("promote on split B: %+v\n%s", d, out)
	}
	pulledV1 := filepath.Join(work, "pulled-v1")
	run("model", "pull", "models:/"+name+"/1", "--out", pulledV1)
	if ev := evaluate("--model", pulledV1, "--data", prepB); ev.Accuracy != d.ChampionScore.Value {
		t.Errorf("re-evaluated champion score %v, evaluate of the pulled v1 on split B %v", d.ChampionScore.Value, ev.Accuracy)
	}
	step("promote on split B: " + d.Outcome)

	// Serve the champion from the registry in its own process and score it over HTTP.
	champion := filepath.Join(work, "champion")
	out = run("model", "pull", "models:/"+name+"@champion", "--out", champion)
	if !strings.Contains(out, "pulled "+name+" version "+d.ChampionAfter+" ") {
		t.Fatalf("pull of @champion (v%s): %s", d.ChampionAfter, out)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t))
	serve := testenv.Start(t, self, []string{"serve", "--model", "models:/" + name + "@champion", "--addr", strings.TrimPrefix(base, "http://"),
		"--drain-delay", "0s", "--no-drift"}, nil, work)
	serve.WaitHTTP(t, base+"/ready", 90*time.Second)
	var ver inference.VersionResponse
	getJSON(t, base+"/version", &ver)
	if ver.Model.Name != name || ver.Model.Version != d.ChampionAfter {
		t.Errorf("/version model %+v, want %s v%s", ver.Model, name, d.ChampionAfter)
	}
	// the loss too: it is computed from every photo's probabilities, so equal losses mean the
	// served and the local model gave the same answers, not only as many right ones
	served := evaluate("--server", base, "--data", prepB)
	local := evaluate("--model", champion, "--data", prepB)
	if served.Accuracy != local.Accuracy || served.N != local.N || served.N != 16 || math.Abs(served.Loss-local.Loss) > 1e-5 {
		t.Errorf("served %+v != evaluated %+v", served, local)
	}
	step(fmt.Sprintf("served = evaluated: accuracy %.4f, loss %.6f on %d photos", served.Accuracy, served.Loss, served.N))

	// The image of the pulled champion carries its provenance as labels.
	layout := filepath.Join(work, "layout")
	built := run("image", "build", "--binary", self, "--model", champion, "--oci-layout", layout,
		"--cache-dir", filepath.Join(work, "layers"), "--source-date-epoch", "1700000000", "-q")
	img, err := publish.ReadLayout(layout, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	mv, err := cl.GetModelVersion(ctx, name, d.ChampionAfter)
	if err != nil {
		t.Fatal(err)
	}
	src, err := cl.GetRun(ctx, mv.RunID)
	if err != nil {
		t.Fatal(err)
	}
	testAcc, _ := src.Metric("test_accuracy")
	want := map[string]string{
		LabelModelName: name, LabelModelVersion: d.ChampionAfter, LabelModelRunID: mv.RunID,
		LabelModelURI: "models:/" + name + "@champion", LabelMetricPrefix + "test_accuracy": fmt.Sprintf("%.6g", testAcc),
	}
	for k, v := range want {
		if got := cfg.Config.Labels[k]; got != v {
			t.Errorf("image label %s = %q, want %q", k, got, v)
		}
	}
	// ... and as the step outputs ci.yml hands to cd.yml's catdog deploy (printed outside Actions)
	for _, o := range []string{"model-name: " + name, "model-version: " + d.ChampionAfter, "run-id: " + mv.RunID} {
		if !strings.Contains(built, o+"\n") {
			t.Errorf("image build outputs lack %q:\n%s", o, built)
		}
	}
	step("image built and labelled")

	// make run's ship-and-check step (scripts/ship-and-check.sh) with this catdog: the first run
	// checks, a second with nothing changed reuses that check without restarting or evaluating
	// anything, and a stopped service or a moved champion is checked again.
	serveDir := filepath.Join(work, "serve")
	catdogBin := filepath.Join(work, "catdog")
	if err := os.WriteFile(catdogBin, []byte("#!/bin/sh\n"+envTestMain+"=1 exec "+self+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"CATDOG=" + catdogBin, "REGISTERED=" + name, "SERVE_DIR=" + serveDir, "CHAMPION_DIR=" + filepath.Join(serveDir, "champion"),
		"IMAGE_LAYOUT=" + filepath.Join(work, "champion-image"), "PREPARED=" + prepB, "SERVE_PORT=" + fmt.Sprint(testenv.FreePort(t)),
		"VENV=" + filepath.Dir(filepath.Dir(testenv.VenvBin(t, "dvc"))), "CATDOG_IMAGE_CACHE=" + filepath.Join(work, "layers"),
		// the image's tags and revision label come from git; work is no repository
		"GITHUB_REF=refs/heads/main", "GITHUB_SHA=d6cd1e2bd19e03a81132a23b2025920577f84e37"}
	script := filepath.Join(testenv.RepoRoot(t), "scripts", "ship-and-check.sh")
	servePID := func() int {
		b, _ := os.ReadFile(filepath.Join(serveDir, "serve.pid"))
		var pid int
		fmt.Sscan(string(b), &pid)
		return pid
	}
	stopService := func() {
		pid := servePID()
		if pid <= 0 || syscall.Kill(pid, 0) != nil {
			return
		}
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Cleanup(stopService)
	evaluatedAt := func() time.Time {
		fi, err := os.Stat(filepath.Join(serveDir, "evaluated.json"))
		if err != nil {
			return time.Time{}
		}
		return fi.ModTime()
	}
	for _, tc := range []struct {
		name   string
		before func()
		check  string
		reused bool
	}{
		{"first run", func() {}, "check:             re-checked now (changed: (no earlier check))", false},
		{"nothing changed", func() {}, "check:             reused: champion, model files, image and test split unchanged", true},
		{"service stopped", stopService, "check:             re-checked now (changed: service)", false},
		{"champion moved", func() {
			if err := cl.SetAlias(ctx, name, "champion", map[string]string{"1": "2", "2": "1"}[d.ChampionAfter]); err != nil {
				t.Fatal(err)
			}
		}, "check:             re-checked now (changed: champion model_sha256sums image service)", false},
	} {
		tc.before()
		pid, evaluated, t0 := servePID(), evaluatedAt(), time.Now()
		out, err := testenv.RunErr(work, env, script)
		step(fmt.Sprintf("ship-and-check, %s: %.1f s", tc.name, time.Since(t0).Seconds()))
		if err != nil || !strings.Contains(out, tc.check) || !regexp.MustCompile(`accuracy: +(\S+) served over HTTP = (\S+) evaluated \(16 test photos\)`).MatchString(out) {
			t.Fatalf("%s: %v\n%s\nwant %q", tc.name, err, out, tc.check)
		}
		if m := regexp.MustCompile(`accuracy: +(\S+) served over HTTP = (\S+) evaluated`).FindStringSubmatch(out); m[1] != m[2] {
			t.Errorf("%s: served %s != evaluated %s", tc.name, m[1], m[2])
		}
		if same := servePID() == pid && evaluatedAt().Equal(evaluated); same != tc.reused {
			t.Errorf("%s: service pid %d -> %d, evaluation rewritten %t; want reused %t", tc.name, pid, servePID(), !evaluatedAt().Equal(evaluated), tc.reused)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
