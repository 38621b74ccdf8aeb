package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

// prepareCLI runs `catdog <args>` in process and returns stdout, stderr and the error.
func prepareCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.RunContext(context.Background(), append([]string{"catdog"}, args...))
	return out.String(), errOut.String(), err
}

func TestPrepareCommand(t *testing.T) {
	shared := testenv.SharedData(t)
	src := t.TempDir()
	copyInto := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		for _, class := range []string{"Cat", "Dog"} {
			name := fmt.Sprintf("%s.%d.jpg", strings.ToLower(class), i)
			copyInto(filepath.Join(shared, "petimages-dev", class, name), filepath.Join(src, class, name))
		}
	}
	for _, f := range []string{"empty.jpg", "truncated.jpg", "fake.jpg", "grayscale.jpg"} {
		copyInto(filepath.Join(shared, "bad-inputs", f), filepath.Join(src, "Cat", f))
	}
	for _, f := range []string{"alpha.png", "cmyk.jpg"} {
		copyInto(filepath.Join(shared, "bad-inputs", f), filepath.Join(src, "Dog", f))
	}
	out := filepath.Join(t.TempDir(), "prepared")
	t.Setenv("CATDOG_PREPARE_SEED", "7") // env fallback for --seed

	stdout, stderr, err := prepareCLI(t, "prepare", "--data", src, "--out", out, "--size", "32", "--workers", "2")
	if err != nil {
		t.Fatalf("prepare: %v\n%s%s", err, stdout, stderr)
	}
	for _, want := range []string{
		"prepared " + out + ": 26 files, 23 accepted, 3 rejected",
		"train       9     10     19", // cat: 10 photos + grayscale (8.8|9.9), dog: 10 + alpha + cmyk (9.6|10.8)
		"val         1      1      2",
		"test        1      1      2",
		"rejected Cat/empty.jpg: empty: zero bytes\n",
		"rejected Cat/fake.jpg: unknown-format: ",
		"rejected Cat/truncated.jpg: truncated: ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "decoding 26/26 (100%") {
		t.Errorf("no progress on stderr: %q", stderr)
	}
	p, err := imageprep.ReadPrepared(out)
	if err != nil || p.Seed != 7 || p.Size != 32 {
		t.Fatalf("prepared.json: %+v, %v (want seed 7 from CATDOG_PREPARE_SEED)", p, err)
	}

	stdout, _, err = prepareCLI(t, "prepare", "--data", src, "--out", out, "--size", "32", "-q")
	if err != nil || !strings.HasPrefix(stdout, "reused cache "+out) {
		t.Errorf("second run: %v\n%s", err, stdout)
	}

	stdout, _, err = prepareCLI(t, "prepare", "--check", "--data", filepath.Join(shared, "bad-inputs"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 7 || lines[6] != "6 files: 3 usable, 3 rejected" {
		t.Errorf("--check on bad-inputs: want one line per file and a summary, got:\n%s", stdout)
	}
	for _, want := range []string{
		"ok       alpha.png: png 160x149 NRGBA (converted to RGB)",
		"ok       cmyk.jpg: jpeg 327x499 CMYK (converted to RGB)",
		"ok       grayscale.jpg: jpeg 312x396 Gray (converted to RGB)",
		"rejected empty.jpg: empty: zero bytes",
		"rejected fake.jpg: unknown-format: ",
		"rejected truncated.jpg: truncated: ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--check output lacks %q", want)
		}
	}

	for _, bad := range [][]string{
		{"prepare", "--data", src, "--out", out, "--split", "0.5,0.5"},
		{"prepare", "--data", filepath.Join(src, "missing"), "--out", out},
	} {
		_, _, err := prepareCLI(t, bad...)
		var ec cli.ExitCoder
		if !errors.As(err, &ec) || ec.ExitCode() != 2 {
			t.Errorf("%v: err %v, want exit code 2", bad, err)
		}
	}
}
