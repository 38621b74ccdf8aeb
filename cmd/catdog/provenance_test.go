package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/catdog-mlops/catdog/mlflowclient"
)

func TestVerifyDigests(t *testing.T) {
	files := map[string]string{"best_model.ot": "weights", "model.json": "{}", "sub/x.csv": "a,b\n"}
	tests := []struct {
		name  string
		after func(t *testing.T, dir string)
		want  *DigestError
	}{
		{"intact", func(t *testing.T, dir string) { write(t, dir, "MLmodel", "flavors: {}\n") }, nil},
		{"changed", func(t *testing.T, dir string) { write(t, dir, "best_model.ot", "weightz") }, &DigestError{Mismatch: []string{"best_model.ot"}}},
		{"missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "sub/x.csv")) }, &DigestError{Missing: []string{"sub/x.csv"}}},
		{"extra", func(t *testing.T, dir string) { write(t, dir, "evil.so", "x") }, &DigestError{Unexpected: []string{"evil.so"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, c := range files {
				write(t, dir, n, c)
			}
			if err := writeDigests(dir); err != nil {
				t.Fatal(err)
			}
			tc.after(t, dir)
			n, err := verifyDigests(dir)
			if tc.want == nil {
				if err != nil || n != 3 {
					t.Fatalf("verifyDigests = %d, %v", n, err)
				}
				return
			}
			var de *DigestError
			if !errors.As(err, &de) || !reflect.DeepEqual(de, tc.want) {
				t.Fatalf("verifyDigests err = %v, want %+v", err, tc.want)
			}
		})
	}
	if _, err := verifyDigests(t.TempDir()); !errors.Is(err, ErrNoDigests) {
		t.Errorf("no SHA256SUMS: %v", err)
	}
}

func TestProvenanceLabels(t *testing.T) {
	dir := t.TempDir()
	if l, err := provenanceLabels(dir); err != nil || l != nil {
		t.Fatalf("a local model dir gets labels %v, %v", l, err)
	}
	mv := &mlflowclient.ModelVersion{Name: "catdog", Version: "7", RunID: "r1", Source: "models:/m-1"}
	run := &mlflowclient.Run{Data: mlflowclient.RunData{Metrics: []mlflowclient.Metric{{Key: "test_accuracy", Value: 0.82}, {Key: "train_loss", Value: 0.3}}}}
	if err := writeProvenance(dir, "models:/catdog@champion", mv, run); err != nil {
		t.Fatal(err)
	}
	l, err := provenanceLabels(dir)
	want := map[string]string{LabelModelName: "catdog", LabelModelVersion: "7", LabelModelRunID: "r1", LabelModelURI: "models:/catdog@champion",
		LabelMetricPrefix + "test_accuracy": "0.82"}
	if err != nil || !reflect.DeepEqual(l, want) {
		t.Errorf("labels = %v, %v; want %v", l, err, want)
	}
}

// TestModelOutputs: the image build's model outputs (handed by ci.yml to cd.yml's catdog
// deploy) come from the provenance labels, named like deploy's flags; a local model has none.
func TestModelOutputs(t *testing.T) {
	dir := t.TempDir()
	mv := &mlflowclient.ModelVersion{Name: "catdog", Version: "7", RunID: "0f3c9a", Source: "models:/m-1"}
	if err := writeProvenance(dir, "models:/catdog@champion", mv, &mlflowclient.Run{}); err != nil {
		t.Fatal(err)
	}
	registered, err := provenanceLabels(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   map[string]string
	}{
		{"registered version", registered, map[string]string{"model-name": "catdog", "model-version": "7", "run-id": "0f3c9a"}},
		{"local model: no labels", map[string]string{"org.opencontainers.image.version": "1.4.0"}, map[string]string{}},
		{"no run id", map[string]string{LabelModelName: "catdog", LabelModelVersion: "3", LabelModelRunID: ""}, map[string]string{"model-name": "catdog", "model-version": "3"}},
	} {
		if got := modelOutputs(c.labels); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: modelOutputs = %v, want %v", c.name, got, c.want)
		}
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
