package drift

import "testing"

func TestDecisionRules(t *testing.T) {
	for _, tt := range []struct {
		m           Method
		score, thr  float64
		wantDrifted bool
	}{
		{MethodKS, 0.05, 0.05, true}, // KS: p <= threshold
		{MethodZ, 0.05, 0.05, false}, // z, chi-square: p < threshold
		{MethodChiSquare, 0.049, 0.05, true},
		{MethodWasserstein, 0.1, 0.1, true}, // distances: d >= threshold
		{MethodJensenShannon, 0.099, 0.1, false},
		{MethodPSI, 0.2, 0.1, true},
	} {
		if got := tt.m.drifted(tt.score, tt.thr); got != tt.wantDrifted {
			t.Errorf("%s(%v, threshold %v) drifted = %v", tt.m, tt.score, tt.thr, got)
		}
	}
}
