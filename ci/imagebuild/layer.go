package imagebuild

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/pgzip"

	"github.com/catdog-mlops/catdog/internal/atomicfile"
)

// Compression selects how layers are gzipped. Every choice produces a valid gzip stream; the
// choice is part of the cache key because different compressors give different digests.
type Compression string

const (
	// PGzip compresses 1 MiB blocks in parallel on every core (github.com/klauspost/pgzip).
	// Its output does not depend on the number of cores.
	PGzip Compression = "pgzip"
	// Gzip is the standard library's single-threaded compress/gzip.
	Gzip Compression = "gzip"
	// KGzip is github.com/klauspost/compress/gzip: single-threaded, faster than the standard
	// library at the same level; the better choice when the cores are busy with other work.
	KGzip Compression = "kgzip"
)

// DefaultCompressionLevel is gzip level 1 (BestSpeed), the level go-containerregistry's
// tarball layers use by default.
const DefaultCompressionLevel = gzip.BestSpeed

// Cache is a content-addressed store of compressed layers on disk:
// blobs/sha256/<digest> holds a compressed layer and layers/<diffID>.<compressor>.json maps
// an uncompressed digest to it. recipes/<key>.json additionally remembers the layer built from
// a FileSet whose source files have the same path, size, mtime, ctime, inode and device, so an
// untouched layer is found without reading its files at all. Files are written to a temp name and renamed into place, so
// concurrent builders sharing a cache never see partial blobs. There is no eviction; delete
// the directory to reclaim space.
type Cache struct {
	dir string
}

// NewCache opens (creating if needed) a layer cache rooted at dir.
func NewCache(dir string) (*Cache, error) {
	for _, d := range []string{filepath.Join(dir, "blobs", "sha256"), filepath.Join(dir, "layers")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("imagebuild: layer cache: %w", err)
		}
	}
	return &Cache{dir: dir}, nil
}

// Dir returns the cache's root directory.
func (c *Cache) Dir() string { return c.dir }

// ProgressFunc receives the uncompressed bytes written so far for a layer being compressed
// and the layer's uncompressed size. It is called from the compressing goroutine.
type ProgressFunc func(layer string, done, total int64)

// LayerOptions configure how a FileSet becomes a layer.
type LayerOptions struct {
	Name        string       // for progress reports, e.g. "libtorch"
	MTime       time.Time    // mtime of every tar entry
	Compression Compression  // default PGzip
	Level       int          // gzip level; 0 means DefaultCompressionLevel
	Progress    ProgressFunc // optional
}

// Layer is a compressed layer held in a Cache. It implements v1.Layer.
type Layer struct {
	digest, diffID v1.Hash
	size           int64
	path           string
	// Cached reports whether the compressed blob was already in the cache (no compression ran).
	Cached bool
}

var _ v1.Layer = (*Layer)(nil)

type layerMeta struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// countingHash hashes and counts what is written to it.
type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// Layer returns the layer for set, compressing it only when the cache holds no blob for its
// uncompressed digest and compressor. It reads the set's files once to compute the digest and,
// on a miss, once more to compress them.
func (c *Cache) Layer(ctx context.Context, set *FileSet, opts LayerOptions) (*Layer, error) {
	if opts.Compression == "" {
		opts.Compression = PGzip
	}
	if opts.Level == 0 {
		opts.Level = DefaultCompressionLevel
	}
	if opts.Compression != PGzip && opts.Compression != Gzip && opts.Compression != KGzip {
		return nil, fmt.Errorf("imagebuild: unknown compression %q", opts.Compression)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	recipe := ""
	if key, ok := recipeKey(set, opts); ok {
		recipe = filepath.Join(c.dir, "recipes", key+".json")
		if l, ok := c.lookupRecipe(recipe); ok {
			return l, nil
		}
	}
	l, err := c.build(ctx, set, opts)
	if err == nil && recipe != "" {
		m, _ := json.Marshal(recipeMeta{DiffID: l.diffID.String(), Digest: l.digest.String(), Size: l.size})
		if err := os.MkdirAll(filepath.Dir(recipe), 0o755); err != nil {
			return nil, fmt.Errorf("imagebuild: layer cache: %w", err)
		}
		if err := writeFileAtomic(recipe, m); err != nil {
			return nil, err
		}
	}
	return l, err
}

type recipeMeta struct {
	DiffID string `json:"diff_id"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// recipeKey hashes everything that determines a layer's bytes without reading the files:
// the options, every entry's metadata and inline data, and the identity and change times of
// every source file. It reports false when a source cannot be stat'ed in that detail.
func recipeKey(set *FileSet, opts LayerOptions) (string, bool) {
	h := sha256.New()
	fmt.Fprintf(h, "v1\x00%s\x00%d\x00%d\x00", opts.Compression, opts.Level, opts.MTime.UTC().Truncate(time.Second).Unix())
	for _, e := range set.sortedEntries() {
		fmt.Fprintf(h, "%q %c %o %d %d %q %d\x00", e.Path, e.Type, e.Mode, e.UID, e.GID, e.Linkname, len(e.Data))
		h.Write(e.Data)
		if e.Source == "" {
			continue
		}
		fi, err := os.Stat(e.Source)
		if err != nil {
			return "", false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return "", false
		}
		abs, _ := filepath.Abs(e.Source)
		fmt.Fprintf(h, "%q %d %d %d %d %d %d\x00", abs, fi.Size(), fi.ModTime().UnixNano(),
			st.Ctim.Sec*1e9+st.Ctim.Nsec, st.Ino, st.Dev, fi.Mode())
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

func (c *Cache) lookupRecipe(p string) (*Layer, bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	var m recipeMeta
	if json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	diffID, err1 := v1.NewHash(m.DiffID)
	digest, err2 := v1.NewHash(m.Digest)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	blob := filepath.Join(c.dir, "blobs", "sha256", digest.Hex)
	fi, err := os.Stat(blob)
	if err != nil || fi.Size() != m.Size {
		return nil, false
	}
	return &Layer{digest: digest, diffID: diffID, size: m.Size, path: blob, Cached: true}, true
}

// build finds the layer by its uncompressed digest, compressing it on a miss.
func (c *Cache) build(ctx context.Context, set *FileSet, opts LayerOptions) (*Layer, error) {
	// Pass 1: the uncompressed digest (DiffID) is the cache key.
	diff := &countingHash{h: sha256.New()}
	if err := set.WriteTar(diff, opts.MTime); err != nil {
		return nil, err
	}
	diffID := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diff.h.Sum(nil))}
	metaPath := filepath.Join(c.dir, "layers", fmt.Sprintf("%s.%s-%d.json", diffID.Hex, opts.Compression, opts.Level))
	if l, ok := c.lookup(metaPath, diffID); ok {
		return l, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Pass 2: tar -> (diffID check) -> gzip -> (digest) -> temp file -> rename. Not
	// internal/atomicfile: the blob's name is its digest, known only after the bytes are written.
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "blobs", "sha256"), ".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("imagebuild: layer cache: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	comp := &countingHash{h: sha256.New()}
	zw, err := NewCompressor(io.MultiWriter(tmp, comp), opts.Compression, opts.Level)
	if err != nil {
		tmp.Close()
		return nil, err
	}
	check := &countingHash{h: sha256.New()}
	var dst io.Writer = io.MultiWriter(zw, check)
	if opts.Progress != nil {
		dst = &progressWriter{w: dst, name: opts.Name, total: diff.n, fn: opts.Progress, ctx: ctx}
	} else {
		dst = &progressWriter{w: dst, ctx: ctx}
	}
	werr := set.WriteTar(dst, opts.MTime)
	cerr := zw.Close()
	ferr := tmp.Close()
	if err := errors.Join(werr, cerr, ferr); err != nil {
		return nil, fmt.Errorf("imagebuild: compress layer %s: %w", opts.Name, err)
	}
	if got := hex.EncodeToString(check.h.Sum(nil)); got != diffID.Hex {
		return nil, fmt.Errorf("imagebuild: layer %s: files changed while the layer was built", opts.Name)
	}
	digest := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(comp.h.Sum(nil))}
	blob := filepath.Join(c.dir, "blobs", "sha256", digest.Hex)
	if err := os.Rename(tmp.Name(), blob); err != nil {
		return nil, fmt.Errorf("imagebuild: layer cache: %w", err)
	}
	meta, _ := json.Marshal(layerMeta{Digest: digest.String(), Size: comp.n})
	if err := writeFileAtomic(metaPath, meta); err != nil {
		return nil, err
	}
	return &Layer{digest: digest, diffID: diffID, size: comp.n, path: blob}, nil
}

func (c *Cache) lookup(metaPath string, diffID v1.Hash) (*Layer, bool) {
	b, err := os.ReadFile(metaPath)
	if err != nil {
		return nil, false
	}
	var m layerMeta
	if json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	digest, err := v1.NewHash(m.Digest)
	if err != nil {
		return nil, false
	}
	blob := filepath.Join(c.dir, "blobs", "sha256", digest.Hex)
	fi, err := os.Stat(blob)
	if err != nil || fi.Size() != m.Size {
		return nil, false
	}
	return &Layer{digest: digest, diffID: diffID, size: m.Size, path: blob, Cached: true}, true
}

func writeFileAtomic(p string, data []byte) error {
	if err := atomicfile.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("imagebuild: %w", err)
	}
	return nil
}

// NewCompressor returns a gzip writer of kind c at level over w.
func NewCompressor(w io.Writer, c Compression, level int) (io.WriteCloser, error) {
	switch c {
	case Gzip:
		zw, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, fmt.Errorf("imagebuild: gzip: %w", err)
		}
		return zw, nil
	case KGzip:
		zw, err := kgzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, fmt.Errorf("imagebuild: kgzip: %w", err)
		}
		return zw, nil
	default:
		zw, err := pgzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, fmt.Errorf("imagebuild: pgzip: %w", err)
		}
		return zw, nil
	}
}

type progressWriter struct {
	w     io.Writer
	ctx   context.Context
	name  string
	total int64
	done  int64
	fn    ProgressFunc
}

func (p *progressWriter) Write(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.w.Write(b)
	p.done += int64(n)
	if p.fn != nil {
		p.fn(p.name, p.done, p.total)
	}
	return n, err
}

// Digest implements v1.Layer.
func (l *Layer) Digest() (v1.Hash, error) { return l.digest, nil }

// DiffID implements v1.Layer.
func (l *Layer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Size implements v1.Layer.
func (l *Layer) Size() (int64, error) { return l.size, nil }

// MediaType implements v1.Layer: always an OCI gzip layer.
func (l *Layer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// Compressed implements v1.Layer by opening the cached blob.
func (l *Layer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: cached layer %s: %w", l.digest, err)
	}
	return f, nil
}

// Uncompressed implements v1.Layer by decompressing the cached blob.
func (l *Layer) Uncompressed() (io.ReadCloser, error) {
	f, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("imagebuild: cached layer %s: %w", l.digest, err)
	}
	return &readCloser{Reader: zr, closers: []io.Closer{zr, f}}, nil
}

type readCloser struct {
	io.Reader
	closers []io.Closer
}

func (r *readCloser) Close() error {
	var errs []error
	for _, c := range r.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
