package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/inference"
	"github.com/catdog-mlops/catdog/internal/testenv"
	"github.com/catdog-mlops/catdog/model"
	"github.com/catdog-mlops/catdog/train"
)

// TestServeMatchesEvaluate proves that the service and `catdog evaluate` share one
// preprocessing path: for the same files the service's probabilities are bit-identical to
// model.Predict(spec.Preprocess(file)), to train.EvaluateModel (the code behind catdog
// evaluate), and the real `catdog evaluate` CLI reports the accuracy and loss those
// probabilities give.
func TestServeMatchesEvaluate(t *testing.T) {
	m, err := model.Load(fixture.modelDir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	svc, err := inference.New(m, inference.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	srv := httptest.NewServer(svc)
	defer srv.Close()
	if err := svc.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}

	// A labelled folder (Cat/, Dog/) of photos the model did not train on plus the unusual
	// but valid inputs (grayscale, CMYK, alpha).
	dir := t.TempDir()
	files := map[string]string{}
	for _, n := range []string{"cat.600.jpg", "cat.601.jpg", "cat.835.jpg", "cat.603.jpg", "dog.600.jpg", "dog.601.jpg", "dog.630.jpg", "dog.603.jpg"} {
		cls := "Cat"
		if strings.HasPrefix(n, "dog") {
			cls = "Dog"
		}
		files[filepath.Join(dir, cls, n)] = devPhoto(t, n)
	}
	files[filepath.Join(dir, "Cat", "grayscale.jpg")] = badInput("grayscale.jpg")
	files[filepath.Join(dir, "Dog", "cmyk.jpg")] = badInput("cmyk.jpg")
	files[filepath.Join(dir, "Cat", "alpha.png")] = badInput("alpha.png")
	for dst, src := range files {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, readFile(t, src), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	served := map[string][]float32{}
	spec := m.Spec()
	for path := range files {
		data := readFile(t, path)
		resp := post(t, srv.URL+"/predict", "application/octet-stream", data)
		var p inference.PredictResponse
		if err := json.Unmarshal(resp.body, &p); err != nil || resp.status != 200 {
			t.Fatalf("%s: %d %s", path, resp.status, resp.body)
		}
		got := []float32{float32(p.Probabilities["cat"]), float32(p.Probabilities["dog"])}
		served[path] = got

		x, err := spec.Preprocess(bytes.NewReader(data), imageprep.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		want, err := m.Predict(x, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != want[0][0] || got[1] != want[0][1] {
			t.Errorf("%s: served %v, model.Predict(Preprocess) %v", filepath.Base(path), got, want[0])
		}
	}

	res, err := train.EvaluateModel(context.Background(), m, train.EvalOptions{Data: dir, BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Paths) != len(files) || len(res.Skipped) != 0 {
		t.Fatalf("evaluate scored %d files, skipped %v", len(res.Paths), res.Skipped)
	}
	var labels []int
	var probs [][]float32
	for i, path := range res.Paths {
		got := served[path]
		if got == nil || got[0] != res.Probs[i][0] || got[1] != res.Probs[i][1] {
			t.Errorf("%s: served %v, evaluate %v", filepath.Base(path), got, res.Probs[i])
		}
		l := 0
		if strings.Contains(path, "/Dog/") {
			l = 1
		}
		labels, probs = append(labels, l), append(probs, got)
	}

	// The CLI, in its own process, reports the accuracy and loss of the served probabilities.
	want, err := train.Evaluate(m.Info().Classes, labels, probs)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "eval.json")
	testenv.Run(t, dir, nil, fixture.bin, "evaluate", "--model", fixture.modelDir, "--data", dir, "--batch-size", "1", "--json", out)
	var cli train.Evaluation
	if err := json.Unmarshal(readFile(t, out), &cli); err != nil {
		t.Fatal(err)
	}
	if cli.N != want.N || cli.Accuracy != want.Accuracy || math.Abs(cli.Loss-want.Loss) > 1e-9 {
		t.Errorf("catdog evaluate: n %d accuracy %v loss %v; from served probabilities: n %d accuracy %v loss %v",
			cli.N, cli.Accuracy, cli.Loss, want.N, want.Accuracy, want.Loss)
	}
}
