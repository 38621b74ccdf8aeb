// Package drift compares the features of recent inputs with a reference profile made at
// training time, with the statistics and rules of Evidently's DataDriftPreset: for each column
// a two-sample test chosen from the column's kind, the reference size and the number of
// distinct values, a per-column drift decision against the method's threshold, and dataset
// drift when the share of drifted columns reaches the drift share.
//
// It holds the reference profile (a versioned JSON document, see Profile), the statistics
// (KS2Samp, WassersteinNorm, JensenShannon, ZTest, ChiSquare, PSI), a bounded sliding window
// of recent feature rows (Window) and the comparison (Compare). It does no I/O beyond encoding
// and decoding; training writes profiles, the inference service feeds windows, and cmd/catdog
// renders reports.
package drift

import (
	"errors"
	"fmt"
	"math"
)

// Kind is a column's kind, as Evidently's column types.
type Kind string

// Column kinds.
const (
	Numerical   Kind = "numerical"
	Categorical Kind = "categorical"
)

// Method names a two-sample test. The values are Evidently's stattest names.
type Method string

// Methods. Tests that give a p-value detect drift below their threshold (KS at or below);
// distances detect drift at or above it.
const (
	MethodKS            Method = "ks"            // two-sample Kolmogorov–Smirnov p-value
	MethodWasserstein   Method = "wasserstein"   // Wasserstein distance normed by the reference std
	MethodJensenShannon Method = "jensenshannon" // Jensen–Shannon distance of binned shares
	MethodZ             Method = "z"             // z-test p-value for two proportions
	MethodChiSquare     Method = "chisquare"     // chi-square p-value
	MethodPSI           Method = "psi"           // population stability index
)

// DefaultThreshold is Evidently's default threshold of a method.
func DefaultThreshold(m Method) float64 {
	switch m {
	case MethodWasserstein, MethodJensenShannon, MethodPSI:
		return 0.1
	}
	return 0.05
}

// PValue reports whether the method's score is a p-value (small means drift).
func (m Method) PValue() bool {
	return m == MethodKS || m == MethodZ || m == MethodChiSquare
}

// Valid reports whether m is a known method.
func (m Method) Valid() bool {
	switch m {
	case MethodKS, MethodWasserstein, MethodJensenShannon, MethodZ, MethodChiSquare, MethodPSI:
		return true
	}
	return false
}

// drifted applies the method's decision rule as Evidently does: KS p ≤ t, other p-values
// p < t, distances d ≥ t.
func (m Method) drifted(score, threshold float64) bool {
	switch m {
	case MethodKS:
		return score <= threshold
	case MethodZ, MethodChiSquare:
		return score < threshold
	}
	return score >= threshold
}

// DefaultMethod is Evidently's default test for a column: with at most 1,000 reference rows, KS
// for a numerical column with more than 5 distinct values (in both samples together), else
// chi-square with more than 2 distinct values, else the z-test; with more reference rows,
// normed Wasserstein for a numerical column with more than 5 distinct values, else
// Jensen–Shannon.
func DefaultMethod(kind Kind, refRows, distinctValues int) Method {
	if refRows <= 1000 {
		switch {
		case kind == Numerical && distinctValues > 5:
			return MethodKS
		case distinctValues > 2:
			return MethodChiSquare
		default:
			return MethodZ
		}
	}
	if kind == Numerical && distinctValues > 5 {
		return MethodWasserstein
	}
	return MethodJensenShannon
}

// Score computes method m on the two samples.
func Score(m Method, kind Kind, ref, cur []float64) (float64, error) {
	if len(ref) == 0 || len(cur) == 0 {
		return math.NaN(), errors.New("drift: empty sample")
	}
	switch m {
	case MethodKS:
		return KS2Samp(ref, cur).PValue, nil
	case MethodWasserstein:
		return WassersteinNorm(ref, cur), nil
	case MethodJensenShannon:
		return JensenShannon(ref, cur, kind == Numerical), nil
	case MethodZ:
		return ZTest(ref, cur), nil
	case MethodChiSquare:
		return ChiSquare(ref, cur), nil
	case MethodPSI:
		return PSI(ref, cur, kind == Numerical), nil
	}
	return math.NaN(), fmt.Errorf("drift: unknown method %q", m)
}

// Options configure Compare. The zero value is Evidently's DataDriftPreset defaults.
type Options struct {
	// Method, when set, is used for every column instead of DefaultMethod.
	Method Method `yaml:"method" json:"method,omitempty"`
	// Thresholds override DefaultThreshold per method.
	Thresholds map[Method]float64 `yaml:"thresholds" json:"thresholds,omitempty"`
	// DriftShare is the share of drifted columns at which the dataset drifts (default 0.5).
	DriftShare float64 `yaml:"drift_share" json:"drift_share,omitempty"`
}

// Validate checks the options.
func (o Options) Validate() error {
	if o.Method != "" && !o.Method.Valid() {
		return fmt.Errorf("drift: unknown method %q (want ks, wasserstein, jensenshannon, z, chisquare or psi)", o.Method)
	}
	for m, t := range o.Thresholds {
		if !m.Valid() {
			return fmt.Errorf("drift: threshold for unknown method %q", m)
		}
		if math.IsNaN(t) || t < 0 {
			return fmt.Errorf("drift: threshold %v for %s", t, m)
		}
	}
	if o.DriftShare < 0 || o.DriftShare > 1 {
		return fmt.Errorf("drift: drift share %v out of [0,1]", o.DriftShare)
	}
	return nil
}

func (o Options) threshold(m Method) float64 {
	if t, ok := o.Thresholds[m]; ok {
		return t
	}
	return DefaultThreshold(m)
}

func (o Options) driftShare() float64 {
	if o.DriftShare == 0 {
		return 0.5
	}
	return o.DriftShare
}

// Table is a feature table stored by column.
type Table struct {
	Names   []string    // column names
	Kinds   []Kind      // column kinds, parallel to Names
	Columns [][]float64 // Columns[i] holds the values of column Names[i]
}

// Rows is the number of rows (the length of the first column).
func (t Table) Rows() int {
	if len(t.Columns) == 0 {
		return 0
	}
	return len(t.Columns[0])
}

// Column returns the values of the named column, or nil.
func (t Table) Column(name string) []float64 {
	for i, n := range t.Names {
		if n == name {
			return t.Columns[i]
		}
	}
	return nil
}

// Validate checks the table's shape: names, kinds and equal-length columns of finite values.
func (t Table) Validate() error {
	if len(t.Names) != len(t.Kinds) || len(t.Names) != len(t.Columns) {
		return fmt.Errorf("drift: table has %d names, %d kinds, %d columns", len(t.Names), len(t.Kinds), len(t.Columns))
	}
	for i, c := range t.Columns {
		if len(c) != t.Rows() {
			return fmt.Errorf("drift: column %q has %d values, %q has %d", t.Names[i], len(c), t.Names[0], t.Rows())
		}
		if t.Kinds[i] != Numerical && t.Kinds[i] != Categorical {
			return fmt.Errorf("drift: column %q has kind %q", t.Names[i], t.Kinds[i])
		}
		for _, v := range c {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("drift: column %q holds %v", t.Names[i], v)
			}
		}
	}
	return nil
}

// ColumnResult is the comparison of one column.
type ColumnResult struct {
	Feature   string  `json:"feature"`
	Kind      Kind    `json:"kind"`
	Method    Method  `json:"method"`
	Score     float64 `json:"score"`     // p-value or distance, see Method.PValue
	Threshold float64 `json:"threshold"` // the decision threshold of Method
	Drifted   bool    `json:"drifted"`
	// PSI is the population stability index, reported alongside (threshold 0.1 unless set).
	PSI        float64 `json:"psi"`
	PSIDrifted bool    `json:"psi_drifted"`
}

// Result is the comparison of a current table with a reference.
type Result struct {
	Columns       []ColumnResult `json:"columns"`
	Drifted       int            `json:"drifted_columns"`
	Share         float64        `json:"drifted_share"`
	DriftShare    float64        `json:"drift_share"` // the dataset-drift threshold
	DatasetDrift  bool           `json:"dataset_drift"`
	ReferenceRows int            `json:"reference_rows"`
	CurrentRows   int            `json:"current_rows"`
}

// Compare tests every column of ref against the same-named column of cur, as Evidently's
// DataDriftPreset does (see DefaultMethod and Method), and adds each column's PSI.
func Compare(ref, cur Table, o Options) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	if err := ref.Validate(); err != nil {
		return Result{}, fmt.Errorf("reference: %w", err)
	}
	if err := cur.Validate(); err != nil {
		return Result{}, fmt.Errorf("current: %w", err)
	}
	if ref.Rows() == 0 || cur.Rows() == 0 {
		return Result{}, fmt.Errorf("drift: need rows in both tables (reference %d, current %d)", ref.Rows(), cur.Rows())
	}
	res := Result{DriftShare: o.driftShare(), ReferenceRows: ref.Rows(), CurrentRows: cur.Rows()}
	for i, name := range ref.Names {
		c := cur.Column(name)
		if c == nil {
			return Result{}, fmt.Errorf("drift: current data has no column %q", name)
		}
		r, kind := ref.Columns[i], ref.Kinds[i]
		m := o.Method
		if m == "" {
			m = DefaultMethod(kind, len(r), distinct(append(append([]float64(nil), r...), c...)))
		}
		score, err := Score(m, kind, r, c)
		if err != nil {
			return Result{}, fmt.Errorf("drift: column %q: %w", name, err)
		}
		cr := ColumnResult{Feature: name, Kind: kind, Method: m, Score: score, Threshold: o.threshold(m)}
		cr.Drifted = m.drifted(score, cr.Threshold)
		cr.PSI = PSI(r, c, kind == Numerical)
		cr.PSIDrifted = MethodPSI.drifted(cr.PSI, o.threshold(MethodPSI))
		if cr.Drifted {
			res.Drifted++
		}
		res.Columns = append(res.Columns, cr)
	}
	res.Share = float64(res.Drifted) / float64(len(res.Columns))
	res.DatasetDrift = res.Share >= res.DriftShare
	return res, nil
}
