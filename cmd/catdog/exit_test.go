package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

// TestExitStatus runs the real (light) binary: every failure prints one error line on stderr,
// prefixed once with the program or command name, and exits with the documented status.
func TestExitStatus(t *testing.T) {
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "catdog")
	testenv.Run(t, root, nil, "go", "build", "-tags", "catdog_light", "-o", bin, "./cmd/catdog")
	notDir := filepath.Join(root, "go.mod")
	failedLog := filepath.Join(dir, "test.log")
	if err := os.WriteFile(failedLog, []byte("--- FAIL: TestX (0.1s)\nFAIL\nFAIL\texample.com/p\t0.2s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantLine string // the stderr line, up to its end
	}{
		{"help", []string{"--help"}, 0, ""},
		{"unknown flag", []string{"--nope"}, exitUsage, "catdog: flag provided but not defined: -nope (see catdog --help)"},
		{"unknown command", []string{"nosuchcmd"}, exitUsage, `catdog: unknown command "nosuchcmd" (see catdog --help)`},
		{"unknown subcommand flag", []string{"image", "build", "--nope"}, exitUsage, "catdog image build: flag provided but not defined: -nope (see catdog image build --help)"},
		{"missing required flag", []string{"image", "push"}, exitUsage, `catdog: Required flag "oci-layout" not set`},
		{"bad input named on the command line", []string{"prepare", "--data", notDir, "--out", dir}, exitUsage, "catdog prepare: --data " + notDir + " is not a folder"},
		{"work failed", []string{"gha", "test-report", failedLog}, exitFailure, "catdog gha test-report: 1 failures"},
		// a library's error (dvcfmt/repo) named by the command it came through, once
		{"data: library error", []string{"data", "add", "x"}, exitFailure, "catdog data add: " + dir + ": not a DVC repository"},
		{"data: usage error", []string{"data", "remote", "add", "x"}, exitUsage, "catdog data remote add: want NAME URL"},
		{"repro: library error", []string{"repro"}, exitFailure, "catdog repro: " + dir + ": not a DVC repository"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GITHUB_ACTIONS=", "GITHUB_STEP_SUMMARY=", "GITHUB_OUTPUT=")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Errorf("exit status %d, want %d (stderr %q)", code, tc.wantCode, stderr.String())
			}
			got := stderr.String()
			if tc.wantLine == "" {
				if got != "" {
					t.Errorf("stderr %q, want nothing", got)
				}
				return
			}
			if strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, tc.wantLine) {
				t.Errorf("stderr %q, want one line starting %q", got, tc.wantLine)
			}
			if strings.Contains(got, "catdog: catdog") {
				t.Errorf("doubled prefix: %q", got)
			}
		})
	}
}

// TestExitStatusInterrupted: Ctrl-C (SIGINT) during a long step stops it through its context
// and the real binary exits 130. The step is `catdog health` waiting on a server that accepts
// the connection and never answers.
func TestExitStatusInterrupted(t *testing.T) {
	root := testenv.RepoRoot(t)
	bin := filepath.Join(t.TempDir(), "catdog")
	testenv.Run(t, root, nil, "go", "build", "-tags", "catdog_light", "-o", bin, "./cmd/catdog")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c
		}
	}()
	cmd := exec.Command(bin, "health", "--url", "http://"+l.Addr().String()+"/health", "--timeout", "2m")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("catdog health never connected")
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitSignal {
		t.Fatalf("exit: %v, want status %d (stderr %q)", err, exitSignal, stderr.String())
	}
	if got, want := stderr.String(), "catdog health: context canceled\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
}
