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
	h, err := r.hashPath(ctx, abs, fi, hashToCache, st, "Adding "+rel)
	if err != nil {
		return AddResult{}, err
	}
	out.MD5, out.Size, out.NFiles, out.IsExec = h.md5, h.size, h.nfiles, h.isExec
	if fi.IsDir() && len(h.files) == 0 {
		r.o.logf("WARNING: '%s' is empty.", rel)
	}
	if err := r.relinkAfterAdd(h.files, h.oids, st); err != nil {
		return AddResult{}, err
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

// hashed is what hashing a workspace file or directory gave.
type hashed struct {
	md5          string // file md5, or the .dir oid
	size, nfiles int64  // nfiles: directories only
	isExec       bool   // files only
	files        []wsFile
	oids         []string
}

// hashPath hashes a file or a directory (fi is its Stat) as dvc does; with hashToCache its
// objects, a directory's .dir object included, are made sure to be in the cache.
func (r *Repo) hashPath(ctx context.Context, abs string, fi fs.FileInfo, mode hashMode, st *state, desc string) (hashed, error) {
	if !fi.IsDir() {
		f := wsFile{rel: filepath.Base(abs), abs: abs, fi: fi}
		oids, err := r.hashFiles(ctx, []wsFile{f}, false, mode, st, desc)
		if err != nil {
			return hashed{}, err
		}
		return hashed{md5: oids[0], size: fi.Size(), isExec: fi.Mode().Perm()&0o111 != 0, files: []wsFile{f}, oids: oids}, nil
	}
	files, err := r.walkTree(ctx, abs)
	if err != nil {
		return hashed{}, err
	}
	oids, err := r.hashFiles(ctx, files, false, mode, st, desc)
	if err != nil {
		return hashed{}, err
	}
	h := hashed{nfiles: int64(len(files)), files: files, oids: oids}
	entries := make([]dvcfmt.DirEntry, len(files))
	for i, f := range files {
		entries[i] = dvcfmt.DirEntry{MD5: oids[i], RelPath: f.rel}
		h.size += f.fi.Size()
	}
	body := dvcfmt.EncodeDir(entries)
	h.md5 = dvcfmt.DirOID(body)
	if mode == hashToCache {
		if err := r.Cache.Put(ctx, h.md5, false, strings.NewReader(string(body))); err != nil {
			return hashed{}, err
		}
	}
	return h, nil
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
