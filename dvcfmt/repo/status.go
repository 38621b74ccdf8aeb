package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"

	"github.com/catdog-mlops/catdog/dvcfmt"
)

// Workspace statuses of an output, worded as dvc prints them.
const (
	StatusModified   = "modified"
	StatusDeleted    = "deleted"
	StatusNotInCache = "not in cache"
)

// OutStatus is one changed output: its .dvc file (repository-relative), the output path as
// written in that file, and what changed.
type OutStatus struct {
	DVCFile string
	Path    string
	Name    string // repository-relative output path
	Status  string
}

// Status compares the workspace with the .dvc files and the cache, like `dvc status`:
// an output is deleted (absent), modified (content differs) or not in cache (matches, but
// some object is missing from the cache). Unchanged outputs are not listed.
func (r *Repo) Status(ctx context.Context, targets []string) ([]OutStatus, error) {
	outs, err := r.Outputs(ctx, targets)
	if err != nil {
		return nil, err
	}
	st := r.openState()
	defer func() { _ = st.save() }()
	var res []OutStatus
	for _, o := range outs {
		s, err := r.outStatus(ctx, o, st)
		if err != nil {
			return nil, err
		}
		if s != "" {
			res = append(res, OutStatus{DVCFile: r.rel(o.DVCFile), Path: o.Out.Path, Name: o.Name, Status: s})
		}
	}
	return res, nil
}

func (r *Repo) outStatus(ctx context.Context, o Output, st *state) (string, error) {
	fi, err := os.Stat(o.Abs)
	if err != nil {
		if os.IsNotExist(err) {
			return StatusDeleted, nil
		}
		return "", err
	}
	legacy := o.Out.Legacy()
	if o.Out.MD5 == "" {
		return StatusModified, nil
	}
	if o.Out.IsDir() != fi.IsDir() {
		return StatusModified, nil
	}
	if !fi.IsDir() {
		oids, err := r.hashFiles(ctx, []wsFile{{rel: filepath.Base(o.Abs), abs: o.Abs, fi: fi}}, legacy, hashOnly, st, "Hashing "+o.Name)
		if err != nil {
			return "", err
		}
		if oids[0] != o.Out.MD5 {
			return StatusModified, nil
		}
		if o.Out.UsesCache() && !r.Cache.Has(o.Out.MD5, legacy) {
			return StatusNotInCache, nil
		}
		return "", nil
	}
	oid, entries, err := r.treeEntries(ctx, o.Abs, legacy, st)
	if err != nil {
		return "", err
	}
	if oid != o.Out.MD5 {
		return StatusModified, nil
	}
	if !o.Out.UsesCache() {
		return "", nil
	}
	// The workspace hashes to the recorded .dir oid, so its entries are the .dir object's: only
	// the presence of that object and of every file object in the cache is left to check.
	checker := r.Cache.NewChecker()
	defer checker.Close()
	if !checker.Has(o.Out.MD5, legacy) {
		return StatusNotInCache, nil
	}
	var missing atomic.Bool
	errMissing := errors.New("missing")
	_ = runParallel(ctx, len(entries), 4*runtime.NumCPU(), nil, func(i int) error {
		if !checker.Has(entries[i].MD5, legacy) {
			missing.Store(true)
			return errMissing // stop early
		}
		return nil
	})
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if missing.Load() {
		return StatusNotInCache, nil
	}
	return "", nil
}

// treeEntries returns the .dir oid and the entries a directory would get.
func (r *Repo) treeEntries(ctx context.Context, abs string, legacy bool, st *state) (oid string, entries []dvcfmt.DirEntry, err error) {
	files, err := r.walkTree(ctx, abs)
	if err != nil {
		return "", nil, err
	}
	oids, err := r.hashFiles(ctx, files, legacy, hashOnly, st, "Hashing "+r.rel(abs))
	if err != nil {
		return "", nil, err
	}
	entries = make([]dvcfmt.DirEntry, len(files))
	for i, f := range files {
		entries[i] = dvcfmt.DirEntry{MD5: oids[i], RelPath: f.rel}
	}
	return dvcfmt.DirOID(dvcfmt.EncodeDir(entries)), entries, nil
}
