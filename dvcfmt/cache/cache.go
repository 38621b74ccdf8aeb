// Package cache is a DVC cache directory on local disk: content-addressed objects under
// files/md5/<2 hex>/<30 hex> (legacy DVC 2 objects directly under <2 hex>/<30 hex>).
//
// Objects enter the cache only through a temp file in the destination directory that is
// hashed while it is written; it is renamed into place and made read-only (0444) only when
// its hash equals the expected oid, because dvc trusts read-only cache files without
// re-hashing them.
package cache

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
	"sync"

	"github.com/catdog-mlops/catdog/dvcfmt"
	"github.com/catdog-mlops/catdog/dvcfmt/internal/fsutil"
	"golang.org/x/sys/unix"
)

// Path is the root of a cache directory (by default <repo>/.dvc/cache).
type Path string

// ErrNotFound is returned when an object is absent from the cache.
var ErrNotFound = errors.New("object not in cache")

// CorruptError reports bytes whose hash differs from the oid they were meant to have.
type CorruptError struct {
	OID string // expected
	Got string // actual hash of the bytes
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt object %s: content hashes to %s", e.OID, e.Got)
}

// ObjectPath returns where oid lives: files/md5/xx/rest, or xx/rest for legacy objects.
func (p Path) ObjectPath(oid string, legacy bool) string {
	if len(oid) < 3 {
		return filepath.Join(string(p), "invalid-oid")
	}
	if legacy {
		return filepath.Join(string(p), oid[:2], oid[2:])
	}
	return filepath.Join(string(p), "files", "md5", oid[:2], oid[2:])
}

// Key returns the slash path of oid below a cache or remote root, as dvc lays it out.
func Key(oid string, legacy bool) string {
	if legacy {
		return oid[:2] + "/" + oid[2:]
	}
	return "files/md5/" + oid[:2] + "/" + oid[2:]
}

// Has reports whether a valid copy of oid is in the cache. A read-only object is trusted (as
// dvc does); a writable one is re-hashed, made read-only when valid and removed when not.
func (p Path) Has(oid string, legacy bool) bool {
	return p.Check(oid, legacy) == nil
}

// Check returns nil when oid is in the cache and valid, ErrNotFound or a *CorruptError.
func (p Path) Check(oid string, legacy bool) error {
	if !dvcfmt.ValidOID(oid) {
		return fmt.Errorf("invalid oid %q", oid)
	}
	path := p.ObjectPath(oid, legacy)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o222 == 0 {
		return nil
	}
	got, err := hashFile(path, legacy)
	if err != nil {
		return err
	}
	if got != trimDir(oid) {
		_ = os.Remove(path)
		return &CorruptError{OID: oid, Got: got}
	}
	return protect(path)
}

func trimDir(oid string) string { return oid[:32] }

func hashFile(path string, legacy bool) (string, error) {
	f, err := fsutil.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	oid, _, err := dvcfmt.HashReader(f, legacy)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return oid, nil
}

// protect makes an object read-only (0444). Hard links share the mode, so an executable
// workspace hard link keeps its x bits (dvc behaves the same).
func protect(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	mode := fi.Mode().Perm() &^ 0o222
	if fi.Mode().Perm()&0o111 == 0 {
		mode = 0o444
	}
	if err := os.Chmod(path, mode|0o444); err != nil {
		return fmt.Errorf("protect %s: %w", path, err)
	}
	return nil
}

// Open opens oid for reading.
func (p Path) Open(oid string, legacy bool) (*os.File, error) {
	f, err := fsutil.Open(p.ObjectPath(oid, legacy))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", oid, ErrNotFound)
	}
	return f, err
}

// ReadAll returns a (small) object's bytes, e.g. a .dir object, bounded by limit.
func (p Path) ReadAll(oid string, legacy bool, limit int64) ([]byte, error) {
	f, err := p.Open(oid, legacy)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("object %s is larger than %d bytes", oid, limit)
	}
	return b, nil
}

// Put streams r into the cache as oid. The bytes go to a temp file next to the final path
// and are hashed on the way; on a mismatch the temp file is removed and a *CorruptError is
// returned, so a corrupt object never enters the cache. An existing valid object is kept.
func (p Path) Put(ctx context.Context, oid string, legacy bool, r io.Reader) error {
	if !dvcfmt.ValidOID(oid) {
		return fmt.Errorf("invalid oid %q", oid)
	}
	_, _, err := p.write(ctx, oid, legacy, r)
	return err
}

// PutFile copies the workspace file src into the cache and returns its oid and size (see
// Checker.PutFile, which it runs with a one-off Checker).
func (p Path) PutFile(ctx context.Context, src string) (oid string, size int64, err error) {
	c := p.NewChecker()
	defer c.Close()
	return c.PutFile(ctx, src)
}

// createTemp creates a read-only temp file in dir (created when missing); the returned
// descriptor can still write.
func createTemp(dir string) (*os.File, string, error) {
	name := filepath.Join(dir, "."+tmpToken()+".tmp")
	f, err := fsutil.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o755); err == nil {
			f, err = fsutil.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444)
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("cache: %w", err)
	}
	return f, name, nil
}

// write copies r into a temp file in the cache, hashing it. With want == "" the object's oid is
// whatever the bytes hash to. The temp file is created read-only (the open descriptor can still
// write), so no chmod is needed once the hash is verified; directories are created lazily.
func (p Path) write(ctx context.Context, want string, legacy bool, r io.Reader) (string, int64, error) {
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	dir := filepath.Join(string(p), "files", "md5")
	if want != "" {
		dir = filepath.Dir(p.ObjectPath(want, legacy))
	}
	// Not internal/atomicfile: the final name is the content's hash, known only once the bytes
	// are written, and an object already present is kept; a torn temp file is never renamed.
	tmp, tmpName, err := createTemp(dir)
	if err != nil {
		return "", 0, err
	}
	defer func() {
		if tmpName != "" {
			_ = os.Remove(tmpName)
		}
	}()
	h := dvcfmt.NewHash(legacy)
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", n, fmt.Errorf("cache: writing %s: %w", want, err)
	}
	got := h.Sum()
	oid := want
	if want == "" {
		oid = got
	} else if got != trimDir(want) {
		return "", n, &CorruptError{OID: want, Got: got}
	}
	final := p.ObjectPath(oid, legacy)
	if fi, err := os.Lstat(final); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o222 == 0 {
		return oid, n, nil // already present and trusted
	}
	err = os.Rename(tmpName, final)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(final), 0o755); err == nil {
			err = os.Rename(tmpName, final)
		}
	}
	if err != nil {
		return "", n, fmt.Errorf("cache: %w", err)
	}
	tmpName = ""
	return oid, n, nil
}

// TempDir returns a directory inside the cache for in-flight files (on the same file system).
func (p Path) TempDir() (string, error) {
	dir := filepath.Join(string(p), "files", "md5")
	return dir, os.MkdirAll(dir, 0o755)
}

func tmpToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// Checker works on many objects of one cache (Check, Has, PutFile): it keeps each object
// directory open and stats, creates and renames objects relative to it, so the kernel resolves
// one name per object instead of the whole path. It is safe for concurrent use; Close releases
// the directories.
type Checker struct {
	p    Path
	mu   sync.Mutex
	dirs map[string]int // object directory -> open descriptor
}

// NewChecker returns a Checker for p.
func (p Path) NewChecker() *Checker { return &Checker{p: p, dirs: map[string]int{}} }

// Has reports whether a valid copy of oid is in the cache, like Path.Has.
func (c *Checker) Has(oid string, legacy bool) bool { return c.Check(oid, legacy) == nil }

// Check is Path.Check: nil for a read-only (trusted) object; a writable one is re-hashed.
func (c *Checker) Check(oid string, legacy bool) error {
	if !dvcfmt.ValidOID(oid) {
		return fmt.Errorf("invalid oid %q", oid)
	}
	dir, name := filepath.Split(c.p.ObjectPath(oid, legacy))
	fd, ok := c.dir(dir)
	if !ok {
		return c.p.Check(oid, legacy) // no such directory (yet): the plain path decides
	}
	var st unix.Stat_t
	err := unix.Fstatat(fd, name, &st, 0)
	for errors.Is(err, unix.EINTR) {
		err = unix.Fstatat(fd, name, &st, 0)
	}
	switch {
	case errors.Is(err, unix.ENOENT):
		return ErrNotFound
	case err != nil:
		return c.p.Check(oid, legacy)
	case st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o222 == 0:
		return nil // read-only: trusted, as dvc trusts it
	default:
		return c.p.Check(oid, legacy) // writable or not a regular file: re-hash or report
	}
}

func (c *Checker) dir(dir string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fd, ok := c.dirs[dir]; ok {
		return fd, true
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false
	}
	c.dirs[dir] = fd
	return fd, true
}

// Close releases the open directories.
func (c *Checker) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for d, fd := range c.dirs {
		if err := unix.Close(fd); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", d, err))
		}
	}
	clear(c.dirs)
	return errors.Join(errs...)
}

// PutFile copies the workspace file src into the cache and returns its oid and size. The file
// is hashed first; nothing is written when a trusted (read-only) object already exists,
// otherwise it is copied in-kernel (copy_file_range) to a read-only temp file in the object's
// directory and renamed into place, so an object is complete or absent. A file that changes
// while it is being added is an error.
func (c *Checker) PutFile(ctx context.Context, src string) (oid string, size int64, err error) {
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	f, err := fsutil.Open(src)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if oid, size, err = dvcfmt.HashReader(f, false); err != nil {
		return "", 0, err
	}
	dir, name := filepath.Split(c.p.ObjectPath(oid, false))
	fd, ok := c.dir(dir)
	if !ok {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", 0, fmt.Errorf("cache: %w", err)
		}
		if fd, ok = c.dir(dir); !ok {
			return "", 0, fmt.Errorf("cache: cannot open %s", dir)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o222 == 0 {
		return oid, size, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	tmpName := "." + tmpToken() + ".tmp"
	tfd, err := unix.Openat(fd, tmpName, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o444)
	if err != nil {
		return "", 0, fmt.Errorf("cache: create %s: %w", filepath.Join(dir, tmpName), err)
	}
	defer func() {
		if tmpName != "" {
			_ = unix.Unlinkat(fd, tmpName, 0)
		}
	}()
	tmp := os.NewFile(uintptr(tfd), filepath.Join(dir, tmpName))
	n, err := io.Copy(tmp, f)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("cache: copying %s: %w", src, err)
	}
	after, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if n != size || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		return "", 0, fmt.Errorf("cache: %s changed while it was being added", src)
	}
	if err := unix.Renameat(fd, tmpName, fd, name); err != nil {
		return "", 0, fmt.Errorf("cache: rename into %s: %w", filepath.Join(dir, name), err)
	}
	tmpName = ""
	return oid, size, nil
}
