package remote

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
	"strings"

	"github.com/catdog-mlops/catdog/dvcfmt/internal/fsutil"
)

// Local is a remote in a local directory (dvc's `url = /path/to/store`). Objects are written
// to a temp file in the target directory and renamed into place with mode 0444, as dvc does.
type Local struct {
	root string
}

var (
	_ Remote  = (*Local)(nil)
	_ Lister  = (*Local)(nil)
	_ Deleter = (*Local)(nil)
)

// NewLocal returns the local remote rooted at dir (created on the first Put).
func NewLocal(dir string) *Local { return &Local{root: filepath.Clean(dir)} }

func (l *Local) String() string { return l.root }

func (l *Local) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("invalid key %q", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("invalid key %q", key)
		}
	}
	return filepath.Join(l.root, filepath.FromSlash(key)), nil
}

// Stat implements Remote.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	p, err := l.path(key)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()) {
		return Info{}, fmt.Errorf("%s: %w", key, ErrNotExist)
	}
	if err != nil {
		return Info{}, err
	}
	return Info{Key: key, Size: fi.Size()}, nil
}

// Open implements Remote.
func (l *Local) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	f, err := fsutil.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", key, ErrNotExist)
	}
	return f, err
}

// Put implements Remote.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	// Not internal/atomicfile: objects are content-addressed and created read-only (0444) with
	// O_EXCL through fsutil, the size is checked before the rename; readers never see a partial object.
	dir := filepath.Dir(p)
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	name := filepath.Join(dir, "."+hex.EncodeToString(tok[:])+".tmp")
	// Created read-only (0444, as dvc leaves remote objects); the descriptor can still write.
	tmp, err := fsutil.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o755); err == nil {
			tmp, err = fsutil.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444)
		}
	}
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	var n int64
	if f, ok := r.(*os.File); ok && ctx.Err() == nil {
		n, err = io.Copy(tmp, f) // in-kernel copy_file_range for local files
	} else {
		n, err = io.Copy(tmp, &ctxReader{ctx, r})
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("put %s: wrote %d bytes, expected %d", key, n, size)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Delete implements Deleter.
func (l *Local) Delete(ctx context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", key, ErrNotExist)
	}
	return err
}

// List implements Lister; temp files of in-flight puts are skipped.
func (l *Local) List(ctx context.Context, prefix string, fn func(Info) error) error {
	start := l.root
	if prefix != "" {
		p, err := l.path(strings.TrimSuffix(prefix, "/"))
		if err != nil {
			return err
		}
		start = p
	}
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasSuffix(d.Name(), ".tmp") && strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(l.root, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		return fn(Info{Key: filepath.ToSlash(rel), Size: info.Size()})
	})
	return err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
