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
