// Package imagerun runs an OCI image without a container engine: it extracts the image's root
// file system into a directory, starts the entrypoint there under chroot as the image's user,
// and smoke-tests the catdog service it serves (/health, /ready, /predict).
//
// Starting a process under chroot needs root. The process shares the host's network namespace,
// so the service is reached on 127.0.0.1.
package imagerun

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Bounds on what Extract accepts.
const (
	MaxRootFSBytes   = 16 << 30
	MaxRootFSEntries = 1_000_000
)

// Errors callers branch on.
var (
	ErrNotRoot     = errors.New("imagerun: starting a process under chroot needs root")
	ErrUnsafePath  = errors.New("imagerun: unsafe path in image")
	ErrTooLarge    = errors.New("imagerun: image root file system exceeds the limits")
	ErrSmokeFailed = errors.New("imagerun: smoke test failed")
)

// Extract writes img's flattened root file system (whiteouts applied) into dir, which must be
// empty or absent. Owners and modes are kept when running as root. Entries that would leave
// dir, including through a symlink, are rejected.
func Extract(ctx context.Context, img v1.Image, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("imagerun: %w", err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	root := os.Geteuid() == 0
	var total int64
	var entries int
	type dirMode struct {
		path string
		mode os.FileMode
	}
	var dirs []dirMode
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			// mutate.Extract closes its tar writer (writing a valid trailer) even when it
			// fails, and reports the failure only through the pipe: read to the pipe's end.
			if _, err := io.Copy(io.Discard, rc); err != nil {
				if strings.Contains(err.Error(), "unsafe") {
					return fmt.Errorf("%w: %v", ErrUnsafePath, err)
				}
				return fmt.Errorf("imagerun: read image: %w", err)
			}
			break
		}
		if err != nil {
			return fmt.Errorf("imagerun: read image: %w", err)
		}
		entries++
		total += h.Size
		if entries > MaxRootFSEntries || total > MaxRootFSBytes {
			return ErrTooLarge
		}
		rel, err := safeRel(h.Name)
		if err != nil {
			return err
		}
		if rel == "" {
			continue
		}
		target := filepath.Join(dir, rel)
		if err := checkParents(dir, rel); err != nil {
			return err
		}
		mode := os.FileMode(h.Mode & 0o777)
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		if h.Mode&0o2000 != 0 {
			mode |= os.ModeSetgid
		}
		if h.Mode&0o4000 != 0 {
			mode |= os.ModeSetuid
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return fmt.Errorf("imagerun: %w", err)
			}
			dirs = append(dirs, dirMode{target, mode})
		case tar.TypeReg:
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
			if err != nil {
				return fmt.Errorf("imagerun: %w", err)
			}
			_, cerr := io.Copy(f, io.LimitReader(tr, h.Size))
			if err := errors.Join(cerr, f.Close(), os.Chmod(target, mode)); err != nil {
				return fmt.Errorf("imagerun: write %s: %w", rel, err)
			}
		case tar.TypeSymlink:
			_ = os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return fmt.Errorf("imagerun: %w", err)
			}
		case tar.TypeLink:
			src, err := safeRel(h.Linkname)
			if err != nil || src == "" {
				return fmt.Errorf("%w: hard link %s -> %s", ErrUnsafePath, h.Name, h.Linkname)
			}
			if err := checkParents(dir, src); err != nil {
				return err
			}
			_ = os.Remove(target)
			if err := os.Link(filepath.Join(dir, src), target); err != nil {
				return fmt.Errorf("imagerun: %w", err)
			}
		default:
			continue // devices, fifos: not needed to run a server
		}
		if root {
			if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
				return fmt.Errorf("imagerun: chown %s: %w", rel, err)
			}
		}
	}
	for _, d := range dirs { // after the files, so read-only directories do not block writes
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("imagerun: %w", err)
		}
	}
	return nil
}

func safeRel(name string) (string, error) {
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q", ErrUnsafePath, name)
		}
	}
	return strings.TrimPrefix(path.Clean("/"+name), "/"), nil
}

// checkParents fails when a parent of rel inside dir is a symlink (writing through it could
// leave dir).
func checkParents(dir, rel string) error {
	parts := strings.Split(rel, "/")
	cur := dir
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("imagerun: %w", err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%w: %s goes through the symlink %s", ErrUnsafePath, rel, cur)
		}
	}
	return nil
}

// Process is an image's entrypoint running under chroot.
type Process struct {
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	cleanup func() error
}

// device is a character device every container runtime provides in /dev.
type device struct {
	name         string
	major, minor uint32
}

// prepareRuntime gives rootfs what a container runtime would: the standard character devices
// in /dev (libtorch seeds its generator from /dev/urandom), /dev/shm, and /proc mounted
// (nosuid, nodev, noexec). The returned cleanup unmounts /proc; it must run before rootfs is
// removed.
func prepareRuntime(rootfs string) (func() error, error) {
	dev := filepath.Join(rootfs, "dev")
	if err := checkParents(rootfs, "dev/x"); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return nil, fmt.Errorf("imagerun: %w", err)
	}
	for _, d := range []device{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		p := filepath.Join(dev, d.name)
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			continue
		}
		_ = os.Remove(p)
		if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, int(d.major<<8|d.minor)); err != nil {
			return nil, fmt.Errorf("imagerun: mknod %s: %w", p, err)
		}
		if err := os.Chmod(p, 0o666); err != nil {
			return nil, fmt.Errorf("imagerun: %w", err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		p := filepath.Join(dev, name)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.Symlink(target, p); err != nil {
			return nil, fmt.Errorf("imagerun: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dev, "shm"), 0o755); err != nil {
		return nil, fmt.Errorf("imagerun: %w", err)
	}
	if err := os.Chmod(filepath.Join(dev, "shm"), 0o777|os.ModeSticky); err != nil {
		return nil, fmt.Errorf("imagerun: %w", err)
	}
	proc := filepath.Join(rootfs, "proc")
	if err := checkParents(rootfs, "proc/x"); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(proc, 0o555); err != nil {
		return nil, fmt.Errorf("imagerun: %w", err)
	}
	if err := syscall.Mount("proc", proc, "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("imagerun: mount /proc in %s: %w", rootfs, err)
	}
	return func() error {
		if err := syscall.Unmount(proc, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("imagerun: unmount %s: %w", proc, err)
		}
		return nil
	}, nil
}

// StartOptions adjust how the entrypoint starts.
type StartOptions struct {
	// Args replace the image's Cmd (the arguments after the entrypoint) when not nil.
	Args []string
	// Env entries are appended to the image's environment.
	Env []string
	// Stdout and Stderr receive the process output; nil discards it.
	Stdout, Stderr io.Writer
}

// Start runs cfg's entrypoint inside rootfs under chroot, as cfg.User (numeric uid[:gid]),
// in cfg.WorkingDir, with cfg.Env.
func Start(rootfs string, cfg v1.Config, opts StartOptions) (*Process, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	argv := append([]string{}, cfg.Entrypoint...)
	if opts.Args != nil {
		argv = append(argv, opts.Args...)
	} else {
		argv = append(argv, cfg.Cmd...)
	}
	if len(argv) == 0 {
		return nil, errors.New("imagerun: image has no entrypoint or command")
	}
	uid, gid, err := parseUser(cfg.User)
	if err != nil {
		return nil, err
	}
	wd := cfg.WorkingDir
	if wd == "" {
		wd = "/"
	}
	cmd := &exec.Cmd{
		Path:   argv[0], // resolved inside the chroot by execve
		Args:   argv,
		Env:    append(append([]string{}, cfg.Env...), opts.Env...),
		Dir:    wd, // applied after chroot
		Stdout: opts.Stdout,
		Stderr: opts.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Chroot:     rootfs,
			Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}},
			Setpgid:    true,
		},
	}
	cleanup, err := prepareRuntime(rootfs)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("imagerun: start %s in %s: %w", argv[0], rootfs, err), cleanup())
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), cleanup: cleanup}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func parseUser(u string) (uint32, uint32, error) {
	if u == "" {
		return 0, 0, nil
	}
	us, gs, hasGroup := strings.Cut(u, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("imagerun: user %q is not numeric", u)
	}
	gid := uid
	if hasGroup {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("imagerun: group in %q is not numeric", u)
		}
	}
	return uint32(uid), uint32(gid), nil
}

// Done is closed when the process exits.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns the exit error once Done is closed.
func (p *Process) Err() error { return p.err }

// Stop sends SIGTERM to the process group, then SIGKILL after grace, and waits. It does not
// unmount /proc; Close does both.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return p.err
}

// Close stops the process (see Stop) and undoes what Start mounted. Call it before removing
// the root file system.
func (p *Process) Close() error {
	err := p.Stop(10 * time.Second)
	if p.cleanup != nil {
		cerr := p.cleanup()
		p.cleanup = nil
		return cerr
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return nil // a server stopped by a signal
	}
	return err
}

// Prediction is the part of POST /predict's answer the smoke test checks.
type Prediction struct {
	Label         string             `json:"label"`
	Confidence    float64            `json:"confidence"`
	Probabilities map[string]float64 `json:"probabilities"`
}

// SmokeResult is what a passing smoke test saw.
type SmokeResult struct {
	Prediction Prediction
	ReadyAfter time.Duration
}

// Smoke waits (up to ctx's deadline) until baseURL answers GET /health and GET /ready with 200,
// unless died closes first, then posts sample (a JPEG or PNG) to /predict and checks that the
// answer is a prediction with probabilities summing to 1. Failures wrap ErrSmokeFailed.
func Smoke(ctx context.Context, baseURL string, sample []byte, died <-chan struct{}) (*SmokeResult, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	start := time.Now()
	for _, ep := range []string{"/health", "/ready"} {
		for {
			status, _, err := do(ctx, client, http.MethodGet, baseURL+ep, nil, "")
			if err == nil && status == http.StatusOK {
				break
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: GET %s: status %d, %v (%v)", ErrSmokeFailed, ep, status, err, ctx.Err())
			case <-died:
				return nil, fmt.Errorf("%w: the server exited before %s answered", ErrSmokeFailed, ep)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	res := &SmokeResult{ReadyAfter: time.Since(start)}
	ctype := http.DetectContentType(sample)
	status, body, err := do(ctx, client, http.MethodPost, baseURL+"/predict", sample, ctype)
	if err != nil {
		return nil, fmt.Errorf("%w: POST /predict: %v", ErrSmokeFailed, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("%w: POST /predict: status %d: %s", ErrSmokeFailed, status, truncate(body, 512))
	}
	if err := json.Unmarshal(body, &res.Prediction); err != nil {
		return nil, fmt.Errorf("%w: POST /predict: %v: %s", ErrSmokeFailed, err, truncate(body, 512))
	}
	p := res.Prediction
	sum := 0.0
	for _, v := range p.Probabilities {
		sum += v
	}
	if p.Label == "" || len(p.Probabilities) < 2 || math.Abs(sum-1) > 1e-3 {
		return nil, fmt.Errorf("%w: POST /predict answered %s", ErrSmokeFailed, truncate(body, 512))
	}
	if _, ok := p.Probabilities[p.Label]; !ok {
		return nil, fmt.Errorf("%w: label %q has no probability: %s", ErrSmokeFailed, p.Label, truncate(body, 512))
	}
	return res, nil
}

func do(ctx context.Context, c *http.Client, method, url string, body []byte, ctype string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
