package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/catdog-mlops/catdog/dvcfmt/cache"

	"github.com/catdog-mlops/catdog/dvcfmt/internal/fsutil"
	"github.com/catdog-mlops/catdog/internal/progress"

	"golang.org/x/sync/errgroup"
)

// CheckoutResult lists the outputs a checkout changed, by repository-relative name
// (directories end in "/").
type CheckoutResult struct {
	Added, Modified, Deleted []string
	// Missing lists objects that were neither in the workspace nor in the cache.
	Missing []string
}

// UnsavedError is returned when a checkout would overwrite or delete workspace files whose
// content is not in the cache (use force to discard them).
type UnsavedError struct{ Paths []string }

func (e *UnsavedError) Error() string {
	return "can't remove the following unsaved files without confirmation (use --force):\n" + strings.Join(e.Paths, "\n")
}

// MissingCacheError is returned when objects an output needs are not in the cache.
type MissingCacheError struct{ Names []string }

func (e *MissingCacheError) Error() string {
	n := e.Names
	more := ""
	if len(n) > 10 {
		n, more = n[:10], fmt.Sprintf("\n... and %d more", len(e.Names)-10)
	}
	return "missing cache files (run pull or fetch first):\n" + strings.Join(n, "\n") + more
}

// Checkout makes the workspace match the .dvc files named by targets (all when empty),
// linking or copying objects from the cache with the configured cache.type. Files that
// already match are left alone.
func (r *Repo) Checkout(ctx context.Context, targets []string, force bool) (*CheckoutResult, error) {
	unlock, err := r.lock(ctx, lockWait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	outs, err := r.Outputs(ctx, targets)
	if err != nil {
		return nil, err
	}
	return r.checkout(ctx, outs, force)
}

func (r *Repo) checkout(ctx context.Context, outs []Output, force bool) (*CheckoutResult, error) {
	st := r.openState()
	defer func() { _ = st.save() }()
	res := &CheckoutResult{}
	var unsaved []string
	for _, o := range outs {
		if !o.Out.UsesCache() || o.Out.MD5 == "" {
			continue
		}
		change, missing, uns, err := r.checkoutOut(ctx, o, force, st)
		if err != nil {
			return res, fmt.Errorf("checkout %s: %w", o.Name, err)
		}
		res.Missing = append(res.Missing, missing...)
		unsaved = append(unsaved, uns...)
		name := o.Name
		if o.Out.IsDir() {
			name += "/"
		}
		switch change {
		case "A":
			res.Added = append(res.Added, name)
		case "M":
			res.Modified = append(res.Modified, name)
		}
	}
	if len(unsaved) > 0 {
		return res, &UnsavedError{Paths: unsaved}
	}
	if len(res.Missing) > 0 {
		return res, &MissingCacheError{Names: res.Missing}
	}
	return res, nil
}

// want is one file a checkout must produce.
type want struct {
	abs, rel string
	oid      string
	exec     bool
}

// checkoutOut makes the workspace copy of o match the cache: it lists the files o must have
// (checkoutWants), decides per file what to keep, replace or create (planCheckout), refuses
// to delete or overwrite unsaved files unless force, removes the extra files and links the
// rest (linkFiles). change is "A" (added), "M" (modified) or "" (unchanged).
func (r *Repo) checkoutOut(ctx context.Context, o Output, force bool, st *state) (change string, missing, unsaved []string, err error) {
	legacy := o.Out.Legacy()
	existed := exists(o.Abs)
	wants, ws, missing, unsaved, err := r.checkoutWants(ctx, o, force)
	if err != nil || missing != nil || unsaved != nil {
		return "", missing, unsaved, err
	}
	types := r.linkTypes()
	todo, missing, unsaved, err := r.planCheckout(ctx, o, wants, ws, force, types, st)
	if err != nil {
		return "", nil, nil, err
	}
	changed := len(todo) > 0
	extras := extraFiles(ws, wants)
	for _, abs := range extras {
		if !force && !r.inCache(abs, legacy) {
			unsaved = append(unsaved, abs)
		}
	}
	if len(unsaved) > 0 {
		sort.Strings(unsaved)
		return "", nil, unsaved, nil
	}
	for _, abs := range extras {
		if err := os.Remove(abs); err != nil {
			return "", nil, nil, err
		}
		st.forget(abs)
		changed = true
	}
	if o.Out.IsDir() {
		if err := os.MkdirAll(o.Abs, 0o755); err != nil {
			return "", nil, nil, err
		}
	}
	if err := r.linkFiles(ctx, o, todo, types, st); err != nil {
		return "", nil, nil, err
	}
	sort.Strings(missing)
	switch {
	case !changed:
		return "", missing, nil, nil
	case existed:
		return "M", missing, nil, nil
	default:
		return "A", missing, nil, nil
	}
}

// checkoutWants lists the files o must have and the workspace files now in its place. A
// directory's listing missing from the cache is reported as missing (o.Name); a workspace
// file or directory in the way of the other kind is removed, or reported as unsaved
// (unless force) when the cache does not hold it.
func (r *Repo) checkoutWants(ctx context.Context, o Output, force bool) (wants []want, ws map[string]wsFile, missing, unsaved []string, err error) {
	ws = map[string]wsFile{}
	if !o.Out.IsDir() {
		wants = []want{{abs: o.Abs, rel: o.Name, oid: o.Out.MD5, exec: o.Out.IsExec}}
		fi, err := os.Stat(o.Abs)
		switch {
		case err != nil:
		case !fi.IsDir():
			ws[o.Abs] = wsFile{rel: filepath.Base(o.Abs), abs: o.Abs, fi: fi}
		case !force:
			return nil, nil, nil, []string{o.Abs}, nil
		default:
			if err := os.RemoveAll(o.Abs); err != nil {
				return nil, nil, nil, nil, err
			}
		}
		return wants, ws, nil, nil, nil
	}
	entries, err := r.loadDir(o.Out)
	if err != nil {
		if errors.Is(err, cache.ErrNotFound) || isNotFound(err) {
			return nil, nil, []string{o.Name}, nil, nil
		}
		return nil, nil, nil, nil, err
	}
	for _, e := range entries {
		wants = append(wants, want{abs: filepath.Join(o.Abs, filepath.FromSlash(e.RelPath)), rel: o.Name + "/" + e.RelPath, oid: e.MD5})
	}
	fi, err := os.Lstat(o.Abs)
	switch {
	case err != nil:
	case !fi.IsDir():
		if !force && !r.inCache(o.Abs, o.Out.Legacy()) {
			return nil, nil, nil, []string{o.Abs}, nil
		}
		if err := os.Remove(o.Abs); err != nil {
			return nil, nil, nil, nil, err
		}
	default:
		files, err := r.walkTree(ctx, o.Abs)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		for _, f := range files {
			ws[f.abs] = f
		}
	}
	return wants, ws, nil, nil, nil
}

// planCheckout decides per wanted file: keep it (same content; only the exec bit may be
// set), report it unsaved (different content the cache lacks, unless force), report it
// missing (the cache lacks its object) or link it (returned in todo).
func (r *Repo) planCheckout(ctx context.Context, o Output, wants []want, ws map[string]wsFile, force bool, types []string, st *state) (todo []want, missing, unsaved []string, err error) {
	legacy := o.Out.Legacy()
	var mu sync.Mutex
	err = r.parallel(ctx, len(wants), "Checkout "+o.Name, func(i int) error {
		w := wants[i]
		if f, ok := ws[w.abs]; ok {
			same, err := r.sameContent(ctx, f, w.oid, legacy, types, st)
			if err != nil {
				return err
			}
			if same {
				if w.exec && f.fi.Mode().Perm()&0o111 == 0 {
					return os.Chmod(w.abs, f.fi.Mode().Perm()|0o111)
				}
				return nil
			}
			if !force && !r.inCache(w.abs, legacy) {
				mu.Lock()
				unsaved = append(unsaved, w.abs)
				mu.Unlock()
				return nil
			}
		}
		inCache := r.Cache.Has(w.oid, legacy)
		mu.Lock()
		defer mu.Unlock()
		if !inCache {
			missing = append(missing, w.rel)
			return nil
		}
		todo = append(todo, w)
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return todo, missing, unsaved, nil
}

// extraFiles are the workspace files no wanted file names, sorted.
func extraFiles(ws map[string]wsFile, wants []want) []string {
	wantSet := make(map[string]bool, len(wants))
	for _, w := range wants {
		wantSet[w.abs] = true
	}
	var extras []string
	for abs := range ws {
		if !wantSet[abs] {
			extras = append(extras, abs)
		}
	}
	sort.Strings(extras)
	return extras
}

// linkFiles links (or copies) the files of todo from the cache, creating their directories,
// and records their hashes in the state database.
func (r *Repo) linkFiles(ctx context.Context, o Output, todo []want, types []string, st *state) error {
	legacy := o.Out.Legacy()
	var made sync.Map                           // directories known to exist
	ioJobs := max(r.o.jobs, 4*runtime.NumCPU()) // linking waits on file-system latency, not CPU
	return runParallel(ctx, len(todo), ioJobs, r.o.progress.Count("Linking "+o.Name, int64(len(todo))), func(i int) error {
		w := todo[i]
		if dir := filepath.Dir(w.abs); dir != o.Abs {
			if _, ok := made.Load(dir); !ok {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				made.Store(dir, true)
			}
		}
		if err := r.link(w.abs, w.oid, legacy, w.exec, types); err != nil {
			return err
		}
		if fi, err := os.Stat(w.abs); err == nil && !legacy {
			st.put(w.abs, fi, w.oid)
		}
		return nil
	})
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// sameContent reports whether workspace file f already holds oid.
func (r *Repo) sameContent(ctx context.Context, f wsFile, oid string, legacy bool, types []string, st *state) (bool, error) {
	if lfi, err := os.Lstat(f.abs); err == nil && lfi.Mode()&fs.ModeSymlink != 0 {
		if dst, err := os.Readlink(f.abs); err == nil && dst == r.Cache.ObjectPath(oid, legacy) {
			return true, nil
		}
	}
	got, err := r.hashOne(ctx, f, legacy, hashOnly, st, nil) // hashOnly: no cache access
	if err != nil {
		return false, err
	}
	return got == oid, nil
}

// inCache reports whether the workspace file's current content is saved in the cache.
func (r *Repo) inCache(abs string, legacy bool) bool {
	fi, err := os.Stat(abs)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	oid, err := hashPath(abs, legacy)
	return err == nil && r.Cache.Has(oid, legacy)
}

// link materialises cache object oid at dst with the first link type that works, replacing
// whatever is there atomically (temp name + rename).
func (r *Repo) link(dst, oid string, legacy, exec bool, types []string) error {
	src := r.Cache.ObjectPath(oid, legacy)
	dir := filepath.Dir(dst)
	// Not internal/atomicfile: the temp name is a link (reflink, hard link, symlink) to a
	// verified cache object, not written bytes; only the rename into place is shared.
	tmp := filepath.Join(dir, "."+filepath.Base(dst)+"."+tmpSuffix()+".tmp")
	var lastErr error
	for _, t := range types {
		var err error
		switch t {
		case "reflink":
			err = reflink(src, tmp)
		case "hardlink":
			if fi, serr := os.Stat(src); serr == nil && fi.Size() == 0 {
				err = os.WriteFile(tmp, nil, 0o644) // as dvc: empty files are created, not linked
			} else {
				err = os.Link(src, tmp)
			}
		case "symlink":
			err = os.Symlink(src, tmp)
		case "copy":
			err = copyFile(src, tmp)
		default:
			err = fmt.Errorf("unknown cache.type %q", t)
		}
		if err != nil {
			lastErr = err
			continue
		}
		if exec {
			if fi, err := os.Stat(tmp); err == nil {
				_ = os.Chmod(tmp, fi.Mode().Perm()|0o111)
			}
		}
		err = os.Rename(tmp, dst)
		if err != nil {
			if fi, lerr := os.Lstat(dst); lerr == nil && fi.IsDir() { // a directory is in the way
				if err = os.RemoveAll(dst); err == nil {
					err = os.Rename(tmp, dst)
				}
			}
		}
		if err != nil {
			_ = os.Remove(tmp)
			return err
		}
		return nil
	}
	_ = os.Remove(tmp)
	return fmt.Errorf("no link type in %v worked for %s: %w", types, dst, lastErr)
}

func tmpSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func reflink(src, dst string) error {
	in, err := fsutil.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := fsutil.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = unix.IoctlFileClone(int(out.Fd()), int(in.Fd()))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(dst)
	}
	return err
}

func copyFile(src, dst string) error {
	in, err := fsutil.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := fsutil.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		_ = os.Remove(dst)
		return err
	}
	return out.Close()
}

// parallel runs fn(0..n-1) on r.o.jobs goroutines, stopping at the first error.
func (r *Repo) parallel(ctx context.Context, n int, desc string, fn func(i int) error) error {
	return runParallel(ctx, n, r.o.jobs, r.o.progress.Count(desc, int64(n)), fn)
}

// runParallel runs fn(0..n-1) on jobs goroutines, counting each success on c (nil: not
// counted), stopping at the first error.
func runParallel(ctx context.Context, n, jobs int, c *progress.Counter, fn func(i int) error) error {
	if c != nil {
		defer c.Finish()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(jobs, 1))
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := fn(i); err != nil {
				return err
			}
			if c != nil {
				c.Add(1)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
