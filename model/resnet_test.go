package model

import (
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/sugarme/gotch/ts"
)

func resInfo(widths []int64, blocks []int) Info {
	info := tinyInfo(widths)
	info.Arch.Name = ArchResNet
	info.Arch.Blocks = blocks
	return info
}

// TestArchitecturesRoundTrip builds every architecture, checks the output and embedding shapes,
// and that a saved model predicts exactly what the network did (catdognet-v1 stays loadable
// next to catdognet-res1).
func TestArchitecturesRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		info Info
		// vars is the number of tensors in the VarStore.
		vars int
	}{
		// 3 conv-BN blocks (4 tensors per BN + 1 conv weight each) + head (2).
		{"catdognet-v1", tinyInfo([]int64{4, 8}), 3*5 + 2},
		// stem (5) + stage0 identity block (2 convs + 2 BNs = 10) + stage1 projection block
		// (10 + conv 1 + BN 4) + head (2).
		{"catdognet-res1 one block per stage", resInfo([]int64{4, 8}, nil), 5 + 10 + 15 + 2},
		{"catdognet-res1 [2 1]", resInfo([]int64{4, 8}, []int{2, 1}), 5 + 20 + 15 + 2},
		{"catdognet-res1 three stages", resInfo([]int64{4, 8, 8}, []int{1, 1, 2}), 5 + 10 + 15 + 15 + 10 + 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := NewNetwork(tc.info.Arch)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if got := len(n.VarStore().Variables()); got != tc.vars {
				t.Errorf("%d variables, want %d", got, tc.vars)
			}
			x := make([]float32, 3*3*32*32)
			for i := range x {
				x[i] = float32(i%19)/19 - 0.5
			}
			probs, err := n.Probabilities(x, 3, 32, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(probs) != 3*2 {
				t.Fatalf("%d probabilities for 3 images x 2 classes", len(probs))
			}
			emb, err := n.Embeddings(x, 3, 32)
			if err != nil {
				t.Fatal(err)
			}
			if want := int(tc.info.Arch.Widths[len(tc.info.Arch.Widths)-1]); n.EmbeddingDim() != want || len(emb) != 3*want {
				t.Errorf("embedding dim %d (%d values), want %d", n.EmbeddingDim(), len(emb), want)
			}
			// A training-mode forward pass gives N x classes logits and a gradient reaches
			// every parameter. Grad mode is per OS thread in libtorch: lock, as train.Run does.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ts.MustGradSetEnabled(true)
			in, err := Float32Tensor(x, []int64{3, 3, 32, 32})
			if err != nil {
				t.Fatal(err)
			}
			defer in.MustDrop()
			logits := n.Forward(in, true)
			if got := logits.MustSize(); len(got) != 2 || got[0] != 3 || got[1] != 2 {
				t.Fatalf("logits shape %v", got)
			}
			loss := logits.MustSum(logits.DType(), true)
			loss.MustBackward()
			loss.MustDrop()
			for i, v := range n.VarStore().TrainableVariables() {
				g := v.MustGrad(false)
				if !g.MustDefined() {
					t.Errorf("parameter %d got no gradient", i)
				}
				g.MustDrop()
			}

			// The training pass moved the batch-norm statistics: predict again before saving.
			if probs, err = n.Probabilities(x, 3, 32, true); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := n.Save(dir, tc.info); err != nil {
				t.Fatal(err)
			}
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Info().Arch.Name != tc.info.Arch.Name {
				t.Errorf("loaded arch %q", m.Info().Arch.Name)
			}
			got, err := m.Predict(x, 3)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				for c := range got[i] {
					if got[i][c] != probs[i*2+c] {
						t.Fatalf("loaded model predicts %v, saved network %v", got, probs)
					}
				}
			}
		})
	}
}

// TestResNetBlocksStartAsIdentity: the last BN of every residual branch starts at gamma 0, so a
// freshly built stage of two identity blocks computes what one block does.
func TestResNetBlocksStartAsIdentity(t *testing.T) {
	n, err := NewNetwork(resInfo([]int64{4, 8}, []int{3, 1}).Arch)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	rn := n.net.(*resNet)
	x := make([]float32, 2*4*8*8)
	for i := range x {
		x[i] = float32(i%7) / 7 // non-negative, like a ReLU output
	}
	NoGrad(func() {
		in, err := Float32Tensor(x, []int64{2, 4, 8, 8})
		if err != nil {
			t.Fatal(err)
		}
		defer in.MustDrop()
		for b := 0; b < 3; b++ {
			out := rn.blocks[b].forward(in, false)
			diff := out.MustSub(in, false)
			mx := diff.MustAbs(true).MustMax(true).Float64Values()[0]
			out.MustDrop()
			if mx != 0 {
				t.Errorf("block %d at initialisation differs from the identity by %v", b, mx)
			}
		}
	})
}

func TestArchValidateBlocks(t *testing.T) {
	tests := []struct {
		name string
		arch Arch
		want string // "" = valid
	}{
		{"v1", DefaultArch(), ""},
		{"v1 with blocks", Arch{Name: ArchName, Widths: []int64{4, 8}, Classes: 2, Blocks: []int{1, 1}}, "takes no blocks"},
		{"res1 default blocks", Arch{Name: ArchResNet, Widths: []int64{4, 8}, Classes: 2}, ""},
		{"res1 blocks per width", Arch{Name: ArchResNet, Widths: []int64{4, 8}, Classes: 2, Blocks: []int{1, 2}}, ""},
		{"res1 wrong count", Arch{Name: ArchResNet, Widths: []int64{4, 8}, Classes: 2, Blocks: []int{1}}, "one blocks entry per width"},
		{"res1 zero blocks", Arch{Name: ArchResNet, Widths: []int64{4, 8}, Classes: 2, Blocks: []int{1, 0}}, "out of [1,16]"},
		{"unknown", Arch{Name: "resnet50", Widths: []int64{4, 8}, Classes: 2}, "unknown architecture"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.arch.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestProbabilitiesViews: the views average is the mean of the single-view probabilities of
// the image, its mirror, its centre crop and the crop's mirror (each computed on its own), a crop
// of 1/2 of a 2x2-block-constant image is the centre upsampled, and bad crops are refused.
func TestProbabilitiesViews(t *testing.T) {
	const s = 16
	n, err := NewNetwork(resInfo([]int64{4, 8}, nil).Arch)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	x := make([]float32, 2*3*s*s)
	for i := range x {
		x[i] = float32((i*7)%29)/29 - 0.5
	}
	mirror := func(img []float32) []float32 {
		out := make([]float32, len(img))
		for p := 0; p < len(img)/s; p++ {
			for c := 0; c < s; c++ {
				out[p*s+c] = img[p*s+s-1-c]
			}
		}
		return out
	}
	single := func(img []float32) []float32 {
		p, err := n.Probabilities(img, 2, s, false)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	whole, flipped := single(x), single(mirror(x))
	two, err := n.ProbabilitiesViews(x, 2, s, Views{Flip: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range two {
		if want := (whole[i] + flipped[i]) / 2; math.Abs(float64(two[i]-want)) > 1e-6 {
			t.Fatalf("flip views: %v, want the mean %v", two, want)
		}
	}
	crop, err := n.ProbabilitiesViews(x, 2, s, Views{Crops: []float64{0.5}})
	if err != nil {
		t.Fatal(err)
	}
	four, err := n.ProbabilitiesViews(x, 2, s, Views{Flip: true, Crops: []float64{0.5}})
	if err != nil {
		t.Fatal(err)
	}
	cropFlip, err := n.ProbabilitiesViews(mirror(x), 2, s, Views{Crops: []float64{0.5}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range four {
		// crop (mean of whole and crop) and cropFlip (mean of mirror and mirrored crop): the
		// centre crop of a mirror is the mirror of the centre crop.
		if want := (crop[i] + cropFlip[i]) / 2; math.Abs(float64(four[i]-want)) > 1e-5 {
			t.Fatalf("four views: %v, want %v", four[i], want)
		}
		if math.Abs(float64(crop[i]-whole[i])) < 1e-9 {
			t.Errorf("the crop view changed nothing")
		}
	}
	if got := (Views{Flip: true, Crops: []float64{0.8, 0.6}}).Count(); got != 6 {
		t.Errorf("Count %d, want 6", got)
	}
	for _, bad := range [][]float64{{0}, {1}, {1.2}, {-0.5}} {
		if _, err := n.ProbabilitiesViews(x, 2, s, Views{Crops: bad}); err == nil {
			t.Errorf("crops %v accepted", bad)
		}
		info := resInfo([]int64{4, 8}, nil)
		info.TTACrops = bad
		if err := info.Validate(); err == nil {
			t.Errorf("Info with tta_crops %v validated", bad)
		}
	}
}

// TestTrainingStepsDoNotLeak: training forward and backward passes free their activations —
// resident memory after 60 steps is what it was after 10 (a leaked graph keeps ~3 MB of
// activations per step here: +150 MB).
func TestTrainingStepsDoNotLeak(t *testing.T) {
	tests := []struct {
		name string
		info Info
	}{
		{"catdognet-v1", tinyInfo([]int64{16, 32})},
		{"catdognet-res1", resInfo([]int64{16, 32}, []int{2, 1})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Grad mode is per OS thread in libtorch, and every subtest is a new goroutine.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ts.MustGradSetEnabled(true)
			n, err := NewNetwork(tc.info.Arch)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			x := make([]float32, 16*3*64*64)
			for i := range x {
				x[i] = float32(i%31)/31 - 0.5
			}
			step := func() {
				in, err := Float32Tensor(x, []int64{16, 3, 64, 64})
				if err != nil {
					t.Fatal(err)
				}
				logits := n.Forward(in, true)
				loss := logits.MustSum(logits.DType(), true)
				loss.MustBackward()
				loss.MustDrop()
				in.MustDrop()
				for _, v := range n.VarStore().TrainableVariables() {
					g := v.MustGrad(false)
					g.MustZero_()
					g.MustDrop()
				}
			}
			for range 10 {
				step()
			}
			before := residentBytes(t)
			for range 50 {
				step()
			}
			grown := residentBytes(t) - before
			t.Logf("resident memory grew by %d MB over 50 training steps", grown>>20)
			if grown > 48<<20 {
				t.Errorf("resident memory grew by %d MB over 50 training steps", grown>>20)
			}
		})
	}
}

func residentBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}
