package repo

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

	"github.com/catdog-mlops/catdog/dvcfmt"
	"github.com/catdog-mlops/catdog/dvcfmt/cache"
	"github.com/catdog-mlops/catdog/dvcfmt/internal/fsutil"
	"golang.org/x/sys/unix"

	"github.com/catdog-mlops/catdog/internal/atomicfile"
)

// wsFile is a regular file found in the workspace.
type wsFile struct {
	rel string      // relative to the walked tree's root, slash-separated
	abs string      // absolute path
	fi  fs.FileInfo // of the file (of the target for a followed symlink)
}

// IgnoreInTreeError is returned when a directory being tracked contains a .dvcignore (dvc
// refuses the same).
type IgnoreInTreeError struct{ Path string }

func (e *IgnoreInTreeError) Error() string {
	return fmt.Sprintf("%s is inside a tracked directory; move its rules to a .dvcignore above it", e.Path)
}

// ignoreFor loads the .dvcignore files of the repository root and of every directory between
// it and absDir (inclusive).
func (r *Repo) ignoreFor(absDir string) (*dvcfmt.Ignore, error) {
	ig := &dvcfmt.Ignore{}
	rel := r.rel(absDir)
	dirs := []string{""}
	if rel != "." && rel != "" && !strings.HasPrefix(rel, "../") {
		parts := strings.Split(rel, "/")
		for i := range parts {
			dirs = append(dirs, strings.Join(parts[:i+1], "/"))
		}
	}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(r.Root, filepath.FromSlash(d), dvcfmt.IgnoreFile))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ig.Add(b, d)
	}
	return ig, nil
}

func builtinIgnored(name string) bool { return name == ".git" || name == ".hg" || name == DvcDir }

// walkTree lists the files dvc would put in a directory object for absDir: regular files and
// symlinks to files, minus .dvcignore'd paths, .git/.hg/.dvc and sub-repositories; symlinked
// directories are not descended. Subdirectories are listed by up to r.o.jobs extra goroutines;
// the order of the result is the sequential walk's (entries by name, subtrees in place).
func (r *Repo) walkTree(ctx context.Context, absDir string) ([]wsFile, error) {
	ig, err := r.ignoreFor(filepath.Dir(absDir))
	if err != nil {
		return nil, err
	}
	w := &treeWalker{ctx: ctx, ig: ig, base: r.rel(absDir), slots: make(chan struct{}, r.o.jobs)}
	return w.walk(absDir, "")
}

type treeWalker struct {
	ctx   context.Context
	ig    *dvcfmt.Ignore
	base  string        // the walked tree, relative to the repository root
	slots chan struct{} // goroutines that may walk a subdirectory besides the caller's
}

// subtree is the result of walking one subdirectory, to be spliced in at position at.
type subtree struct {
	at    int
	files []wsFile
	err   error
	done  chan struct{} // nil when walked inline
}

func (w *treeWalker) walk(dir, rel string) (_ []wsFile, err error) {
	if err := w.ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := fsutil.ReadDirStat(dir)
	if err != nil {
		return nil, err
	}
	var (
		files []wsFile
		subs  []*subtree
	)
	defer func() { // never leave a goroutine behind, even on an early error
		for _, s := range subs {
			if s.done != nil {
				<-s.done
			}
		}
	}()
	for _, e := range entries {
		name := e.Name
		if builtinIgnored(name) {
			continue
		}
		abs := filepath.Join(dir, name)
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		repoRel := w.base + "/" + childRel
		if !utf8.ValidString(name) {
			return nil, fmt.Errorf("%q: file names that are not valid UTF-8 are not supported", repoRel)
		}
		if name == dvcfmt.IgnoreFile {
			return nil, &IgnoreInTreeError{Path: repoRel}
		}
		typ := e.Type
		switch {
		case typ.IsDir():
			if w.ig.Ignored(repoRel, true) {
				continue
			}
			if fi, err := os.Stat(filepath.Join(abs, DvcDir)); err == nil && fi.IsDir() {
				continue // a sub-repository
			}
			s := &subtree{at: len(files)}
			subs = append(subs, s)
			select {
			case w.slots <- struct{}{}:
				s.done = make(chan struct{})
				go func() {
					defer close(s.done)
					defer func() { <-w.slots }()
					s.files, s.err = w.walk(abs, childRel)
				}()
			default:
				s.files, s.err = w.walk(abs, childRel)
			}
		case typ&fs.ModeSymlink != 0:
			fi, err := os.Stat(abs)
			if err != nil {
				return nil, fmt.Errorf("broken symlink %s: %w", repoRel, err)
			}
			if fi.IsDir() || !fi.Mode().IsRegular() || w.ig.Ignored(repoRel, false) {
				continue
			}
			files = append(files, wsFile{rel: childRel, abs: abs, fi: fi})
		case typ.IsRegular():
			if w.ig.Ignored(repoRel, false) {
				continue
			}
			files = append(files, wsFile{rel: childRel, abs: abs, fi: e.Info})
		}
	}
	if len(subs) == 0 {
		return files, nil
	}
	total := len(files)
	for _, s := range subs {
		if s.done != nil {
			<-s.done
			s.done = nil
		}
		if s.err != nil {
			return nil, s.err
		}
		total += len(s.files)
	}
	out := make([]wsFile, 0, total)
	prev := 0
	for _, s := range subs {
		out = append(out, files[prev:s.at]...)
		out = append(out, s.files...)
		prev = s.at
	}
	return append(out, files[prev:]...), nil
}

// hashMode selects what hashFiles does with each file's bytes.
type hashMode int

const (
	hashOnly    hashMode = iota // compute the md5 (using the state cache)
	hashToCache                 // compute the md5 and make sure the object is in the cache
)

// hashFiles hashes files on r.o.jobs goroutines and returns their oids in order.
func (r *Repo) hashFiles(ctx context.Context, files []wsFile, legacy bool, mode hashMode, st *state, desc string) ([]string, error) {
	oids := make([]string, len(files))
	objs := r.Cache.NewChecker() // object directories stay open for the whole batch
	defer objs.Close()
	err := r.parallel(ctx, len(files), desc, func(i int) error {
		oid, err := r.hashOne(ctx, files[i], legacy, mode, st, objs)
		oids[i] = oid
		return err
	})
	if err != nil {
		return nil, err
	}
	return oids, nil
}

func (r *Repo) hashOne(ctx context.Context, f wsFile, legacy bool, mode hashMode, st *state, objs *cache.Checker) (string, error) {
	if !legacy {
		if oid, ok := st.get(f.abs, f.fi); ok {
			if mode == hashOnly || objs.Has(oid, false) {
				return oid, nil
			}
		}
	}
	var oid string
	var err error
	if mode == hashToCache && !legacy {
		oid, _, err = objs.PutFile(ctx, f.abs)
	} else {
		oid, err = hashPath(f.abs, legacy)
	}
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", f.abs, err)
	}
	if !legacy {
		st.put(f.abs, f.fi, oid)
	}
	return oid, nil
}

func hashPath(path string, legacy bool) (string, error) {
	fh, err := fsutil.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	oid, _, err := dvcfmt.HashReader(fh, legacy)
	return oid, err
}

// state remembers file md5s keyed by (path, inode, size, mtime) so that unchanged files are
// not re-hashed. It is catdog's own file (.dvc/tmp/catdog-state.gob); dvc's databases are
// never written.
type state struct {
	mu    sync.Mutex
	path  string
	m     map[string]stateEntry
	dirty bool
}

type stateEntry struct {
	Ino   uint64
	Size  int64
	MTime int64
	MD5   string
}

const maxStateEntries = 5_000_000

func (r *Repo) openState() *state {
	s := &state{path: filepath.Join(r.Root, DvcDir, "tmp", "catdog-state.gob"), m: map[string]stateEntry{}}
	f, err := os.Open(s.path)
	if err != nil {
		return s
	}
	defer f.Close()
	if err := gob.NewDecoder(f).Decode(&s.m); err != nil || len(s.m) > maxStateEntries {
		s.m = map[string]stateEntry{}
	}
	return s
}

func key(fi fs.FileInfo) (ino uint64, mtime int64) {
	switch st := fi.Sys().(type) {
	case *syscall.Stat_t: // os.Stat, os.Lstat
		ino = uint64(st.Ino)
	case *unix.Stat_t: // fsutil.ReadDirStat
		ino = uint64(st.Ino)
	}
	return ino, fi.ModTime().UnixNano()
}

func (s *state) get(abs string, fi fs.FileInfo) (string, bool) {
	if s == nil {
		return "", false
	}
	ino, mt := key(fi)
	s.mu.Lock()
	e, ok := s.m[abs]
	s.mu.Unlock()
	if !ok || e.Ino != ino || e.MTime != mt || e.Size != fi.Size() {
		return "", false
	}
	return e.MD5, true
}

func (s *state) put(abs string, fi fs.FileInfo, oid string) {
	if s == nil {
		return
	}
	ino, mt := key(fi)
	s.mu.Lock()
	s.m[abs] = stateEntry{Ino: ino, Size: fi.Size(), MTime: mt, MD5: oid}
	s.dirty = true
	s.mu.Unlock()
}

func (s *state) forget(abs string) {
	s.mu.Lock()
	if _, ok := s.m[abs]; ok {
		delete(s.m, abs)
		s.dirty = true
	}
	s.mu.Unlock()
}

func (s *state) save() error {
	if s == nil || !s.dirty {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return atomicfile.Write(s.path, 0o644, func(w io.Writer) error {
		return gob.NewEncoder(w).Encode(s.m)
	})
}

// forgetTree drops the entries of abs and of every path below it.
func (s *state) forgetTree(abs string) {
	if s == nil {
		return
	}
	prefix := abs + string(filepath.Separator)
	s.mu.Lock()
	for p := range s.m {
		if p == abs || strings.HasPrefix(p, prefix) {
			delete(s.m, p)
			s.dirty = true
		}
	}
	s.mu.Unlock()
}
