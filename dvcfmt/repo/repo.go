// Package repo implements DVC's data-versioning workflows on a repository's workspace:
// init, add, status, checkout, push, fetch, pull and cloud status, writing the same files,
// cache layout and remote layout as dvc 3 so that catdog and the real dvc can be mixed on
// one repository and one remote.
//
// A Repo is safe for use by one command at a time; workflows that modify the repository
// take dvc's own repository lock (flock on .dvc/tmp/lock) for their duration.
package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/catdog-mlops/catdog/dvcfmt"
	"github.com/catdog-mlops/catdog/dvcfmt/cache"

	"github.com/catdog-mlops/catdog/internal/atomicfile"
	"github.com/catdog-mlops/catdog/internal/progress"
)

// DvcDir is the name of the directory that marks a DVC repository root.
const DvcDir = ".dvc"

// ErrNotRepo is returned when no .dvc directory is found at or above a path.
var ErrNotRepo = errors.New("not a DVC repository (no .dvc directory found)")

// ErrLocked is returned when another process holds the repository lock.
var ErrLocked = errors.New("repository is locked by another process (dvc or catdog)")

// Repo is a DVC repository on local disk.
type Repo struct {
	Root  string     // absolute workspace root
	Cache cache.Path // cache directory (default <root>/.dvc/cache)

	cfg *dvcfmt.Config // merged .dvc/config + .dvc/config.local
	scm bool           // a git repository holds Root: .gitignore files are maintained
	o   options
}

type options struct {
	jobs     int
	progress progress.Func
	logf     func(format string, args ...any)
}

// Option configures Open, Find and Init.
type Option func(*options)

// WithJobs sets how many files are hashed and copied at once. The default is
// runtime.NumCPU() (dvc's default is at most 4).
func WithJobs(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.jobs = n
		}
	}
}

// WithProgress reports long operations (hashing, linking, transfers) to f as data: one Op a
// step ("Pushing", "Linking data"), counted in files. f is called from several goroutines. The
// default reports nothing.
func WithProgress(f progress.Func) Option { return func(o *options) { o.progress = f } }

// WithLogf receives user-facing notes (warnings, hints). The default discards them.
func WithLogf(f func(format string, args ...any)) Option { return func(o *options) { o.logf = f } }

func makeOptions(opts []Option) options {
	o := options{jobs: runtime.NumCPU(), logf: func(string, ...any) {}}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Find opens the repository holding dir: the nearest ancestor of dir (or dir itself) that
// contains a .dvc directory.
func Find(dir string, opts ...Option) (*Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for d := abs; ; {
		if fi, err := os.Stat(filepath.Join(d, DvcDir)); err == nil && fi.IsDir() {
			return Open(d, opts...)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return nil, fmt.Errorf("%s: %w", abs, ErrNotRepo)
		}
		d = parent
	}
}

// Open opens the repository rooted at root.
func Open(root string, opts ...Option) (*Repo, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(filepath.Join(abs, DvcDir)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s: %w", abs, ErrNotRepo)
	}
	r := &Repo{Root: abs, o: makeOptions(opts)}
	if err := r.loadConfig(); err != nil {
		return nil, err
	}
	r.scm = findGit(abs)
	if v, ok := r.cfg.Get("core", "no_scm"); ok && parseBool(v) {
		r.scm = false
	}
	return r, nil
}

func findGit(dir string) bool {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			return true
		}
		parent := filepath.Dir(d)
		if parent == d {
			return false
		}
		d = parent
	}
}

func parseBool(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "on", "1":
		return true
	}
	return false
}

// configPath returns the repository config file (local=false) or config.local (local=true).
func (r *Repo) configPath(local bool) string {
	if local {
		return filepath.Join(r.Root, DvcDir, "config.local")
	}
	return filepath.Join(r.Root, DvcDir, "config")
}

// ReadConfig parses one config level (missing file = empty config).
func (r *Repo) ReadConfig(local bool) (*dvcfmt.Config, error) {
	b, err := os.ReadFile(r.configPath(local))
	if errors.Is(err, fs.ErrNotExist) {
		return &dvcfmt.Config{}, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := dvcfmt.ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.configPath(local), err)
	}
	return c, nil
}

// WriteConfig writes one config level atomically and reloads the merged config.
func (r *Repo) WriteConfig(local bool, c *dvcfmt.Config) error {
	if err := writeFileAtomic(r.configPath(local), c.Encode(), 0o644); err != nil {
		return err
	}
	return r.loadConfig()
}

// Config returns the merged configuration (repo level, then config.local).
func (r *Repo) Config() *dvcfmt.Config { return r.cfg }

func (r *Repo) loadConfig() error {
	repoCfg, err := r.ReadConfig(false)
	if err != nil {
		return err
	}
	localCfg, err := r.ReadConfig(true)
	if err != nil {
		return err
	}
	r.cfg = dvcfmt.Merge(repoCfg, localCfg)
	r.Cache = cache.Path(filepath.Join(r.Root, DvcDir, "cache"))
	if d, ok := r.cfg.Get("cache", "dir"); ok && d != "" {
		if !filepath.IsAbs(d) {
			d = filepath.Join(r.Root, DvcDir, d) // relative to the config file's directory
		}
		r.Cache = cache.Path(filepath.Clean(d))
	}
	return nil
}

// linkTypes returns cache.type as a list (default reflink, copy).
func (r *Repo) linkTypes() []string {
	v, ok := r.cfg.Get("cache", "type")
	if !ok || strings.TrimSpace(v) == "" {
		return []string{"reflink", "copy"}
	}
	var out []string
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// InitOptions configures Init.
type InitOptions struct {
	NoSCM bool // write core.no_scm = True (no git repository)
	Force bool // re-initialise an existing .dvc directory
}

// ErrAlreadyInit is returned by Init when .dvc already exists.
var ErrAlreadyInit = errors.New(".dvc already exists; use force to overwrite")

// Init creates a DVC repository in dir exactly as `dvc init` lays it out.
func Init(dir string, io InitOptions, opts ...Option) (*Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	dvcDir := filepath.Join(abs, DvcDir)
	if _, err := os.Stat(dvcDir); err == nil {
		if !io.Force {
			return nil, fmt.Errorf("%s: %w", dvcDir, ErrAlreadyInit)
		}
		if err := os.RemoveAll(dvcDir); err != nil {
			return nil, err
		}
	}
	if !io.NoSCM && !findGit(abs) {
		return nil, fmt.Errorf("%s is not tracked by any supported SCM tool (e.g. Git); use no-scm to initialise anyway", abs)
	}
	if err := os.MkdirAll(filepath.Join(dvcDir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	config := []byte{}
	if io.NoSCM {
		config = []byte("[core]\n    no_scm = True\n")
	}
	files := []struct {
		path string
		data []byte
	}{
		{filepath.Join(dvcDir, "config"), config},
		{filepath.Join(dvcDir, ".gitignore"), []byte("/config.local\n/tmp\n/cache\n")},
	}
	if _, err := os.Stat(filepath.Join(abs, dvcfmt.IgnoreFile)); errors.Is(err, fs.ErrNotExist) {
		files = append(files, struct {
			path string
			data []byte
		}{filepath.Join(abs, dvcfmt.IgnoreFile), []byte("# Add patterns of files dvc should ignore, which could improve\n# the performance. Learn more at\n# https://dvc.org/doc/user-guide/dvcignore\n")})
	}
	for _, f := range files {
		if err := atomicfile.WriteFile(f.path, f.data, 0o644); err != nil {
			return nil, err
		}
	}
	return Open(abs, opts...)
}

// lock takes dvc's repository lock (zc.lockfile: an exclusive flock on .dvc/tmp/lock holding
// " <pid>\n"), retrying for up to wait.
func (r *Repo) lock(ctx context.Context, wait time.Duration) (unlock func(), err error) {
	dir := filepath.Join(r.Root, DvcDir, "tmp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("repo lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, ErrLocked
			}
			return nil, fmt.Errorf("repo lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf(" %d\n", os.Getpid())), 0)
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// writeFileAtomic writes one of the repository's files (.dvc files, config) atomically.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return atomicfile.WriteFile(path, data, perm)
}

// rel returns abs relative to the repository root, slash-separated.
func (r *Repo) rel(abs string) string {
	rel, err := filepath.Rel(r.Root, abs)
	if err != nil {
		return abs
	}
	return filepath.ToSlash(rel)
}
