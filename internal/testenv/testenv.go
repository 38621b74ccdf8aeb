// Package testenv starts and locates the real peers that catdog's tests talk to
// (mlflow server, dvc, a distribution registry, Prometheus, ...), always on 127.0.0.1.
//
// A missing peer is a test failure that says how to install it (`make test` installs
// everything), never a silent skip.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// SharedData returns the shared data folder (../shared/data next to the repository),
// or $CATDOG_SHARED_DATA when set.
func SharedData(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CATDOG_SHARED_DATA")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "data")
	}
	if _, err := os.Stat(filepath.Join(dir, "petimages-dev")); err != nil {
		t.Fatalf("testenv: shared data not found at %s (set CATDOG_SHARED_DATA): %v", dir, err)
	}
	return dir
}

// VenvBin returns the path of an executable installed in the project virtualenv
// ($CATDOG_VENV, default <repo>/.venv), failing the test when it is missing.
func VenvBin(t testing.TB, name string) string {
	t.Helper()
	venv := os.Getenv("CATDOG_VENV")
	if venv == "" {
		venv = filepath.Join(RepoRoot(t), ".venv")
	}
	p := filepath.Join(venv, "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testenv: %s is not installed in %s; run `make venv` (make test does it): %v", name, venv, err)
	}
	return p
}

// LookPath finds a system executable, failing the test with an install hint when absent.
func LookPath(t testing.TB, name, hint string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/usr/bin/" + name} {
		if full, err := exec.LookPath(p); err == nil {
			return full
		}
	}
	t.Fatalf("testenv: %s not found; %s (make test installs it)", name, hint)
	return ""
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: listen: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a peer started for a test. It is stopped (SIGTERM, then SIGKILL) at cleanup.
type Process struct {
	Cmd  *exec.Cmd
	Name string

	mu     sync.Mutex
	output bytes.Buffer
	done   chan struct{}
	err    error
}

// Output returns what the process printed so far (stdout and stderr).
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

type lockedWriter struct{ p *Process }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.output.Write(b)
}

// Start runs name with args in its own process group and registers a cleanup that stops it.
func Start(t testing.TB, name string, args []string, env []string, dir string) *Process {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Process{Cmd: cmd, Name: filepath.Base(name), done: make(chan struct{})}
	cmd.Stdout = lockedWriter{p}
	cmd.Stderr = lockedWriter{p}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Stop() })
	return p
}

// Stop terminates the process group and waits for it (at most 10 s before SIGKILL).
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Exited reports whether the process has ended, and its error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// WaitHTTP polls url until it answers with a status below 500, the process dies, or timeout.
func (p *Process) WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := WaitHTTP(ctx, url, p.done); err != nil {
		t.Fatalf("testenv: %s did not become ready at %s: %v\n--- output ---\n%s", p.Name, url, err, tail(p.Output(), 4000))
	}
}

// WaitHTTP polls url until it answers with a status below 500. died may be nil.
func WaitHTTP(ctx context.Context, url string, died <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-died:
			return fmt.Errorf("process exited")
		case <-time.After(150 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// Run executes a command to completion and fails the test with its output on error.
func Run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := RunErr(dir, env, name, args...)
	if err != nil {
		t.Fatalf("testenv: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// RunErr executes a command to completion and returns its combined output.
func RunErr(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
