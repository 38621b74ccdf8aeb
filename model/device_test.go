package model

import (
	"errors"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
)

// TestParseDevice runs on the CPU-only libtorch of this project: every CUDA request must
// fail with ErrNoCUDA and a message that says what to do, and auto must pick the CPU.
func TestParseDevice(t *testing.T) {
	if gotch.CUDA.IsAvailable() {
		t.Fatal("this test expects the project's CPU-only libtorch, which reports CUDA as available")
	}
	tests := []struct {
		in      string
		wantErr error
		errHas  string
	}{
		{"cpu", nil, ""},
		{"", nil, ""},
		{" CPU ", nil, ""},
		{"auto", nil, ""},
		{"cuda", ErrNoCUDA, "--device cpu"},
		{"cuda:0", ErrNoCUDA, "CPU build"},
		{"CUDA:1", ErrNoCUDA, "no CUDA device"},
		{"cuda:x", nil, "cuda:N"},
		{"cuda:-1", nil, "cuda:N"},
		{"gpu", nil, "want cpu, cuda, cuda:N or auto"},
	}
	for _, tc := range tests {
		d, err := ParseDevice(tc.in)
		switch {
		case tc.errHas == "" && (err != nil || d != gotch.CPU):
			t.Errorf("ParseDevice(%q) = %v, %v; want the CPU", tc.in, d, err)
		case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
			t.Errorf("ParseDevice(%q) error %v; want one containing %q", tc.in, err, tc.errHas)
		case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
			t.Errorf("ParseDevice(%q) error %v does not match %v", tc.in, err, tc.wantErr)
		case tc.errHas != "" && tc.wantErr == nil && errors.Is(err, ErrNoCUDA):
			t.Errorf("ParseDevice(%q): a malformed value reported as a missing GPU: %v", tc.in, err)
		}
	}
}
