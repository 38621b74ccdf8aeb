package train

import (
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEvaluate(t *testing.T) {
	classes := []string{"cat", "dog"}
	tests := []struct {
		name      string
		labels    []int
		probs     [][]float32
		acc       float64
		confusion [][]int
		catP      float64
		catR      float64
	}{
		{"all right", []int{0, 1}, [][]float32{{0.9, 0.1}, {0.2, 0.8}}, 1, [][]int{{1, 0}, {0, 1}}, 1, 1},
		{"one wrong", []int{0, 0, 1, 1}, [][]float32{{0.9, 0.1}, {0.4, 0.6}, {0.3, 0.7}, {0.1, 0.9}}, 0.75, [][]int{{1, 1}, {0, 2}}, 1, 0.5},
		{"all cat", []int{0, 1}, [][]float32{{0.6, 0.4}, {0.7, 0.3}}, 0.5, [][]int{{1, 0}, {1, 0}}, 0.5, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Evaluate(classes, tc.labels, tc.probs)
			if err != nil {
				t.Fatal(err)
			}
			if e.Accuracy != tc.acc {
				t.Errorf("accuracy = %v, want %v", e.Accuracy, tc.acc)
			}
			for i := range tc.confusion {
				for j := range tc.confusion[i] {
					if e.Confusion[i][j] != tc.confusion[i][j] {
						t.Errorf("confusion = %v, want %v", e.Confusion, tc.confusion)
					}
				}
			}
			if math.Abs(e.PerClass[0].Precision-tc.catP) > 1e-9 || math.Abs(e.PerClass[0].Recall-tc.catR) > 1e-9 {
				t.Errorf("cat precision/recall = %v/%v, want %v/%v", e.PerClass[0].Precision, e.PerClass[0].Recall, tc.catP, tc.catR)
			}
			var b strings.Builder
			if err := e.WriteTable(&b); err != nil || !strings.Contains(b.String(), "confusion matrix") {
				t.Errorf("table: %v\n%s", err, b.String())
			}
		})
	}
	if _, err := Evaluate(classes, []int{0}, nil); err == nil {
		t.Error("Evaluate accepted mismatched lengths")
	}
	if _, err := Evaluate(classes, []int{2}, [][]float32{{0.5, 0.5}}); err == nil {
		t.Error("Evaluate accepted an out-of-range label")
	}
}

func TestSchedule(t *testing.T) {
	s := schedule{peak: 1, warmup: 10, total: 110}
	if got := s.at(0); math.Abs(got-0.1) > 1e-9 {
		t.Errorf("first warm-up step lr = %v, want 0.1", got)
	}
	if got := s.at(9); got != 1 {
		t.Errorf("end of warm-up lr = %v, want 1", got)
	}
	if got := s.at(110); math.Abs(got-0.01) > 1e-9 {
		t.Errorf("final lr = %v, want 0.01", got)
	}
	prev := s.at(10)
	for i := 11; i <= 110; i++ {
		if s.at(i) > prev {
			t.Fatalf("lr rose after warm-up at step %d", i)
		}
		prev = s.at(i)
	}
}

func TestReadParams(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := dir + "/" + name
		if err := writeFile(p, body); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, body string
		wantErr    bool
		check      func(Params) bool
	}{
		{"empty keeps defaults", "", false, func(p Params) bool { return p.Epochs == DefaultParams().Epochs }},
		{"override", "epochs: 3\nlr: 0.01\n", false, func(p Params) bool { return p.Epochs == 3 && p.LR == 0.01 }},
		{"unknown key", "epoch: 3\n", true, nil},
		{"invalid value", "batch_size: 0\n", true, nil},
		{"bad yaml", "epochs: [\n", true, nil},
		{"bad arch", "arch: {name: resnet}\n", true, nil},
		{"resnet arch", "arch: {name: catdognet-res1, widths: [8, 16], blocks: [1, 2], classes: 2}\n", false,
			func(p Params) bool {
				return p.Arch.Name == "catdognet-res1" && len(p.Arch.Blocks) == 2 && p.Arch.Blocks[1] == 2
			}},
		{"blocks on v1", "arch: {name: catdognet-v1, widths: [8, 16], blocks: [1, 2], classes: 2}\n", true, nil},
		{"random erasing", "augment: {eraseprob: 0.25, erasescale: [0.02, 0.2]}\n", false,
			func(p Params) bool {
				return p.Augment.EraseProb == 0.25 && p.Augment.EraseScale == [2]float64{0.02, 0.2}
			}},
		{"erase probability", "augment: {eraseprob: 1.5}\n", true, nil},
		{"erase scale", "augment: {eraseprob: 0.5, erasescale: [0.3, 0.1]}\n", true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ReadParams(write(tc.name+".yaml", tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.check != nil && !tc.check(p) {
				t.Errorf("params not as expected: %+v", p)
			}
		})
	}
	if _, err := ReadParams(dir + "/missing.yaml"); err == nil {
		t.Error("missing file accepted")
	}
}

func TestRepoParamsFile(t *testing.T) {
	p, err := ReadParams("../params.yaml")
	if err != nil {
		t.Fatalf("params.yaml: %v", err)
	}
	if p.Augment.FlipProb == 0 {
		t.Error("params.yaml: augmentation flip probability did not load")
	}
	if d := p.Drift; d.WindowSize != 500 || d.WindowMaxAge != time.Hour || d.Every != 30*time.Second || d.EveryRequests != 500 || d.MinRows != 30 || d.Options.DriftShare != 0.5 {
		t.Errorf("params.yaml: drift section %+v", d)
	}
	dir := t.TempDir()
	for _, bad := range []string{"drift: {window_size: -1}\n", "drift: {method: t-test}\n", "drift: {window: 5}\n", "drift: {every: soon}\n"} {
		if err := writeFile(dir+"/p.yaml", bad); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadParams(dir + "/p.yaml"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestLongProfile keeps params-long.yaml the main job's settings at 224 px and more epochs: any
// other difference would make its documented accuracy a comparison of more than resolution and
// time.
func TestLongProfile(t *testing.T) {
	base, err := ReadParams("../params.yaml")
	if err != nil {
		t.Fatal(err)
	}
	long, err := ReadParams("../params-long.yaml")
	if err != nil {
		t.Fatalf("params-long.yaml: %v", err)
	}
	if long.InputSize != 224 || long.Epochs <= base.Epochs {
		t.Errorf("params-long.yaml: input_size %d, epochs %d; want 224 and more than params.yaml's %d", long.InputSize, long.Epochs, base.Epochs)
	}
	long.InputSize, long.Epochs, long.Drift = base.InputSize, base.Epochs, base.Drift
	if !reflect.DeepEqual(long, base) {
		t.Errorf("params-long.yaml differs from params.yaml beyond input_size and epochs:\n%+v\n%+v", long, base)
	}
}

func writeFile(path, body string) error { return os.WriteFile(path, []byte(body), 0o644) }

func TestCurvesCSV(t *testing.T) {
	got := string(curvesCSV([]EpochStats{{Epoch: 1, TrainLoss: 0.69, ValLoss: 0.7, TrainAcc: 0.5, ValAcc: 0.55, LR: 0.002}, {Epoch: 2, TrainLoss: 0.6, ValLoss: 0.65, TrainAcc: 0.62, ValAcc: 0.6, LR: 0.001}}))
	want := "epoch,train_loss,val_loss,train_accuracy,val_accuracy,lr\n1,0.69,0.7,0.5,0.55,0.002\n2,0.6,0.65,0.62,0.6,0.001\n"
	if got != want {
		t.Errorf("curvesCSV = %q, want %q", got, want)
	}
}

func TestReadParamsSkipsPipelineSections(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/params.yaml"
	if err := os.WriteFile(p, []byte("epochs: 3\ndata:\n  photos: ../x\npromote:\n  metric: test_accuracy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadParams(p)
	if err != nil || got.Epochs != 3 {
		t.Fatalf("ReadParams = %+v, %v", got.Epochs, err)
	}
	if err := os.WriteFile(p, []byte("epochs: 3\nepoch: 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadParams(p); err == nil {
		t.Fatal("an unknown key was accepted")
	}
}
