package drift_test

import (
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/catdog-mlops/catdog/drift"
)

func TestDecodeParams(t *testing.T) {
	for _, tc := range []struct {
		name    string
		yaml    string
		want    func(MonitorConfig) bool
		wantErr string
	}{
		{"no section: defaults", "train:\n  epochs: 3\n", func(c MonitorConfig) bool {
			return c.WindowSize == 500 && c.Options.DriftShare == 0 && c.Options.Method == ""
		}, ""},
		{"empty document", "", func(c MonitorConfig) bool { return c.EveryRequests == 500 }, ""},
		{"thresholds and share", "epochs: 3\ndrift:\n  drift_share: 0.3\n  method: psi\n  thresholds: {psi: 0.2}\n  every: 10s\n",
			func(c MonitorConfig) bool {
				return c.Options.DriftShare == 0.3 && c.Options.Method == MethodPSI && c.Options.Thresholds[MethodPSI] == 0.2 && c.Every == 10*time.Second
			}, ""},
		{"unknown key in the section", "drift:\n  drift_shares: 0.3\n", nil, "drift_shares"},
		{"bad method", "drift:\n  method: t-test\n", nil, "unknown method"},
		{"not YAML", "drift: [\n", nil, "params"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeParams(strings.NewReader(tc.yaml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.want(c) {
				t.Fatalf("DecodeParams = %+v, %v", c, err)
			}
		})
	}
}

// The repository's params.yaml: the section training reads is the one DecodeParams reads.
func TestDecodeParamsRepository(t *testing.T) {
	f, err := os.Open("../params.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := DecodeParams(f)
	if err != nil {
		t.Fatal(err)
	}
	if c.WindowSize != 500 || c.Options.DriftShare != 0.5 || c.Every != 30*time.Second {
		t.Errorf("params.yaml drift section = %+v", c)
	}
}
