package train

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"gopkg.in/yaml.v3"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/model"
)

// Params are the training hyper-parameters, read from params.yaml so that a run can be
// reproduced from a file that is versioned with the code.
type Params struct {
	// Epochs is the number of passes over the training split.
	Epochs int `yaml:"epochs"`
	// BatchSize is the number of images per optimisation step.
	BatchSize int `yaml:"batch_size"`
	// LR is the peak learning rate of the one-cycle schedule.
	LR float64 `yaml:"lr"`
	// WarmupEpochs is the length of the linear warm-up before cosine decay.
	WarmupEpochs float64 `yaml:"warmup_epochs"`
	// WeightDecay is AdamW's decoupled weight decay.
	WeightDecay float64 `yaml:"weight_decay"`
	// LabelSmoothing for the cross-entropy loss (0 disables it).
	LabelSmoothing float64 `yaml:"label_smoothing"`
	// Seed drives weight initialisation, augmentation and batch order.
	Seed int64 `yaml:"seed"`
	// Threads is libtorch's intra-op thread count (0 = one per core).
	Threads int `yaml:"threads"`
	// Workers is the number of goroutines preparing augmented batches (0 = one per core).
	Workers int `yaml:"workers"`
	// InputSize is the network's input (square, pixels). It must equal the prepared image size.
	InputSize int `yaml:"input_size"`
	// TTA averages the predictions of the image and its mirror at evaluation.
	TTA bool `yaml:"tta"`
	// TTACrops adds centre crops (fractions of the side, resized back) to the evaluation views;
	// recorded in model.json, so serving averages the same views.
	TTACrops []float64 `yaml:"tta_crops"`
	// EMADecay keeps an exponential moving average of the weights (0 disables it); the
	// average is what is evaluated and saved.
	EMADecay float64 `yaml:"ema_decay"`
	// Arch is the network architecture.
	Arch model.Arch `yaml:"arch"`
	// Augment configures train-time augmentation.
	Augment imageprep.Augment `yaml:"augment"`
	// Normalize holds the per-channel mean and std recorded with the model.
	Mean [3]float32 `yaml:"mean"`
	Std  [3]float32 `yaml:"std"`
	// Drift configures the live input-drift monitor of `catdog serve` (not used by training,
	// kept in the same versioned file).
	Drift drift.MonitorConfig `yaml:"drift"`
}

// DefaultParams are the defaults used when params.yaml leaves a field out.
func DefaultParams() Params {
	spec := imageprep.DefaultSpec()
	return Params{
		Epochs:         30,
		BatchSize:      32,
		LR:             2e-3,
		WarmupEpochs:   1,
		WeightDecay:    5e-4,
		LabelSmoothing: 0.1,
		Seed:           42,
		InputSize:      spec.Size,
		TTA:            true,
		EMADecay:       0.99,
		Arch:           model.DefaultArch(),
		Augment:        imageprep.DefaultAugment(),
		Mean:           spec.Mean,
		Std:            spec.Std,
	}
}

// ReadParams reads a params.yaml file over the defaults. Unknown keys are an error, so that a
// typo never silently trains with a default.
func ReadParams(path string) (Params, error) {
	p := DefaultParams()
	b, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("train: params: %w", err)
	}
	b, err = withoutSections(b, "data", "promote")
	if err != nil {
		return p, fmt.Errorf("train: params %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return p, fmt.Errorf("train: params %s: %w", path, err)
	}
	return p, p.Validate()
}

// withoutSections returns the YAML document b without the given top-level keys. ReadParams
// drops the sections of params.yaml that belong to other stages of the pipeline (data: the
// photos' location, promote: the champion gate) and rejects any other unknown key.
func withoutSections(b []byte, keys ...string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return b, nil
	}
	m := doc.Content[0]
	var kept []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		skip := false
		for _, k := range keys {
			skip = skip || m.Content[i].Value == k
		}
		if !skip {
			kept = append(kept, m.Content[i], m.Content[i+1])
		}
	}
	m.Content = kept
	return yaml.Marshal(&doc)
}

// Validate reports the first invalid parameter.
func (p Params) Validate() error {
	switch {
	case p.Epochs < 1 || p.Epochs > 10000:
		return fmt.Errorf("train: epochs %d out of [1,10000]", p.Epochs)
	case p.BatchSize < 1 || p.BatchSize > 4096:
		return fmt.Errorf("train: batch_size %d out of [1,4096]", p.BatchSize)
	case !(p.LR > 0 && p.LR < 10):
		return fmt.Errorf("train: lr %v out of (0,10)", p.LR)
	case p.WarmupEpochs < 0:
		return fmt.Errorf("train: warmup_epochs %v is negative", p.WarmupEpochs)
	case p.WeightDecay < 0:
		return fmt.Errorf("train: weight_decay %v is negative", p.WeightDecay)
	case p.LabelSmoothing < 0 || p.LabelSmoothing >= 1:
		return fmt.Errorf("train: label_smoothing %v out of [0,1)", p.LabelSmoothing)
	case p.Threads < 0 || p.Workers < 0:
		return fmt.Errorf("train: threads and workers must not be negative")
	case p.EMADecay < 0 || p.EMADecay >= 1:
		return fmt.Errorf("train: ema_decay %v out of [0,1)", p.EMADecay)
	case p.InputSize < 16 || p.InputSize > 1024:
		return fmt.Errorf("train: input_size %d out of [16,1024]", p.InputSize)
	case p.Augment.EraseProb < 0 || p.Augment.EraseProb > 1:
		return fmt.Errorf("train: augment.eraseprob %v out of [0,1]", p.Augment.EraseProb)
	case p.Augment.EraseScale != [2]float64{} && !(p.Augment.EraseScale[0] > 0 && p.Augment.EraseScale[0] <= p.Augment.EraseScale[1] && p.Augment.EraseScale[1] < 1):
		return fmt.Errorf("train: augment.erasescale %v: want 0 < lo <= hi < 1", p.Augment.EraseScale)
	}
	for c := range p.Std {
		if p.Std[c] <= 0 {
			return fmt.Errorf("train: std[%d] must be positive", c)
		}
	}
	if err := p.Views().Validate(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := p.Drift.WithDefaults().Validate(); err != nil {
		return fmt.Errorf("train: params drift: %w", err)
	}
	return p.Arch.Validate()
}

func (p Params) threads() int {
	if p.Threads > 0 {
		return p.Threads
	}
	return runtime.NumCPU()
}

func (p Params) workers() int {
	if p.Workers > 0 {
		return p.Workers
	}
	return runtime.NumCPU()
}

// Views are the test-time views of validation, test and serving.
func (p Params) Views() model.Views { return model.Views{Flip: p.TTA, Crops: p.TTACrops} }

// Spec returns the preprocessing specification implied by the parameters.
func (p Params) Spec() imageprep.Spec {
	return imageprep.Spec{Size: p.InputSize, Mean: p.Mean, Std: p.Std}
}

// flatten returns every parameter as a flat string map (for experiment tracking).
func (p Params) flatten() map[string]string {
	m := map[string]string{
		"epochs":          fmt.Sprint(p.Epochs),
		"batch_size":      fmt.Sprint(p.BatchSize),
		"lr":              fmt.Sprint(p.LR),
		"warmup_epochs":   fmt.Sprint(p.WarmupEpochs),
		"weight_decay":    fmt.Sprint(p.WeightDecay),
		"label_smoothing": fmt.Sprint(p.LabelSmoothing),
		"seed":            fmt.Sprint(p.Seed),
		"threads":         fmt.Sprint(p.threads()),
		"workers":         fmt.Sprint(p.workers()),
		"input_size":      fmt.Sprint(p.InputSize),
		"tta":             fmt.Sprint(p.TTA),
		"tta_crops":       fmt.Sprint(p.TTACrops),
		"ema_decay":       fmt.Sprint(p.EMADecay),
		"arch.name":       p.Arch.Name,
		"arch.widths":     fmt.Sprint(p.Arch.Widths),
		"arch.dropout":    fmt.Sprint(p.Arch.Dropout),
		"arch.classes":    fmt.Sprint(p.Arch.Classes),
		"mean":            fmt.Sprint(p.Mean),
		"std":             fmt.Sprint(p.Std),
	}
	a := p.Augment
	m["augment.scale"] = fmt.Sprint(a.Scale)
	m["augment.ratio"] = fmt.Sprint(a.Ratio)
	m["augment.flip_prob"] = fmt.Sprint(a.FlipProb)
	m["augment.brightness"] = fmt.Sprint(a.Brightness)
	m["augment.contrast"] = fmt.Sprint(a.Contrast)
	m["augment.saturation"] = fmt.Sprint(a.Saturation)
	m["augment.erase_prob"] = fmt.Sprint(a.EraseProb)
	m["augment.erase_scale"] = fmt.Sprint(a.EraseScale)
	return m
}
