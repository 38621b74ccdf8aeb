package imagebuild

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where things live inside the image.
const (
	BinaryPath  = "/usr/local/bin/catdog"
	LibraryDir  = "/opt/libtorch/lib"
	ModelPath   = "/models/current"
	DefaultPort = 8080
)

// OCI label keys (opencontainers/image-spec annotations.md).
const (
	LabelCreated  = "org.opencontainers.image.created"
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelVersion  = "org.opencontainers.image.version"
	LabelTitle    = "org.opencontainers.image.title"
	LabelBaseName = "org.opencontainers.image.base.name"
	LabelBaseDig  = "org.opencontainers.image.base.digest"
)

// Layer names, in image order.
const (
	LayerBase     = "base"
	LayerLibtorch = "libtorch"
	LayerApp      = "app"
	LayerModel    = "model"
)

// Spec is what goes into an image.
type Spec struct {
	// Binary is the host path of the linux/amd64 catdog binary. Required.
	Binary string
	// Libraries are host paths of the shared libraries of the libtorch layer (see LibrariesIn).
	Libraries []string
	// ModelDir is the host model directory (model.json, best_model.ot, ...). Required.
	ModelDir string
	// BaseRef, when set, is pulled (linux/amd64) and used instead of the base layer assembled
	// from the build machine's Debian packages.
	BaseRef string
	// Labels are added to the image config and the manifest annotations (source, revision,
	// version, ...). org.opencontainers.image.created and .title are set by Build.
	Labels map[string]string
	// Created is the creation time of the image and the mtime of every file; the zero value
	// means the Unix epoch.
	Created time.Time
}

// LayerInfo describes one layer of a built image.
type LayerInfo struct {
	Name   string
	Digest v1.Hash
	Size   int64
	Cached bool // taken from the layer cache without compressing
}

// Result is a built image.
type Result struct {
	Image  v1.Image
	Digest v1.Hash
	Layers []LayerInfo
}

// Builder assembles images. It is safe for sequential use; concurrent builds should use
// separate Builders (they may share a Cache directory).
type Builder struct {
	cache *Cache
	o     options
}

type options struct {
	compression Compression
	level       int
	progress    ProgressFunc
	log         *slog.Logger
	keychain    authn.Keychain
}

// Option configures a Builder.
type Option func(*options)

// WithCompression selects the layer compressor and gzip level. The default is PGzip at
// DefaultCompressionLevel.
func WithCompression(c Compression, level int) Option {
	return func(o *options) { o.compression, o.level = c, level }
}

// WithProgress reports compression progress. The default reports nothing.
func WithProgress(fn ProgressFunc) Option { return func(o *options) { o.progress = fn } }

// WithLogger logs one line per layer. The default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithKeychain sets the credentials used to pull a base image. The default is
// authn.DefaultKeychain.
func WithKeychain(k authn.Keychain) Option { return func(o *options) { o.keychain = k } }

// NewBuilder returns a Builder that keeps compressed layers in cache.
func NewBuilder(cache *Cache, opts ...Option) *Builder {
	o := options{
		compression: PGzip,
		level:       DefaultCompressionLevel,
		log:         slog.New(slog.DiscardHandler),
		keychain:    authn.DefaultKeychain,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return &Builder{cache: cache, o: o}
}

// LibrariesIn returns the shared libraries (regular files named *.so or *.so.N...) directly in
// dir, sorted.
func LibrariesIn(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: libraries: %w", err)
	}
	var out []string
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		n := e.Name()
		if strings.HasSuffix(n, ".so") || strings.Contains(n, ".so.") {
			out = append(out, filepath.Join(dir, n))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("imagebuild: no shared libraries in %s", dir)
	}
	return out, nil
}

// FileSets returns the base (nil when spec.BaseRef is set), libtorch, app and model file sets.
func (b *Builder) FileSets(ctx context.Context, spec Spec) (map[string]*FileSet, error) {
	if spec.Binary == "" || spec.ModelDir == "" {
		return nil, fmt.Errorf("imagebuild: spec needs Binary and ModelDir")
	}
	sets := map[string]*FileSet{}
	if spec.BaseRef == "" {
		base, err := DebianBase(ctx, DebianOptions{})
		if err != nil {
			return nil, err
		}
		sets[LayerBase] = base
	}
	libs := NewFileSet()
	if err := libs.addDir(LibraryDir, 0o755, 0, 0); err != nil {
		return nil, err
	}
	for _, l := range spec.Libraries {
		if err := libs.AddFile(l, LibraryDir+"/"+filepath.Base(l), 0o755); err != nil {
			return nil, err
		}
	}
	sets[LayerLibtorch] = libs
	app := NewFileSet()
	if err := app.AddFile(spec.Binary, BinaryPath, 0o755); err != nil {
		return nil, err
	}
	sets[LayerApp] = app
	model := NewFileSet()
	if err := model.addTree(spec.ModelDir, ModelPath); err != nil {
		return nil, err
	}
	sets[LayerModel] = model
	return sets, nil
}

// Build assembles the image described by spec.
func (b *Builder) Build(ctx context.Context, spec Spec) (*Result, error) {
	created := spec.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC().Truncate(time.Second)
	sets, err := b.FileSets(ctx, spec)
	if err != nil {
		return nil, err
	}
	if spec.BaseRef == "" {
		roots := []string{BinaryPath}
		for _, l := range spec.Libraries {
			roots = append(roots, LibraryDir+"/"+filepath.Base(l))
		}
		all := []*FileSet{sets[LayerBase], sets[LayerLibtorch], sets[LayerApp]}
		if err := CheckLinkage(all, roots, []string{LibraryDir}); err != nil {
			return nil, err
		}
	}
	base, baseCfg, baseAnn, err := b.base(ctx, spec.BaseRef)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	img := base
	for _, ln := range []string{LayerBase, LayerLibtorch, LayerApp, LayerModel} {
		set, ok := sets[ln]
		if !ok {
			continue
		}
		start := time.Now()
		l, err := b.cache.Layer(ctx, set, LayerOptions{
			Name: ln, MTime: created, Compression: b.o.compression, Level: b.o.level, Progress: b.o.progress,
		})
		if err != nil {
			return nil, err
		}
		d, _ := l.Digest()
		res.Layers = append(res.Layers, LayerInfo{Name: ln, Digest: d, Size: l.size, Cached: l.Cached})
		b.o.log.Info("layer", "name", ln, "digest", d.String(), "bytes", l.size, "cached", l.Cached,
			"seconds", time.Since(start).Seconds())
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:     l,
			MediaType: types.OCILayer,
			History: v1.History{
				Created:   v1.Time{Time: created},
				CreatedBy: "catdog image build (" + ln + " layer)",
				Comment:   layerComment(ln),
			},
		})
		if err != nil {
			return nil, fmt.Errorf("imagebuild: append %s layer: %w", ln, err)
		}
	}
	cfgFile, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("imagebuild: config: %w", err)
	}
	cfg := cfgFile.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Created = v1.Time{Time: created}
	cfg.Author = "catdog"
	cfg.Config = runConfig(baseCfg)
	labels := map[string]string{LabelCreated: created.Format(time.RFC3339), LabelTitle: "catdog"}
	for k, v := range baseAnn {
		labels[k] = v
	}
	for k, v := range spec.Labels {
		if k == LabelCreated {
			continue // always the build's own creation time
		}
		labels[k] = v
	}
	cfg.Config.Labels = labels
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: set config: %w", err)
	}
	img = mutate.Annotations(img, labels).(v1.Image)
	res.Image = img
	if res.Digest, err = img.Digest(); err != nil {
		return nil, fmt.Errorf("imagebuild: digest: %w", err)
	}
	return res, nil
}

func layerComment(name string) string {
	switch name {
	case LayerBase:
		return "glibc, libstdc++, libgcc, libgomp, CA certificates, tzdata, user 65532"
	case LayerLibtorch:
		return "libtorch shared libraries in " + LibraryDir
	case LayerApp:
		return "catdog binary at " + BinaryPath
	default:
		return "model directory at " + ModelPath
	}
}

// runConfig is the container configuration: `catdog serve` as the non-root user.
func runConfig(base v1.Config) v1.Config {
	env := map[string]string{}
	var order []string
	for _, kv := range base.Env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := env[k]; !dup {
			order = append(order, k)
		}
		env[k] = v
	}
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	set("LD_LIBRARY_PATH", LibraryDir)
	set("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
	set("HOME", NonRootHome)
	envList := make([]string, 0, len(order))
	for _, k := range order {
		envList = append(envList, k+"="+env[k])
	}
	return v1.Config{
		Entrypoint:   []string{BinaryPath, "serve"},
		Cmd:          []string{"--model", ModelPath, "--addr", ":" + strconv.Itoa(DefaultPort)},
		Env:          envList,
		ExposedPorts: map[string]struct{}{strconv.Itoa(DefaultPort) + "/tcp": {}},
		User:         fmt.Sprintf("%d:%d", NonRootUID, NonRootUID),
		WorkingDir:   NonRootHome,
		StopSignal:   "SIGTERM",
	}
}

// base returns the image to append to, its run config and base annotations.
func (b *Builder) base(ctx context.Context, ref string) (v1.Image, v1.Config, map[string]string, error) {
	if ref == "" {
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		return img, v1.Config{}, nil, nil
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, v1.Config{}, nil, fmt.Errorf("imagebuild: base reference: %w", err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(b.o.keychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		return nil, v1.Config{}, nil, fmt.Errorf("imagebuild: pull base %s: %w", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, v1.Config{}, nil, fmt.Errorf("imagebuild: base config: %w", err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		return nil, v1.Config{}, nil, fmt.Errorf("imagebuild: base %s is %s/%s, want linux/amd64", ref, cf.OS, cf.Architecture)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, v1.Config{}, nil, fmt.Errorf("imagebuild: base digest: %w", err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return img, cf.Config, map[string]string{LabelBaseName: r.Name(), LabelBaseDig: d.String()}, nil
}
