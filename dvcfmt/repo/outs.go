package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/catdog-mlops/catdog/dvcfmt"
)

// Output is one tracked output of a .dvc file, resolved against the workspace.
type Output struct {
	DVCFile string     // absolute path of the .dvc file
	Abs     string     // absolute workspace path of the output
	Name    string     // path relative to the repository root, slash-separated
	Out     dvcfmt.Out // as written in the .dvc file
}

// Outputs returns the outputs of the .dvc files named by targets (a .dvc file, or a tracked
// path, or a directory holding .dvc files), or of every .dvc file in the workspace when
// targets is empty. Outputs are sorted by name.
func (r *Repo) Outputs(ctx context.Context, targets []string) ([]Output, error) {
	var dvcFiles []string
	if len(targets) == 0 {
		var err error
		if dvcFiles, err = r.findDVCFiles(ctx, r.Root); err != nil {
			return nil, err
		}
	}
	for _, t := range targets {
		abs, err := filepath.Abs(t)
		if err != nil {
			return nil, err
		}
		abs = strings.TrimSuffix(abs, string(filepath.Separator))
		switch {
		case strings.HasSuffix(abs, ".dvc") && isFile(abs):
			dvcFiles = append(dvcFiles, abs)
		case isFile(abs + ".dvc"):
			dvcFiles = append(dvcFiles, abs+".dvc")
		case isDir(abs):
			found, err := r.findDVCFiles(ctx, abs)
			if err != nil {
				return nil, err
			}
			dvcFiles = append(dvcFiles, found...)
		default:
			return nil, fmt.Errorf("%s: no .dvc file tracks it", t)
		}
	}
	var outs []Output
	for _, p := range dvcFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		f, err := dvcfmt.ParseDVCFile(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.rel(p), err)
		}
		dir := filepath.Dir(p)
		if f.WDir != "" {
			dir = filepath.Join(dir, filepath.FromSlash(f.WDir))
		}
		for _, o := range f.Outs {
			abs := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(o.Path, "/")))
			name := r.rel(abs)
			if name == "." || strings.HasPrefix(name, "../") {
				return nil, fmt.Errorf("%s: output %q leaves the repository", r.rel(p), o.Path)
			}
			outs = append(outs, Output{DVCFile: p, Abs: abs, Name: name, Out: o})
		}
	}
	sort.Slice(outs, func(i, j int) bool { return outs[i].Name < outs[j].Name })
	return outs, nil
}

func isFile(p string) bool { fi, err := os.Stat(p); return err == nil && fi.Mode().IsRegular() }
func isDir(p string) bool  { fi, err := os.Stat(p); return err == nil && fi.IsDir() }

// findDVCFiles lists *.dvc files under dir, skipping .git/.dvc, sub-repositories and
// .dvcignore'd directories (root-level rules).
func (r *Repo) findDVCFiles(ctx context.Context, dir string) ([]string, error) {
	ig, err := r.ignoreFor(r.Root)
	if err != nil {
		return nil, err
	}
	var found []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p == dir {
				return nil
			}
			if builtinIgnored(d.Name()) || ig.Ignored(r.rel(p), true) || isDir(filepath.Join(p, DvcDir)) || trackedBySibling(p) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(d.Name(), ".dvc") && d.Type().IsRegular() && !ig.Ignored(r.rel(p), false) {
			found = append(found, p)
		}
		return nil
	})
	return found, err
}

// trackedBySibling reports whether dir is the output of the .dvc file next to it (dir.dvc, as
// `dvc add dir` writes): dvc refuses .dvc files inside an output, so the walk need not read
// the (often huge) tracked tree.
func trackedBySibling(dir string) bool {
	b, err := os.ReadFile(dir + ".dvc")
	if err != nil || len(b) > 1<<20 {
		return false
	}
	f, err := dvcfmt.ParseDVCFile(b)
	if err != nil {
		return false
	}
	for _, o := range f.Outs {
		if filepath.Clean(filepath.FromSlash(o.Path)) == filepath.Base(dir) {
			return true
		}
	}
	return false
}

// loadDir returns the entries of a directory output's .dir object from the cache.
func (r *Repo) loadDir(o dvcfmt.Out) ([]dvcfmt.DirEntry, error) {
	b, err := r.Cache.ReadAll(o.MD5, o.Legacy(), dvcfmt.MaxDirBytes)
	if err != nil {
		return nil, err
	}
	if err := r.Cache.Check(o.MD5, o.Legacy()); err != nil {
		return nil, err
	}
	return dvcfmt.ParseDir(b)
}

// isNotFound reports a missing file or cache object.
func isNotFound(err error) bool { return errors.Is(err, fs.ErrNotExist) }
