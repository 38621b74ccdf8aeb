package testenv

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// DVC runs the real dvc CLI from the project virtualenv with its state databases in a
// per-test directory (DVC_SITE_CACHE_DIR) and analytics off.
type DVC struct {
	Bin string
	Env []string
}

// NewDVC locates dvc in the project venv (failing with an install hint when absent).
func NewDVC(t testing.TB) *DVC {
	t.Helper()
	return &DVC{
		Bin: VenvBin(t, "dvc"),
		Env: []string{
			"DVC_SITE_CACHE_DIR=" + t.TempDir(),
			"DVC_NO_ANALYTICS=1",
			"DVC_NOSCM=",
			"GIT_AUTHOR_NAME=catdog", "GIT_AUTHOR_EMAIL=catdog@example.invalid",
			"GIT_COMMITTER_NAME=catdog", "GIT_COMMITTER_EMAIL=catdog@example.invalid",
		},
	}
}

// Run runs `dvc args...` in dir and fails the test on a non-zero exit.
func (d *DVC) Run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return Run(t, dir, d.Env, d.Bin, args...)
}

// RunErr runs `dvc args...` in dir and returns its combined output and error.
func (d *DVC) RunErr(dir string, args ...string) (string, error) {
	return RunErr(dir, d.Env, d.Bin, args...)
}

// GitInit makes dir a git repository (dvc add then maintains .gitignore files).
func GitInit(t testing.TB, dir string) {
	t.Helper()
	git := LookPath(t, "git", "apt-get install git")
	Run(t, dir, nil, git, "init", "-q", ".")
}

// CopyTree copies the regular files and directories under src to dst (which may exist),
// keeping file modes; used to make writable copies of read-only shared data.
func CopyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm()|0o200)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("testenv: copy %s to %s: %v", src, dst, err)
	}
}
