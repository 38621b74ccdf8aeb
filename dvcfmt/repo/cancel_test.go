package repo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/catdog-mlops/catdog/dvcfmt/repo"
	"github.com/catdog-mlops/catdog/internal/progress"
)

// cancelAfter is a progress callback that cancels the context once an operation has n
// completed units: the equivalent of Ctrl-C in the middle of a long step.
func cancelAfter(n int64, cancel context.CancelFunc) progress.Func {
	return func(u progress.Update) {
		if u.Done >= n {
			cancel()
		}
	}
}

// TestCancelStopsLongSteps: add, status and checkout of many files stop with
// context.Canceled when the caller's context is cancelled part-way, and leave a repository
// that a later, uncancelled run completes.
func TestCancelStopsLongSteps(t *testing.T) {
	dir := newGitRepo(t, nil)
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 400 {
		if err := os.WriteFile(filepath.Join(data, fmt.Sprintf("f%03d", i)), []byte(fmt.Sprint("content ", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		prep func(t *testing.T)
		run  func(ctx context.Context, r *repo.Repo) error
	}{
		{"add", func(*testing.T) {}, func(ctx context.Context, r *repo.Repo) error {
			_, err := r.Add(ctx, []string{data})
			return err
		}},
		{"status", func(*testing.T) {}, func(ctx context.Context, r *repo.Repo) error {
			_, err := r.Status(ctx, nil)
			return err
		}},
		{"checkout", func(t *testing.T) {
			if err := os.RemoveAll(data); err != nil {
				t.Fatal(err)
			}
		}, func(ctx context.Context, r *repo.Repo) error {
			_, err := r.Checkout(ctx, nil, false)
			return err
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.prep(t)
			cctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r, err := repo.Open(dir, repo.WithJobs(2), repo.WithProgress(cancelAfter(5, cancel)))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.run(cctx, r); !errors.Is(err, context.Canceled) {
				t.Fatalf("%s with a context cancelled part-way: err = %v, want context.Canceled", st.name, err)
			}
			if err := st.run(context.Background(), mustOpen(t, dir)); err != nil {
				t.Fatalf("%s after the cancelled run: %v", st.name, err)
			}
		})
	}
	if n, _ := os.ReadDir(data); len(n) != 400 {
		t.Errorf("after the checkout the workspace holds %d files, want 400", len(n))
	}
}
