package drift_test

import (
	"bytes"
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/internal/drifttest"
)

func TestDefaultMethod(t *testing.T) {
	tests := []struct {
		kind     Kind
		ref, nv  int
		want     Method
		pvalue   bool
		threshld float64
	}{
		{Numerical, 1000, 6, MethodKS, true, 0.05},
		{Numerical, 1000, 5, MethodChiSquare, true, 0.05},
		{Numerical, 1000, 2, MethodZ, true, 0.05},
		{Categorical, 200, 9, MethodChiSquare, true, 0.05},
		{Categorical, 200, 2, MethodZ, true, 0.05},
		{Numerical, 1001, 6, MethodWasserstein, false, 0.1},
		{Numerical, 1001, 5, MethodJensenShannon, false, 0.1},
		{Categorical, 5000, 40, MethodJensenShannon, false, 0.1},
	}
	for _, tt := range tests {
		m := DefaultMethod(tt.kind, tt.ref, tt.nv)
		if m != tt.want || m.PValue() != tt.pvalue || DefaultThreshold(m) != tt.threshld {
			t.Errorf("DefaultMethod(%s, %d rows, %d values) = %s (p-value %v, threshold %v), want %s", tt.kind, tt.ref, tt.nv, m, m.PValue(), DefaultThreshold(m), tt.want)
		}
	}
}

// Known values computed with SciPy 1.17 (ks_2samp, wasserstein_distance).
func TestStatisticsKnownValues(t *testing.T) {
	ks := KS2Samp([]float64{1, 2, 3, 4, 5}, []float64{3, 4, 5, 6, 7, 8})
	if math.Abs(ks.D-0.5) > 1e-12 || !ks.Exact || math.Abs(ks.PValue-0.35714285714285715) > 1e-12 {
		t.Errorf("KS2Samp = %+v, want D 0.5, p 0.357142857 (exact)", ks)
	}
	same := KS2Samp([]float64{1, 2, 3}, []float64{1, 2, 3})
	if same.D != 0 || same.PValue != 1 {
		t.Errorf("identical samples: %+v", same)
	}
	if w := Wasserstein([]float64{0, 1, 3}, []float64{5, 6, 8}); math.Abs(w-5) > 1e-12 {
		t.Errorf("Wasserstein = %v, want 5", w)
	}
	if w := Wasserstein([]float64{3.4, 3.9, 7.5, 7.8}, []float64{4.5, 1.4}); math.Abs(w-2.7) > 1e-12 {
		t.Errorf("Wasserstein = %v, want 2.7", w)
	}
	if z := ZTest([]float64{0, 0, 0}, []float64{0, 0}); z != 1 {
		t.Errorf("ZTest of one shared value = %v, want 1", z)
	}
}

func TestCompareRejectsBadTables(t *testing.T) {
	ref := Table{Names: []string{"a"}, Kinds: []Kind{Numerical}, Columns: [][]float64{{1, 2, 3}}}
	for name, cur := range map[string]Table{
		"missing column": {Names: []string{"b"}, Kinds: []Kind{Numerical}, Columns: [][]float64{{1}}},
		"NaN":            {Names: []string{"a"}, Kinds: []Kind{Numerical}, Columns: [][]float64{{math.NaN()}}},
		"empty":          {Names: []string{"a"}, Kinds: []Kind{Numerical}, Columns: [][]float64{{}}},
		"ragged":         {Names: []string{"a", "b"}, Kinds: []Kind{Numerical, Numerical}, Columns: [][]float64{{1}, {1, 2}}},
		"bad kind":       {Names: []string{"a"}, Kinds: []Kind{"text"}, Columns: [][]float64{{1}}},
	} {
		if _, err := Compare(ref, cur, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Compare(ref, ref, Options{Method: "t-test"}); err == nil {
		t.Error("unknown method accepted")
	}
	if _, err := Compare(ref, ref, Options{DriftShare: 2}); err == nil {
		t.Error("drift share 2 accepted")
	}
	res, err := Compare(ref, ref, Options{Method: MethodPSI, Thresholds: map[Method]float64{MethodPSI: 0.5}})
	if err != nil || res.Columns[0].Method != MethodPSI || res.Columns[0].Threshold != 0.5 || res.DatasetDrift {
		t.Errorf("forced PSI: %+v %v", res, err)
	}
}

func TestProfileRoundTrip(t *testing.T) {
	ref := drifttest.Synthetic(50, 0, 1)
	p, err := NewProfile(ref, 128, "test", time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := p.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	q, err := DecodeProfile(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got := q.Table()
	for i := range ref.Names {
		if got.Names[i] != ref.Names[i] || got.Kinds[i] != ref.Kinds[i] {
			t.Fatalf("column %d: %s/%s, want %s/%s", i, got.Names[i], got.Kinds[i], ref.Names[i], ref.Kinds[i])
		}
		for r := range ref.Columns[i] {
			if got.Columns[i][r] != ref.Columns[i][r] {
				t.Fatalf("%s[%d] = %v, want %v", ref.Names[i], r, got.Columns[i][r], ref.Columns[i][r])
			}
		}
	}
	if s := q.Features[4].Summary; s.Min != 7 || s.Max != 7 || s.Std != 0 {
		t.Errorf("constant column summary %+v", s)
	}
	for name, doc := range map[string]string{
		"other format":  strings.Replace(buf.String(), ProfileFormat, "something-else", 1),
		"newer version": strings.Replace(buf.String(), `"version": 1`, `"version": 2`, 1),
		"not json":      "{",
		"short column":  strings.Replace(buf.String(), `"rows": 50`, `"rows": 51`, 1),
	} {
		if _, err := DecodeProfile(strings.NewReader(doc)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestWindowBounds(t *testing.T) {
	w, err := NewWindow(2, 3, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		w.Add(t0.Add(time.Duration(i)*10*time.Second), []float64{float64(i), float64(-i)})
	}
	cols := w.Columns(t0.Add(40 * time.Second))
	if len(cols[0]) != 3 || cols[0][0] != 2 || cols[0][2] != 4 || cols[1][2] != -4 {
		t.Errorf("count bound: %v", cols)
	}
	// At 95 s the rows of 20 s and 30 s are older than a minute.
	if n := w.Len(t0.Add(95 * time.Second)); n != 1 {
		t.Errorf("age bound: %d rows, want 1", n)
	}
	if n := w.Len(t0.Add(200 * time.Second)); n != 0 {
		t.Errorf("all aged out: %d rows", n)
	}
	for _, bad := range [][3]int{{0, 1, 0}, {1, 0, 0}, {1, 1, -1}} {
		if _, err := NewWindow(bad[0], bad[1], time.Duration(bad[2])); err == nil {
			t.Errorf("NewWindow%v accepted", bad)
		}
	}
}

func TestMonitorComparesEveryNRows(t *testing.T) {
	ref := drifttest.Synthetic(300, 0, 1)
	p, err := NewProfile(ref, 128, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Rows arrive with the columns in another order than the profile's, plus an extra one.
	names := append([]string{"extra"}, ref.Names...)
	statuses := make(chan Status, 10)
	m, err := NewMonitor(p, names, MonitorConfig{WindowSize: 100, EveryRequests: 40, Every: time.Hour, MinRows: 20}, func(s Status) { statuses <- s })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	shifted := drifttest.Synthetic(100, 1.5, 2)
	for i := 0; i < 40; i++ {
		row := []float64{99}
		for c := range shifted.Columns {
			row = append(row, shifted.Columns[c][i])
		}
		m.Observe(row)
	}
	select {
	case s := <-statuses:
		if s.WindowRows != 40 || s.Result == nil || s.Err != nil {
			t.Fatalf("status %+v", s)
		}
		want, _ := Compare(ref, Table{Names: ref.Names, Kinds: ref.Kinds, Columns: sliceRows(shifted, 40)}, Options{})
		if s.Result.Drifted != want.Drifted || s.Result.Columns[0].Score != want.Columns[0].Score || !s.Result.DatasetDrift {
			t.Errorf("monitor result %+v, direct %+v", s.Result, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no comparison after EveryRequests rows")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Below MinRows only the size is reported.
	m2, _ := NewMonitor(p, names, MonitorConfig{MinRows: 5}, nil)
	m2.Observe(make([]float64, len(names)))
	if s, err := m2.Check(); err != nil || s.Result != nil || s.WindowRows != 1 {
		t.Errorf("small window: %+v %v", s, err)
	}
	if _, err := NewMonitor(p, []string{"cont"}, MonitorConfig{}, nil); err == nil {
		t.Error("monitor accepted rows without the profile's features")
	}
}

func sliceRows(t Table, n int) [][]float64 {
	out := make([][]float64, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c[:n]
	}
	return out
}

func TestCSVRoundTrip(t *testing.T) {
	tab := drifttest.Synthetic(50, 0.3, 5)
	var buf bytes.Buffer
	if err := tab.EncodeCSV(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCSV(bytes.NewReader(buf.Bytes()), tab)
	if err != nil {
		t.Fatal(err)
	}
	for c := range tab.Columns {
		for r := range tab.Columns[c] {
			if got.Columns[c][r] != tab.Columns[c][r] {
				t.Fatalf("%s[%d] = %v, want %v", tab.Names[c], r, got.Columns[c][r], tab.Columns[c][r])
			}
		}
	}
	for name, doc := range map[string]string{
		"missing column": "cont,ties\n1,2\n",
		"not a number":   "cont,ties,flag,levels,const,lognormal\nx,1,1,1,1,1\n",
		"empty":          "",
	} {
		if _, err := DecodeCSV(strings.NewReader(doc), tab); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestPredictionProfileTable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pp        PredictionProfile
		wantCodes []float64
		wantErr   bool
	}{
		{"shares become counts", PredictionProfile{Rows: 3, ClassShare: map[string]float64{"dog": 2.0 / 3, "cat": 1.0 / 3}, Confidence: []float64{0.9, 0.8, 0.7}}, []float64{0, 1, 1}, false},
		{"a class never predicted", PredictionProfile{Rows: 2, ClassShare: map[string]float64{"cat": 0, "dog": 1}, Confidence: []float64{0.6, 0.7}}, []float64{1, 1}, false},
		{"shares that do not count the rows", PredictionProfile{Rows: 2, ClassShare: map[string]float64{"cat": 0.5, "dog": 1}, Confidence: []float64{0.6, 0.7}}, nil, true},
		{"confidences missing", PredictionProfile{Rows: 2, ClassShare: map[string]float64{"cat": 1}, Confidence: []float64{0.6}}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := tc.pp.Table()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if !slices.Equal(tab.Names, PredictionColumns()) || !slices.Equal(tab.Column(PredictedClassColumn), tc.wantCodes) || !slices.Equal(tab.Column(ConfidenceColumn), tc.pp.Confidence) {
				t.Errorf("table %+v", tab)
			}
		})
	}
	classes := []string{"cat", "dog"}
	for label, want := range map[string]float64{"cat": 0, "dog": 1, "fox": 2} {
		if got := ClassCode(classes, label); got != want {
			t.Errorf("ClassCode(%q) = %v, want %v", label, got, want)
		}
	}
}
