package drifttest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

// EvidentlyScript is the path of drift/testdata/evidently_drift.py, which runs Evidently's
// DataDriftPreset on feature tables written as CSV.
func EvidentlyScript(t testing.TB) string {
	return filepath.Join(testenv.RepoRoot(t), "drift", "testdata", "evidently_drift.py")
}

// EvidentlyResult is what testdata/evidently_drift.py prints.
type EvidentlyResult struct {
	Columns []struct {
		Feature    string       `json:"feature"`
		Method     drift.Method `json:"method"`
		Score      float64      `json:"score"`
		Threshold  float64      `json:"threshold"`
		Drifted    bool         `json:"drifted"`
		PSI        float64      `json:"psi"`
		PSIDrifted bool         `json:"psi_drifted"`
	} `json:"columns"`
	DriftedColumns float64 `json:"drifted_columns"`
	DriftedShare   float64 `json:"drifted_share"`
	DatasetDrift   bool    `json:"dataset_drift"`
	Seconds        float64 `json:"seconds"`
}

// WriteCSV writes tab as CSV (drift.Table.EncodeCSV).
func WriteCSV(t testing.TB, path string, tab drift.Table) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.EncodeCSV(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// Case is one comparison to run through Evidently.
type Case struct {
	Name     string
	Ref, Cur drift.Table
}

// RunEvidently runs Evidently's DataDriftPreset (the project venv's python) on every case in
// one process (Evidently takes seconds to import) and returns the results by case name.
func RunEvidently(t testing.TB, cases []Case, repeat int) map[string]EvidentlyResult {
	t.Helper()
	dir := t.TempDir()
	type spec struct {
		Name      string                `json:"name"`
		Reference string                `json:"reference"`
		Current   string                `json:"current"`
		Kinds     map[string]drift.Kind `json:"kinds"`
	}
	var specs []spec
	for i, c := range cases {
		s := spec{Name: c.Name, Reference: filepath.Join(dir, fmt.Sprintf("ref%d.csv", i)), Current: filepath.Join(dir, fmt.Sprintf("cur%d.csv", i)), Kinds: map[string]drift.Kind{}}
		WriteCSV(t, s.Reference, c.Ref)
		WriteCSV(t, s.Current, c.Cur)
		for j, n := range c.Ref.Names {
			s.Kinds[n] = c.Ref.Kinds[j]
		}
		specs = append(specs, s)
	}
	b, _ := json.Marshal(specs)
	if err := os.WriteFile(filepath.Join(dir, "cases.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	py := testenv.VenvBin(t, "python")
	script := EvidentlyScript(t)
	cmd := exec.Command(py, script, filepath.Join(dir, "cases.json"), strconv.Itoa(repeat))
	cmd.Env = append(os.Environ(), "DO_NOT_TRACK=1", "EVIDENTLY_DISABLE_TELEMETRY=1")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("evidently: %v\n%s", err, stderr)
	}
	res := map[string]EvidentlyResult{}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("evidently output: %v\n%s", err, out)
	}
	return res
}

// AssertAgrees requires got (catdog's Compare) to equal Evidently's result: the same method
// per column, scores and PSI within 1e-6 (absolute: the bound), the same decisions
// and the same drifted count, share and dataset drift.
func AssertAgrees(t *testing.T, got drift.Result, want EvidentlyResult) {
	t.Helper()
	if len(want.Columns) != len(got.Columns) {
		t.Fatalf("evidently reported %d columns, catdog %d", len(want.Columns), len(got.Columns))
	}
	close := func(a, b float64) bool {
		if math.IsInf(a, 0) || math.IsInf(b, 0) {
			return a == b
		}
		return math.Abs(a-b) <= 1e-6
	}
	byName := map[string]drift.ColumnResult{}
	for _, c := range got.Columns {
		byName[c.Feature] = c
	}
	for _, w := range want.Columns {
		g := byName[w.Feature]
		if g.Method != w.Method || !close(g.Score, w.Score) || g.Threshold != w.Threshold || g.Drifted != w.Drifted {
			t.Errorf("%s: catdog %s %.12g (threshold %v, drifted %v), evidently %s %.12g (threshold %v, drifted %v)",
				w.Feature, g.Method, g.Score, g.Threshold, g.Drifted, w.Method, w.Score, w.Threshold, w.Drifted)
		}
		if !close(g.PSI, w.PSI) || g.PSIDrifted != w.PSIDrifted {
			t.Errorf("%s: catdog PSI %.12g (%v), evidently %.12g (%v)", w.Feature, g.PSI, g.PSIDrifted, w.PSI, w.PSIDrifted)
		}
	}
	if float64(got.Drifted) != want.DriftedColumns || !close(got.Share, want.DriftedShare) || got.DatasetDrift != want.DatasetDrift {
		t.Errorf("dataset: catdog %d drifted, share %v, drift %v; evidently %v, %v, %v",
			got.Drifted, got.Share, got.DatasetDrift, want.DriftedColumns, want.DriftedShare, want.DatasetDrift)
	}
}

// CompareWithEvidently runs Compare and Evidently on every case and requires agreement; it
// returns catdog's results by case name.
func CompareWithEvidently(t *testing.T, cases []Case) map[string]drift.Result {
	t.Helper()
	want := RunEvidently(t, cases, 1)
	got := map[string]drift.Result{}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r, err := drift.Compare(c.Ref, c.Cur, drift.Options{})
			if err != nil {
				t.Fatal(err)
			}
			w, ok := want[c.Name]
			if !ok {
				t.Fatalf("no evidently result for %q", c.Name)
			}
			AssertAgrees(t, r, w)
			got[c.Name] = r
		})
	}
	return got
}

// Synthetic makes a table whose columns exercise every default method: continuous values,
// heavy ties (one decimal), a 0/1 flag, four levels (chi-square), a constant column.
func Synthetic(n int, shift float64, seed uint64) drift.Table {
	r := rand.New(rand.NewPCG(seed, 1))
	cols := make([][]float64, 6)
	for i := range cols {
		cols[i] = make([]float64, n)
	}
	for i := 0; i < n; i++ {
		cols[0][i] = r.NormFloat64() + shift
		cols[1][i] = math.Round((r.NormFloat64()+shift/2)*10) / 10
		if r.Float64() < 0.3+shift/4 {
			cols[2][i] = 1
		}
		cols[3][i] = float64(r.IntN(4))
		if shift > 0 && r.Float64() < shift/2 {
			cols[3][i] = 3
		}
		cols[4][i] = 7
		cols[5][i] = math.Exp(r.NormFloat64()*(1+shift)) * 1000
	}
	return drift.Table{
		Names:   []string{"cont", "ties", "flag", "levels", "const", "lognormal"},
		Kinds:   []drift.Kind{drift.Numerical, drift.Numerical, drift.Categorical, drift.Numerical, drift.Numerical, drift.Numerical},
		Columns: cols,
	}
}

// SyntheticPredictions makes a prediction table (drift.PredictionColumns): a top-class
// confidence in [0.5, 1) that moves towards 0.5 with lower (0 for none), and a predicted
// class coded 0 (cat) with probability catShare, else 1.
func SyntheticPredictions(n int, catShare, lower float64, seed uint64) drift.Table {
	r := rand.New(rand.NewPCG(seed, 2))
	conf, class := make([]float64, n), make([]float64, n)
	for i := range conf {
		conf[i] = 1 - 0.5*math.Pow(r.Float64(), 1+4*(1-lower))
		if r.Float64() >= catShare {
			class[i] = 1
		}
	}
	return drift.Table{Names: drift.PredictionColumns(), Kinds: []drift.Kind{drift.Numerical, drift.Categorical}, Columns: [][]float64{conf, class}}
}
