package drift

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/stat"
)

// ProfileFormat and ProfileVersion identify the profile document. The version changes when a
// field changes meaning; readers reject versions they do not know.
const (
	ProfileFormat  = "catdog-drift-profile"
	ProfileVersion = 1
)

// MaxProfileRows bounds the reference rows kept per feature. Training keeps every row of the
// training split up to this many (a seeded sample above it).
const MaxProfileRows = 20000

// Profile is the reference a model is monitored against: the per-image features of its
// training split (every value, so that two-sample tests are exact), and optionally what the
// model predicted on its validation split.
//
// JSON layout (version 1):
//
//	{
//	  "format": "catdog-drift-profile", "version": 1,
//	  "created": "2026-12-03T08:00:00Z",
//	  "source": "train split of data/prepared (manifest md5 ...)",
//	  "input_size": 128,
//	  "rows": 1601,
//	  "features": [
//	    {"name": "width", "kind": "numerical", "values": [500, 375, ...],
//	     "summary": {"min": .., "max": .., "mean": .., "std": .., "p05": .., "p50": .., "p95": ..}},
//	    ...
//	  ],
//	  "predictions": {"split": "val", "rows": 200, "class_share": {"cat": 0.49, "dog": 0.51},
//	                  "confidence": [0.93, ...]},
//	  "embedding": {"layer": "...", "dim": 256, "rows": 200, "mean": [...], "std": [...],
//	                "norms": [...]}
//	}
//
// "values" are in row order and every feature has "rows" of them.
type Profile struct {
	Format      string             `json:"format"`
	Version     int                `json:"version"`
	Created     time.Time          `json:"created"`
	Source      string             `json:"source"`
	InputSize   int                `json:"input_size"`
	Rows        int                `json:"rows"`
	Features    []FeatureProfile   `json:"features"`
	Predictions *PredictionProfile `json:"predictions,omitempty"`
	Embedding   *EmbeddingProfile  `json:"embedding,omitempty"`
}

// FeatureProfile is one feature's reference values.
type FeatureProfile struct {
	Name    string    `json:"name"`
	Kind    Kind      `json:"kind"`
	Values  []float64 `json:"values"`
	Summary Summary   `json:"summary"`
}

// Summary describes a sample for people reading the profile; tests use Values.
type Summary struct {
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"` // population standard deviation
	P05  float64 `json:"p05"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
}

// Summarize computes a Summary of x (empirical quantiles, gonum's stat).
func Summarize(x []float64) Summary {
	if len(x) == 0 {
		return Summary{}
	}
	s := sortedCopy(x)
	m, sd := stat.PopMeanStdDev(s, nil)
	return Summary{
		Min: s[0], Max: s[len(s)-1], Mean: m, Std: sd,
		P05: stat.Quantile(0.05, stat.Empirical, s, nil),
		P50: stat.Quantile(0.5, stat.Empirical, s, nil),
		P95: stat.Quantile(0.95, stat.Empirical, s, nil),
	}
}

// PredictionProfile is what the model predicted on the validation split.
type PredictionProfile struct {
	Split      string             `json:"split"`
	Rows       int                `json:"rows"`
	ClassShare map[string]float64 `json:"class_share"`
	Confidence []float64          `json:"confidence"` // top-class probability per image
}

// EmbeddingProfile summarises the model's penultimate-layer activations on the validation
// split: per-dimension mean and standard deviation, and every image's L2 norm.
type EmbeddingProfile struct {
	Layer string    `json:"layer"`
	Dim   int       `json:"dim"`
	Rows  int       `json:"rows"`
	Mean  []float64 `json:"mean"`
	Std   []float64 `json:"std"`
	Norms []float64 `json:"norms"`
}

// NewProfile builds a profile from a reference table (column order kept).
func NewProfile(ref Table, inputSize int, source string, created time.Time) (*Profile, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	if ref.Rows() == 0 {
		return nil, errors.New("drift: empty reference table")
	}
	if ref.Rows() > MaxProfileRows {
		return nil, fmt.Errorf("drift: %d reference rows, at most %d", ref.Rows(), MaxProfileRows)
	}
	p := &Profile{Format: ProfileFormat, Version: ProfileVersion, Created: created.UTC(), Source: source, InputSize: inputSize, Rows: ref.Rows()}
	for i, n := range ref.Names {
		v := slices.Clone(ref.Columns[i])
		p.Features = append(p.Features, FeatureProfile{Name: n, Kind: ref.Kinds[i], Values: v, Summary: Summarize(v)})
	}
	return p, nil
}

// Table returns the reference feature table.
func (p *Profile) Table() Table {
	t := Table{}
	for _, f := range p.Features {
		t.Names = append(t.Names, f.Name)
		t.Kinds = append(t.Kinds, f.Kind)
		t.Columns = append(t.Columns, f.Values)
	}
	return t
}

// Validate checks the format, version and shape.
func (p *Profile) Validate() error {
	if p.Format != ProfileFormat {
		return fmt.Errorf("drift: not a drift profile (format %q, want %q)", p.Format, ProfileFormat)
	}
	if p.Version != ProfileVersion {
		return fmt.Errorf("drift: profile version %d, this catdog reads version %d", p.Version, ProfileVersion)
	}
	if len(p.Features) == 0 || p.Rows == 0 {
		return errors.New("drift: profile has no features or rows")
	}
	seen := map[string]bool{}
	for _, f := range p.Features {
		if seen[f.Name] {
			return fmt.Errorf("drift: profile lists feature %q twice", f.Name)
		}
		seen[f.Name] = true
		if len(f.Values) != p.Rows {
			return fmt.Errorf("drift: profile feature %q has %d values, rows is %d", f.Name, len(f.Values), p.Rows)
		}
	}
	return p.Table().Validate()
}

// Encode writes the profile as indented JSON.
func (p *Profile) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(p)
}

// DecodeProfile reads and validates a profile.
func DecodeProfile(r io.Reader) (*Profile, error) {
	var p Profile
	dec := json.NewDecoder(r)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("drift: profile: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// NewEmbeddingProfile summarises embeddings (n rows of dim values, row-major): per-dimension
// population mean and standard deviation, and every row's L2 norm.
func NewEmbeddingProfile(layer string, dim int, emb []float32) (*EmbeddingProfile, error) {
	if dim < 1 || len(emb) == 0 || len(emb)%dim != 0 {
		return nil, fmt.Errorf("drift: %d embedding values for dimension %d", len(emb), dim)
	}
	n := len(emb) / dim
	e := &EmbeddingProfile{Layer: layer, Dim: dim, Rows: n, Mean: make([]float64, dim), Std: make([]float64, dim), Norms: make([]float64, n)}
	col := make([]float64, n)
	for d := 0; d < dim; d++ {
		for r := 0; r < n; r++ {
			col[r] = float64(emb[r*dim+d])
		}
		e.Mean[d], e.Std[d] = stat.PopMeanStdDev(col, nil)
	}
	for r := 0; r < n; r++ {
		var s float64
		for _, v := range emb[r*dim : (r+1)*dim] {
			s += float64(v) * float64(v)
		}
		e.Norms[r] = math.Sqrt(s)
	}
	return e, nil
}

// Prediction columns: the live and batch comparisons of what the model predicted use these
// names for the top-class probability (numerical) and the predicted class (categorical, coded
// by ClassCode).
const (
	ConfidenceColumn     = "confidence"
	PredictedClassColumn = "predicted_class"
)

// PredictionColumns are the prediction table's column names, in order.
func PredictionColumns() []string { return []string{ConfidenceColumn, PredictedClassColumn} }

// Classes returns the profile's class names, sorted: the codes of ClassCode.
func (p *PredictionProfile) Classes() []string {
	cs := make([]string, 0, len(p.ClassShare))
	for c := range p.ClassShare {
		cs = append(cs, c)
	}
	slices.Sort(cs)
	return cs
}

// ClassCode is the value of the predicted_class column for label: its index in classes, or
// len(classes) for a class the reference never predicted (a category of its own).
func ClassCode(classes []string, label string) float64 {
	if i := slices.Index(classes, label); i >= 0 {
		return float64(i)
	}
	return float64(len(classes))
}

// Table returns the reference prediction table: the confidence of every validation image and
// a predicted_class column holding round(share·rows) codes of each class (the profile keeps
// the shares, not the per-image classes; the two-sample tests only need the counts).
func (p *PredictionProfile) Table() (Table, error) {
	if p.Rows < 1 || len(p.Confidence) != p.Rows {
		return Table{}, fmt.Errorf("drift: prediction profile has %d rows and %d confidences", p.Rows, len(p.Confidence))
	}
	classes := p.Classes()
	codes := make([]float64, 0, p.Rows)
	for i, c := range classes {
		n := int(math.Round(p.ClassShare[c] * float64(p.Rows)))
		for range n {
			codes = append(codes, float64(i))
		}
	}
	if len(codes) != p.Rows {
		return Table{}, fmt.Errorf("drift: prediction profile class shares %v do not count %d rows", p.ClassShare, p.Rows)
	}
	t := Table{Names: PredictionColumns(), Kinds: []Kind{Numerical, Categorical},
		Columns: [][]float64{slices.Clone(p.Confidence), codes}}
	return t, t.Validate()
}
