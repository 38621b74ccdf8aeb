//go:build !catdog_light

package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestDeviceCUDAOnCPUMachine: on this CPU-only libtorch, `--device cuda` stops before any
// work with exit status 2 and a message that names the cause and the fix.
func TestDeviceCUDAOnCPUMachine(t *testing.T) {
	for _, args := range [][]string{
		{"train", "--device", "cuda", "--data", t.TempDir()},
		{"train", "--device", "cuda:1", "--data", t.TempDir()},
		{"train", "--device", "tpu", "--data", t.TempDir()},
	} {
		_, err := runCatdog(t, args...)
		var ec cli.ExitCoder
		if err == nil || !errors.As(err, &ec) || ec.ExitCode() != 2 {
			t.Fatalf("catdog %s: err %v, want exit status 2", strings.Join(args, " "), err)
		}
		msg := err.Error()
		want := "no CUDA device"
		if args[2] == "tpu" {
			want = "want cpu, cuda, cuda:N or auto"
		}
		if !strings.Contains(msg, "--device") || !strings.Contains(msg, want) {
			t.Errorf("catdog %s: %q lacks %q", strings.Join(args, " "), msg, want)
		}
	}
}
