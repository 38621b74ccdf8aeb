package drift_test

import (
	"testing"

	"github.com/catdog-mlops/catdog/internal/drifttest"
)

func TestCompareAgreesWithEvidentlySynthetic(t *testing.T) {
	drifttest.CompareWithEvidently(t, []drifttest.Case{
		{Name: "small reference, no shift", Ref: drifttest.Synthetic(300, 0, 1), Cur: drifttest.Synthetic(120, 0, 2)},
		{Name: "small reference, shift", Ref: drifttest.Synthetic(300, 0, 1), Cur: drifttest.Synthetic(120, 0.6, 3)},
		{Name: "equal sizes", Ref: drifttest.Synthetic(200, 0, 4), Cur: drifttest.Synthetic(200, 0.3, 5)},
		{Name: "1000 rows exactly", Ref: drifttest.Synthetic(1000, 0, 6), Cur: drifttest.Synthetic(333, 0.2, 7)},
		{Name: "large reference, no shift", Ref: drifttest.Synthetic(1600, 0, 8), Cur: drifttest.Synthetic(200, 0, 9)},
		{Name: "large reference, shift", Ref: drifttest.Synthetic(1600, 0, 8), Cur: drifttest.Synthetic(200, 0.5, 10)},
		{Name: "tiny current", Ref: drifttest.Synthetic(500, 0, 11), Cur: drifttest.Synthetic(7, 0.5, 12)},
	})
}

// The prediction columns (confidence: KS or Wasserstein; predicted_class: z-test or
// Jensen–Shannon) as serve compares them with the validation split's predictions.
func TestPredictionDriftAgreesWithEvidently(t *testing.T) {
	got := drifttest.CompareWithEvidently(t, []drifttest.Case{
		{Name: "validation-sized reference, same model", Ref: drifttest.SyntheticPredictions(200, 0.5, 0, 21), Cur: drifttest.SyntheticPredictions(100, 0.5, 0, 22)},
		{Name: "validation-sized reference, all dogs", Ref: drifttest.SyntheticPredictions(200, 0.5, 0, 21), Cur: drifttest.SyntheticPredictions(100, 0.05, 0, 23)},
		{Name: "validation-sized reference, unsure", Ref: drifttest.SyntheticPredictions(200, 0.5, 0, 21), Cur: drifttest.SyntheticPredictions(100, 0.5, 0.8, 24)},
		{Name: "large reference, shifted", Ref: drifttest.SyntheticPredictions(2000, 0.5, 0, 25), Cur: drifttest.SyntheticPredictions(300, 0.3, 0.5, 26)},
	})
	for name, want := range map[string][2]bool{ // confidence, predicted_class drifted
		"validation-sized reference, same model": {false, false},
		"validation-sized reference, all dogs":   {false, true},
		"validation-sized reference, unsure":     {true, false},
		"large reference, shifted":               {true, true},
	} {
		r := got[name]
		if len(r.Columns) != 2 || r.Columns[0].Drifted != want[0] || r.Columns[1].Drifted != want[1] {
			t.Errorf("%s: %+v, want drifted %v", name, r.Columns, want)
		}
	}
}
