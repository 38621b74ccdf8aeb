package model

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func tinyInfo(widths []int64) Info {
	a := DefaultArch()
	a.Widths = widths
	return Info{Name: "t", Arch: a, InputSize: 32, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.25, 0.25}, Classes: []string{"cat", "dog"}, TTA: true}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	info := tinyInfo([]int64{4, 8})
	n, err := NewNetwork(info.Arch)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Save(dir, info); err != nil {
		t.Fatal(err)
	}
	// Saving again replaces both files and leaves no temp file behind.
	if err := n.Save(dir, info); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{WeightsFile, InfoFile}; !slices.Equal(names, want) {
		t.Errorf("model directory holds %v, want %v", names, want)
	}
	x := make([]float32, 2*3*32*32)
	for i := range x {
		x[i] = float32(i%17) / 17
	}
	want, err := n.Probabilities(x, 2, 32, true)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Predict(x, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		for c := range got[i] {
			if got[i][c] != want[i*2+c] {
				t.Fatalf("loaded model predicts %v, saved network %v", got, want)
			}
		}
		if s := got[i][0] + got[i][1]; s < 0.999 || s > 1.001 {
			t.Errorf("probabilities sum to %v", s)
		}
	}
	if _, err := m.Predict(x[:10], 2); err == nil {
		t.Error("Predict accepted a short input")
	}
	m.Close()
	if _, err := m.Predict(x, 2); err != ErrClosed {
		t.Errorf("Predict after Close: %v, want ErrClosed", err)
	}
}

func TestLoadErrors(t *testing.T) {
	good := t.TempDir()
	info := tinyInfo([]int64{4, 8})
	n, err := NewNetwork(info.Arch)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Save(good, info); err != nil {
		t.Fatal(err)
	}
	other, err := NewNetwork(tinyInfo([]int64{4, 16}).Arch)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Load(filepath.Join(good, WeightsFile)); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("loading weights of another width: %v", err)
	}
	tests := []struct {
		name  string
		setup func(dir string)
	}{
		{"no model.json", func(dir string) { os.Remove(filepath.Join(dir, InfoFile)) }},
		{"bad json", func(dir string) { os.WriteFile(filepath.Join(dir, InfoFile), []byte("{"), 0o644) }},
		{"unknown arch", func(dir string) {
			os.WriteFile(filepath.Join(dir, InfoFile), []byte(`{"arch":{"name":"resnet","widths":[4,8],"classes":2},"input_size":32,"classes":["a","b"],"std":[1,1,1]}`), 0o644)
		}},
		{"class count", func(dir string) {
			os.WriteFile(filepath.Join(dir, InfoFile), []byte(`{"arch":{"name":"catdognet-v1","widths":[4,8],"classes":2},"input_size":32,"classes":["a"],"std":[1,1,1]}`), 0o644)
		}},
		{"no weights", func(dir string) { os.Remove(filepath.Join(dir, WeightsFile)) }},
		{"corrupt weights", func(dir string) { os.WriteFile(filepath.Join(dir, WeightsFile), []byte("garbage"), 0o644) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{InfoFile, WeightsFile} {
				b, _ := os.ReadFile(filepath.Join(good, f))
				os.WriteFile(filepath.Join(dir, f), b, 0o644)
			}
			tc.setup(dir)
			if m, err := Load(dir); err == nil {
				m.Close()
				t.Fatal("Load succeeded")
			}
		})
	}
}

// TestEmbeddingsFeedTheHead checks Embeddings is the penultimate layer: the linear head applied
// to it, then softmax, gives Probabilities.
func TestEmbeddingsFeedTheHead(t *testing.T) {
	info := tinyInfo([]int64{4, 8})
	n, err := NewNetwork(info.Arch)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	x := make([]float32, 2*3*32*32)
	for i := range x {
		x[i] = float32(i%23)/23 - 0.4
	}
	emb, err := n.Embeddings(x, 2, 32)
	if err != nil {
		t.Fatal(err)
	}
	dim := n.EmbeddingDim()
	if dim != 8 || len(emb) != 2*dim {
		t.Fatalf("embeddings: dim %d, %d values", dim, len(emb))
	}
	k := int(info.Arch.Classes)
	w := make([]float32, k*dim)
	b := make([]float32, k)
	if err := n.net.linear().Ws.CopyData(w, uint(len(w))); err != nil {
		t.Fatal(err)
	}
	if err := n.net.linear().Bs.CopyData(b, uint(len(b))); err != nil {
		t.Fatal(err)
	}
	probs, err := n.Probabilities(x, 2, 32, false)
	if err != nil {
		t.Fatal(err)
	}
	for r := 0; r < 2; r++ {
		logits := make([]float64, k)
		var sum float64
		for c := 0; c < k; c++ {
			logits[c] = float64(b[c])
			for d := 0; d < dim; d++ {
				logits[c] += float64(w[d*k+c]) * float64(emb[r*dim+d]) // Ws is the transposed weight, in x out
			}
		}
		mx := logits[0]
		for _, l := range logits {
			mx = max(mx, l)
		}
		for c := range logits {
			logits[c] = math.Exp(logits[c] - mx)
			sum += logits[c]
		}
		for c := 0; c < k; c++ {
			if got := logits[c] / sum; math.Abs(got-float64(probs[r*k+c])) > 1e-5 {
				t.Errorf("image %d class %d: head(embedding) %v, Probabilities %v", r, c, got, probs[r*k+c])
			}
		}
	}
}
