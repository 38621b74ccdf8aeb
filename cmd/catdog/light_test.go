//go:build !catdog_light

package main

import (
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

// TestLightBuild builds catdog as `make build` does — catdog with -tags catdog_light, and
// catdog-torch — and checks that the light binary does not link libtorch, runs the other
// commands itself and hands the libtorch commands to catdog-torch.
func TestLightBuild(t *testing.T) {
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	light, torch := filepath.Join(dir, "catdog"), filepath.Join(dir, "catdog-torch")
	testenv.Run(t, root, nil, "go", "build", "-tags", "catdog_light", "-o", light, "./cmd/catdog")

	f, err := elf.Open(light)
	if err != nil {
		t.Fatal(err)
	}
	libs, err := f.ImportedLibraries()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if strings.Contains(l, "torch") || strings.Contains(l, "c10") || strings.Contains(l, "gomp") {
			t.Errorf("the light catdog links %s (all: %v)", l, libs)
		}
	}

	// Without catdog-torch: the data commands work, the libtorch commands explain what is missing.
	env := []string{"PATH=/usr/bin:/bin", "CATDOG_TORCH="}
	if out := testenv.Run(t, dir, env, light, "data", "--help"); !strings.Contains(out, "status") {
		t.Errorf("catdog data --help:\n%s", out)
	}
	tests := []struct {
		name    string
		env     []string
		wantErr string
	}{
		{"missing", env, "catdog-torch (the libtorch build of catdog"},
		{"not executable", []string{"CATDOG_TORCH=" + filepath.Join(root, "go.mod")}, "not an executable file"},
		{"absent override", []string{"CATDOG_TORCH=" + filepath.Join(dir, "nope")}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := testenv.RunErr(dir, tc.env, light, "serve", "--model", "x")
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, tc.wantErr) {
				t.Errorf("catdog serve: %v\n%s\nwant exit 1 and %q", err, out, tc.wantErr)
			}
		})
	}

	// The light binary cannot be the image's entrypoint.
	out, err := testenv.RunErr(root, env, light, "image", "build", "--binary", light, "--model", t.TempDir(), "--oci-layout", filepath.Join(dir, "layout"), "-q")
	if err == nil || !strings.Contains(out, "does not link libtorch") {
		t.Errorf("image build --binary <light catdog>: %v\n%s", err, out)
	}

	// With catdog-torch next to it, `catdog evaluate --help` is catdog-torch's help, and a
	// failing command keeps catdog-torch's error and exit status.
	testenv.Run(t, root, nil, "go", "build", "-o", torch, "./cmd/catdog")
	if out := testenv.Run(t, dir, env, light, "evaluate", "--help"); !strings.Contains(out, "--model") || !strings.Contains(out, "--split") {
		t.Errorf("catdog evaluate --help does not show evaluate's flags:\n%s", out)
	}
	out, err = testenv.RunErr(dir, env, light, "predict", "--model", filepath.Join(dir, "no-model"), "x.jpg")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "model.json") {
		t.Errorf("catdog predict with a missing model: %v\n%s", err, out)
	}
	if _, err := os.Stat(torch); err != nil {
		t.Fatal(err)
	}
}
