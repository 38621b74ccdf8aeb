package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/catdog-mlops/catdog/dvcfmt"
)

// AddResult describes one tracked path after Add.
type AddResult struct {
	DVCFile string     // absolute path of the written .dvc file
	Out     dvcfmt.Out // its output entry
}

// lockWait is how long workflows wait for a repository lock held by someone else.
const lockWait = 10 * time.Second

// Add tracks each path like `dvc add`: hashes it (a directory on all cores), copies its
// objects into the cache, writes <path>.dvc next to it and, in a git repository, adds
// "/<name>" to the .gitignore beside it.
func (r *Repo) Add(ctx context.Context, paths []string) ([]AddResult, error) {
	unlock, err := r.lock(ctx, lockWait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st := r.openState()
	defer func() { _ = st.save() }()
	var results []AddResult
	for _, p := range paths {
		res, err := r.addOne(ctx, p, st)
		if err != nil {
			return results, fmt.Errorf("add %s: %w", p, err)
		}
		results = append(results, res)
	}
	return results, nil
}

func (r *Repo) addOne(ctx context.Context, path string, st *state) (AddResult, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return AddResult{}, err
	}
	abs = strings.TrimSuffix(abs, string(filepath.Separator))
	rel := r.rel(abs)
	if rel == "." || strings.HasPrefix(rel, "../") {
		return AddResult{}, fmt.Errorf("%s is outside the repository %s", abs, r.Root)
	}
	for _, seg := range strings.Split(rel, "/") {
		if builtinIgnored(seg) {
			return AddResult{}, fmt.Errorf("cannot track %s: it is inside %s", rel, seg)
		}
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return AddResult{}, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if fi, err = os.Stat(abs); err != nil {
			return AddResult{}, err
		}
	}
	ig, err := r.ignoreFor(filepath.Dir(abs))
	if err != nil {
		return AddResult{}, err
	}
	if ig.Ignored(rel, fi.IsDir()) {
		return AddResult{}, fmt.Errorf("%s is ignored by .dvcignore", rel)
	}
	dvcPath := abs + ".dvc"
	var prev *dvcfmt.DVCFile
	if b, err := os.ReadFile(dvcPath); err == nil {
		if prev, err = dvcfmt.ParseDVCFile(b); err != nil {
			return AddResult{}, fmt.Errorf("%s: %w", dvcPath, err)
		}
	}
	out := dvcfmt.Out{Hash: dvcfmt.HashMD5, Path: filepath.Base(abs)}
	if prev != nil && len(prev.Outs) == 1 {
		p := prev.Outs[0]
		out.Desc, out.Type, out.Cache, out.Persist, out.Remote, out.Push = p.Desc, p.Type, p.Cache, p.Persist, p.Remote, p.Push
	}
	if fi.IsDir() {
		files, err := r.walkTree(ctx, abs)
		if err != nil {
			return AddResult{}, err
		}
		oids, err := r.hashFiles(ctx, files, false, hashToCache, st, "Adding "+rel)
		if err != nil {
			return AddResult{}, err
		}
		entries := make([]dvcfmt.DirEntry, len(files))
		for i, f := range files {
			entries[i] = dvcfmt.DirEntry{MD5: oids[i], RelPath: f.rel}
			out.Size += f.fi.Size()
		}
		body := dvcfmt.EncodeDir(entries)
		out.MD5 = dvcfmt.DirOID(body)
		out.NFiles = int64(len(files))
		if err := r.Cache.Put(ctx, out.MD5, false, strings.NewReader(string(body))); err != nil {
			return AddResult{}, err
		}
		if len(files) == 0 {
			r.o.logf("WARNING: '%s' is empty.", rel)
		}
		if err := r.relinkAfterAdd(files, oids, st); err != nil {
			return AddResult{}, err
		}
	} else {
		f := wsFile{rel: filepath.Base(abs), abs: abs, fi: fi}
		oids, err := r.hashFiles(ctx, []wsFile{f}, false, hashToCache, st, "Adding "+rel)
		if err != nil {
			return AddResult{}, err
		}
		out.MD5, out.Size, out.IsExec = oids[0], fi.Size(), fi.Mode().Perm()&0o111 != 0
		if err := r.relinkAfterAdd([]wsFile{f}, oids, st); err != nil {
			return AddResult{}, err
		}
	}
	file := &dvcfmt.DVCFile{Outs: []dvcfmt.Out{out}}
	if prev != nil {
		file.Desc, file.Frozen = prev.Desc, prev.Frozen
	}
	if err := writeFileAtomic(dvcPath, file.Encode(), 0o644); err != nil {
		return AddResult{}, err
	}
	if r.scm {
		if err := addToGitignore(filepath.Dir(abs), filepath.Base(abs)); err != nil {
			return AddResult{}, err
		}
	}
	return AddResult{DVCFile: dvcPath, Out: out}, nil
}

func addToGitignore(dir, name string) error {
	path := filepath.Join(dir, ".gitignore")
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	updated, changed := dvcfmt.AddGitignoreEntry(old, dvcfmt.GitignoreEntry(name))
	if !changed {
		return nil
	}
	return writeFileAtomic(path, updated, 0o644)
}

// relinkAfterAdd replaces workspace files by links to their cache objects when the first
// configured link type is hardlink or symlink (with reflink/copy the workspace copy stays).
func (r *Repo) relinkAfterAdd(files []wsFile, oids []string, st *state) error {
	types := r.linkTypes()
	if len(types) == 0 || (types[0] != "hardlink" && types[0] != "symlink") {
		return nil
	}
	for i, f := range files {
		if f.fi.Size() == 0 && types[0] == "hardlink" {
			continue // dvc keeps empty files as plain files
		}
		if err := r.link(f.abs, oids[i], false, f.fi.Mode().Perm()&0o111 != 0, types); err != nil {
			return err
		}
		if fi, err := os.Stat(f.abs); err == nil {
			st.put(f.abs, fi, oids[i])
		}
	}
	return nil
}
