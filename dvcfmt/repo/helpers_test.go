package repo_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/dvcfmt/repo"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

var ctx = context.Background()

// makeTree writes the awkward tree the interop tests share: nested folders, empty files and
// an empty folder, spaces and non-ASCII names, names that sort differently by full path than
// depth-first, an executable and a .dvcignore'd file.
func makeTree(t *testing.T, root string) {
	t.Helper()
	files := map[string]string{
		"data/foo":              "foo",
		"data/empty.txt":        "",
		"data/sub/x y.txt":      "x",
		"data/sub-dir/q":        "q",
		"data/é.txt":            "z",
		"data/日本/猫 🐱.txt":       "neko",
		"data/deep/a/b/c/d.bin": "\x00\x01\x02binary",
		"data/crlf.txt":         "line1\r\nline2\r\n",
		"data/ignored.tmp":      "ignored by .dvcignore",
		"data/sub/also.tmp":     "ignored too",
		"data/quote\"and'.txt":  "q",
		"data/back\\slash.txt":  "b",
		"data/a-b.txt":          "y",
		"model.bin":             strings.Repeat("weights", 50000),
	}
	for p, body := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "data/empty-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

const dvcignoreExtra = "*.tmp\n"

// newGitRepo makes a git repository; with dvc != nil it runs the real `dvc init`, else
// catdog's Init.
func newGitRepo(t *testing.T, dvc *testenv.DVC) string {
	t.Helper()
	dir := t.TempDir()
	testenv.GitInit(t, dir)
	if dvc != nil {
		dvc.Run(t, dir, "init", "-q")
	} else if _, err := repo.Init(dir, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(dir, ".dvcignore"), dvcignoreExtra)
	return dir
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	bin := testenv.LookPath(t, "git", "apt-get install git")
	env := []string{"GIT_AUTHOR_NAME=catdog", "GIT_AUTHOR_EMAIL=c@example.invalid",
		"GIT_COMMITTER_NAME=catdog", "GIT_COMMITTER_EMAIL=c@example.invalid"}
	return testenv.Run(t, dir, env, bin, args...)
}

// commitAndClone commits everything git sees in src and returns a fresh clone.
func commitAndClone(t *testing.T, src string) string {
	t.Helper()
	git(t, src, "add", "-A")
	git(t, src, "commit", "-q", "-m", "data")
	dst := filepath.Join(t.TempDir(), "clone")
	git(t, filepath.Dir(dst), "clone", "-q", src, dst)
	return dst
}

// readTree returns relpath -> content for every regular file under dir (symlinks followed).
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails unless want and got hold the same files with the same bytes, ignoring
// paths for which skip returns true.
func sameTree(t *testing.T, want, got string, skip func(string) bool) {
	t.Helper()
	w, g := readTree(t, want), readTree(t, got)
	var diffs []string
	for p, b := range w {
		if skip != nil && skip(p) {
			continue
		}
		if gb, ok := g[p]; !ok {
			diffs = append(diffs, "missing "+p)
		} else if gb != b {
			diffs = append(diffs, "differs "+p)
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok && (skip == nil || !skip(p)) {
			diffs = append(diffs, "extra "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = diffs[:20]
		}
		t.Fatalf("trees %s and %s differ:\n%s", want, got, strings.Join(diffs, "\n"))
	}
}

func isTmp(p string) bool { return strings.HasSuffix(p, ".tmp") }

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustOpen(t *testing.T, dir string) *repo.Repo {
	t.Helper()
	r, err := repo.Open(dir, repo.WithJobs(4))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// upToDate asserts what real dvc says about a repo's workspace and remote.
func upToDate(t *testing.T, dvc *testenv.DVC, dir string) {
	t.Helper()
	if out := dvc.Run(t, dir, "status"); !strings.Contains(out, "Data and pipelines are up to date.") {
		t.Fatalf("dvc status in %s:\n%s", dir, out)
	}
	if out := dvc.Run(t, dir, "status", "-c"); !strings.Contains(out, "are in sync.") {
		t.Fatalf("dvc status -c in %s:\n%s", dir, out)
	}
}

func md5hex(s string) string {
	oid, _, _ := dvcfmtHash(s)
	return oid
}
