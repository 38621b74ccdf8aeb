package train

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/internal/testenv"
	"github.com/catdog-mlops/catdog/model"

	"github.com/catdog-mlops/catdog/internal/progress"
	"github.com/catdog-mlops/catdog/model/modeldir"
)

var fixture struct {
	once sync.Once
	dir  string
	err  error
}

// smallData prepares 40 real cats and 40 real dogs at 64x64 once per test binary.
func smallData(t *testing.T) string {
	t.Helper()
	fixture.once.Do(func() {
		src := filepath.Join(testenv.SharedData(t), "petimages-dev")
		root, err := os.MkdirTemp("", "catdog-train-")
		if err != nil {
			fixture.err = err
			return
		}
		raw := filepath.Join(root, "raw")
		for _, class := range []string{"Cat", "Dog"} {
			if err := os.MkdirAll(filepath.Join(raw, class), 0o755); err != nil {
				fixture.err = err
				return
			}
			for i := 0; i < 40; i++ {
				name := fmt.Sprintf("%s.%d.jpg", map[string]string{"Cat": "cat", "Dog": "dog"}[class], i)
				b, err := os.ReadFile(filepath.Join(src, class, name))
				if err != nil {
					fixture.err = err
					return
				}
				if err := os.WriteFile(filepath.Join(raw, class, name), b, 0o644); err != nil {
					fixture.err = err
					return
				}
			}
		}
		fixture.dir = filepath.Join(root, "prepared")
		_, fixture.err = imageprep.Prepare(context.Background(), imageprep.PrepareOptions{
			Source: raw, Out: fixture.dir, Size: 64, Seed: 7, Fractions: [3]float64{0.6, 0.2, 0.2},
		})
	})
	if fixture.err != nil {
		t.Fatalf("preparing the small data set: %v", fixture.err)
	}
	return fixture.dir
}

func tinyParams() Params {
	p := DefaultParams()
	p.InputSize = 64
	p.Epochs = 6
	p.BatchSize = 16
	p.LR = 3e-3
	p.Threads = 2
	p.Arch.Widths = []int64{8, 16, 32}
	p.Arch.Dropout = 0
	p.LabelSmoothing = 0
	p.TTA = false
	return p
}

type recordingTracker struct {
	mu      sync.Mutex
	params  map[string]string
	metrics map[int64]map[string]float64
}

func (r *recordingTracker) LogParams(_ context.Context, p map[string]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.params = p
	return nil
}

func (r *recordingTracker) LogMetrics(_ context.Context, step int64, m map[string]float64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.metrics == nil {
		r.metrics = map[int64]map[string]float64{}
	}
	if r.metrics[step] == nil {
		r.metrics[step] = map[string]float64{}
	}
	for k, v := range m {
		r.metrics[step][k] = v
	}
	return nil
}

func (r *recordingTracker) SetTags(context.Context, map[string]string) error { return nil }

func (r *recordingTracker) LogArtifacts(context.Context, string, string) error { return nil }

// TestRunLearnsAndSaves trains for real on 48 photos and checks that the loss goes down, that
// the outputs are written, that a saved model predicts exactly what the trained one did, and
// that memory stays flat across epochs.
func TestRunLearnsAndSaves(t *testing.T) {
	data := smallData(t)
	out := t.TempDir()
	rec := &recordingTracker{}
	p := tinyParams()
	var finals []progress.Update
	report := func(u progress.Update) {
		if u.Final {
			finals = append(finals, u)
		}
	}
	res, err := Run(context.Background(), Options{Params: p, DataDir: data, OutDir: out, Tracker: rec, Progress: report})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(finals) != p.Epochs || finals[0].Op != fmt.Sprintf("epoch 1/%d", p.Epochs) || finals[0].Done != finals[0].Total || finals[0].Total == 0 {
		t.Errorf("progress: final updates %+v, want one complete one per epoch", finals)
	}
	if len(res.Epochs) != p.Epochs {
		t.Fatalf("got %d epochs, want %d", len(res.Epochs), p.Epochs)
	}
	first, last := res.Epochs[0].TrainLoss, res.Epochs[len(res.Epochs)-1].TrainLoss
	if !(last < first) {
		t.Errorf("training loss did not go down: epoch 1 %.4f, epoch %d %.4f", first, p.Epochs, last)
	}
	for _, f := range []string{model.WeightsFile, model.InfoFile, "metrics.json", "confusion_matrix.png", "learning_curves.png", "manifest.csv"} {
		st, err := os.Stat(filepath.Join(out, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("output %s missing or empty: %v", f, err)
		}
	}
	checkProfile(t, out, data)
	if rec.params["input_size"] != "64" || rec.params["dataset_manifest_md5"] == "" {
		t.Errorf("tracked params incomplete: %v", rec.params)
	}
	for e := int64(1); e <= int64(p.Epochs); e++ {
		if _, ok := rec.metrics[e]["val_accuracy"]; !ok {
			t.Errorf("no val_accuracy tracked for epoch %d", e)
		}
	}
	if _, ok := rec.metrics[int64(p.Epochs)]["test_accuracy"]; !ok {
		t.Errorf("no test_accuracy tracked")
	}

	// Memory: after the first two epochs (allocator warm-up), RSS must not keep growing.
	warm, end := res.Epochs[1].RSSBytes, res.Epochs[len(res.Epochs)-1].RSSBytes
	if warm == 0 || end-warm > 64<<20 {
		t.Errorf("RSS grew from %d MiB after epoch 2 to %d MiB after epoch %d", warm>>20, end>>20, p.Epochs)
	}

	// Save -> load gives the same predictions as the evaluation recorded during training.
	m, err := model.Load(out)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	defer m.Close()
	ev, err := EvaluateModel(context.Background(), m, EvalOptions{Data: data, Split: "test"})
	if err != nil {
		t.Fatalf("EvaluateModel: %v", err)
	}
	if ev.Evaluation.Accuracy != res.Test.Accuracy || math.Abs(ev.Evaluation.Loss-res.Test.Loss) > 1e-6 {
		t.Errorf("loaded model: accuracy %.4f loss %.6f; trained model: accuracy %.4f loss %.6f",
			ev.Evaluation.Accuracy, ev.Evaluation.Loss, res.Test.Accuracy, res.Test.Loss)
	}
	// A single image predicts what it did inside the evaluation batch (up to float rounding of
	// batched kernels), and twice the same input gives bit-identical outputs.
	x := make([]float32, 3*64*64)
	ds, err := imageprep.LoadSplit(data, "test")
	if err != nil {
		t.Fatal(err)
	}
	m.Spec().Normalize(ds.Image(0), x)
	a, err := m.Predict(x, 1)
	if err != nil {
		t.Fatal(err)
	}
	for c := range a[0] {
		if math.Abs(float64(a[0][c]-ev.Probs[0][c])) > 1e-5 {
			t.Errorf("Predict %v differs from the evaluation's %v for the same image", a[0], ev.Probs[0])
		}
	}
	b, err := m.Predict(x, 1)
	if err != nil {
		t.Fatal(err)
	}
	if a[0][0] != b[0][0] || a[0][1] != b[0][1] {
		t.Errorf("two predictions of the same image differ: %v, %v", a[0], b[0])
	}
}

func TestRunRejectsMismatchedInputSize(t *testing.T) {
	data := smallData(t)
	p := tinyParams()
	p.InputSize = 96
	_, err := Run(context.Background(), Options{Params: p, DataDir: data, OutDir: t.TempDir()})
	if err == nil {
		t.Fatal("Run accepted data prepared at 64 for input_size 96")
	}
}

func TestRunCancelled(t *testing.T) {
	data := smallData(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Options{Params: tinyParams(), DataDir: data, OutDir: t.TempDir()})
	if err == nil || ctx.Err() == nil {
		t.Fatalf("Run on a cancelled context returned %v", err)
	}
}

// checkProfile reads the drift profile of a model directory: one row per training image, the
// features serving computes from the original photo, and the validation predictions.
func checkProfile(t *testing.T, modelDir, data string) {
	t.Helper()
	f, err := os.Open(filepath.Join(modelDir, modeldir.DriftProfile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prof, err := drift.DecodeProfile(f)
	if err != nil {
		t.Fatal(err)
	}
	train, err := imageprep.LoadSplit(data, "train")
	if err != nil {
		t.Fatal(err)
	}
	val, _ := imageprep.LoadSplit(data, "val")
	prep, _ := imageprep.ReadPrepared(data)
	tab := prof.Table()
	if prof.Rows != train.N || prof.InputSize != 64 || strings.Join(tab.Names, ",") != strings.Join(imageprep.FeatureNames(), ",") {
		t.Fatalf("profile: %d rows (train %d), input %d, features %v", prof.Rows, train.N, prof.InputSize, tab.Names)
	}
	for _, i := range []int{0, train.N - 1} {
		b, err := os.ReadFile(filepath.Join(prep.Source, train.Paths[i]))
		if err != nil {
			t.Fatal(err)
		}
		want, err := imageprep.FileFeatures(b, 64, imageprep.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for c, name := range tab.Names {
			if tab.Columns[c][i] != want[c] {
				t.Errorf("profile row %d (%s) %s = %v, serving path computes %v", i, train.Paths[i], name, tab.Columns[c][i], want[c])
			}
		}
	}
	pp := prof.Predictions
	if pp == nil || pp.Rows != val.N || len(pp.Confidence) != val.N || math.Abs(pp.ClassShare["cat"]+pp.ClassShare["dog"]-1) > 1e-9 {
		t.Fatalf("prediction profile %+v (val %d images)", pp, val.N)
	}
	for _, c := range pp.Confidence {
		if c < 0.5 || c > 1 {
			t.Errorf("confidence %v outside [0.5, 1]", c)
		}
	}
	e := prof.Embedding
	widths := tinyParams().Arch.Widths
	if e == nil || e.Dim != int(widths[len(widths)-1]) || e.Rows != val.N || len(e.Mean) != e.Dim || len(e.Std) != e.Dim || len(e.Norms) != val.N {
		t.Fatalf("embedding profile %+v (val %d images, last width %d)", e, val.N, widths[len(widths)-1])
	}
	spread := 0.0
	for d := range e.Std {
		spread += e.Std[d]
	}
	if spread == 0 || e.Norms[0] <= 0 {
		t.Errorf("embeddings do not vary: std sum %v, first norm %v", spread, e.Norms[0])
	}
}
