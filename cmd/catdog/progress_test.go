package main

import (
	"strings"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/internal/progress"
)

// TestProgressLines: the renderer's plain lines (CI logs) for item and byte operations.
func TestProgressLines(t *testing.T) {
	tests := []struct {
		name    string
		l       lines
		updates []progress.Update
		want    []string // prefixes of the printed lines, in order
	}{
		{"items: 10% steps and the end", lines{every: time.Hour, pctStep: 10, final: true},
			countTo("decoding", 20, false), []string{
				"decoding 2/20 (10%", "decoding 4/20 (20%", "decoding 6/20 (30%", "decoding 8/20 (40%", "decoding 10/20 (50%",
				"decoding 12/20 (60%", "decoding 14/20 (70%", "decoding 16/20 (80%", "decoding 18/20 (90%", "decoding 20/20 (100%"}},
		{"sparse: nothing for a short operation", sparseLines, countTo("epoch 1/2", 50, false), nil},
		{"small byte transfer: silent", byteLines, countTo("upload", 1<<20, true), nil},
		{"quiet", lines{}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			f := newProgress(&b, tt.name == "quiet", tt.l)
			if tt.name == "quiet" {
				if f != nil {
					t.Fatal("quiet renderer is not nil")
				}
				return
			}
			for _, u := range tt.updates {
				f(u)
			}
			got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
			if b.Len() == 0 {
				got = nil
			}
			if len(got) != len(tt.want) {
				t.Fatalf("printed %d lines, want %d:\n%s", len(got), len(tt.want), b.String())
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("line %d = %q, want prefix %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func countTo(op string, n int64, bytes bool) []progress.Update {
	step := int64(1)
	if bytes {
		step = n / 8
	}
	us := []progress.Update{{Op: op, Total: n, Bytes: bytes}}
	for d := step; d <= n; d += step {
		us = append(us, progress.Update{Op: op, Done: d, Total: n, Bytes: bytes, Final: d == n})
	}
	return us
}

func TestRateETA(t *testing.T) {
	tests := []struct {
		name             string
		pct, done, total int64
		elapsed          time.Duration
		want             string
	}{
		{"slow batches keep a decimal", 5, 3, 51, 5 * time.Second, "5%, 0.6/s, 1m20s left"},
		{"fast items are whole", 50, 500, 1000, 2 * time.Second, "50%, 250/s, 2s left"},
		{"done: no time left", 100, 26, 26, time.Second, "100%, 26/s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rateETA(tt.pct, tt.done, tt.total, tt.elapsed); got != tt.want {
				t.Errorf("rateETA = %q, want %q", got, tt.want)
			}
		})
	}
}
