package imagebuild_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/catdog-mlops/catdog/ci/imagebuild"
	"github.com/catdog-mlops/catdog/ci/internal/fixture"
)

func build(t *testing.T, cacheDir string, spec imagebuild.Spec, opts ...imagebuild.Option) *imagebuild.Result {
	t.Helper()
	cache, err := imagebuild.NewCache(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := imagebuild.NewBuilder(cache, opts...).Build(context.Background(), spec)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return res
}

func TestBuildIsReproducible(t *testing.T) {
	spec := fixture.Spec(t, 1)
	a := build(t, t.TempDir(), spec)
	b := build(t, t.TempDir(), spec) // a fresh cache: everything compressed again
	if a.Digest != b.Digest {
		t.Fatalf("two builds of the same inputs: %s != %s", a.Digest, b.Digest)
	}
	for _, l := range b.Layers {
		if l.Cached {
			t.Errorf("layer %s came from a cache that should be empty", l.Name)
		}
	}
	if err := validate.Image(a.Image); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	// Same inputs with the standard-library compressor: still valid, different bytes.
	g := build(t, t.TempDir(), spec, imagebuild.WithCompression(imagebuild.Gzip, 1))
	if err := validate.Image(g.Image); err != nil {
		t.Fatalf("validate.Image(gzip): %v", err)
	}
	// A different SOURCE_DATE_EPOCH is a different image.
	spec.Created = time.Unix(1700000000, 0)
	c := build(t, t.TempDir(), spec)
	if c.Digest == a.Digest {
		t.Fatal("changing the creation time did not change the digest")
	}
	cf, err := c.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Created.Time.Unix(); got != 1700000000 {
		t.Errorf("config created = %d, want 1700000000", got)
	}
}

func TestBuildConfigAndLayers(t *testing.T) {
	res := build(t, t.TempDir(), fixture.Spec(t, 1))
	img := res.Image
	mt, err := img.MediaType()
	if err != nil || mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type = %s, %v; want OCI", mt, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("config media type = %s", m.Config.MediaType)
	}
	if len(m.Layers) != 4 {
		t.Fatalf("%d layers, want 4 (base, libtorch, app, model)", len(m.Layers))
	}
	for i, l := range m.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("layer %d media type %s", i, l.MediaType)
		}
	}
	wantNames := []string{imagebuild.LayerBase, imagebuild.LayerLibtorch, imagebuild.LayerApp, imagebuild.LayerModel}
	for i, l := range res.Layers {
		if l.Name != wantNames[i] || l.Digest != m.Layers[i].Digest {
			t.Errorf("layer %d = %s %s, want %s %s", i, l.Name, l.Digest, wantNames[i], m.Layers[i].Digest)
		}
	}
	if m.Annotations[imagebuild.LabelRevision] != "0123456789abcdef0123456789abcdef01234567" {
		t.Errorf("manifest annotations = %v", m.Annotations)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	checks := []struct {
		what      string
		got, want any
	}{
		{"os", cf.OS, "linux"},
		{"arch", cf.Architecture, "amd64"},
		{"user", c.User, "65532:65532"},
		{"entrypoint", strings.Join(c.Entrypoint, " "), "/usr/local/bin/catdog serve"},
		{"cmd", strings.Join(c.Cmd, " "), "--model /models/current --addr :8080"},
		{"workdir", c.WorkingDir, "/home/nonroot"},
		{"port", hasKey(c.ExposedPorts, "8080/tcp"), true},
		{"created", cf.Created.Time.Unix(), int64(0)},
		{"label source", c.Labels[imagebuild.LabelSource], "https://github.com/catdog-mlops/catdog"},
		{"label version", c.Labels[imagebuild.LabelVersion], "1.2.3"},
		{"label created", c.Labels[imagebuild.LabelCreated], "1970-01-01T00:00:00Z"},
		{"history", len(cf.History), 4},
		{"healthcheck", c.Healthcheck == nil, true},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.what, ch.got, ch.want)
		}
	}
	env := strings.Join(c.Env, "\n")
	if !strings.Contains(env, "LD_LIBRARY_PATH="+imagebuild.LibraryDir) {
		t.Errorf("env lacks LD_LIBRARY_PATH: %v", c.Env)
	}

	files := layerFiles(t, img)
	for _, want := range []struct {
		path string
		mode int64
		uid  int
	}{
		{"usr/lib/x86_64-linux-gnu/libc.so.6", -1, 0},
		{"usr/lib/x86_64-linux-gnu/libstdc++.so.6", -1, 0},
		{"usr/lib/x86_64-linux-gnu/libgomp.so.1", -1, 0},
		{"usr/lib64/ld-linux-x86-64.so.2", -1, 0},
		{"etc/ssl/certs/ca-certificates.crt", 0o644, 0},
		{"usr/share/zoneinfo/UTC", -1, 0},
		{"etc/passwd", 0o644, 0},
		{"tmp/", 0o1777, 0},
		{"home/nonroot/", 0o700, 65532},
		{"opt/libtorch/lib/libc10.so", 0o755, 0},
		{"usr/local/bin/catdog", 0o755, 0},
		{"models/current/model.json", 0o644, 0},
		{"models/current/plots/curves.txt", 0o644, 0},
		{"models/current/drift_profile.json", 0o644, 0},
	} {
		h, ok := files[want.path]
		if !ok {
			t.Errorf("image lacks %s", want.path)
			continue
		}
		if (want.mode >= 0 && h.Mode != want.mode) || h.Uid != want.uid {
			t.Errorf("%s: mode %o uid %d, want %o %d", want.path, h.Mode, h.Uid, want.mode, want.uid)
		}
	}
	for p := range files {
		if strings.HasPrefix(p, "usr/share/doc/") {
			t.Errorf("documentation %s should be left out", p)
			break
		}
	}
}

// layerFiles reads every layer's tar headers, keyed by name.
func layerFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*tar.Header{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out[h.Name] = h
		}
		rc.Close()
	}
	return out
}

func TestNewModelChangesOnlyTheModelLayer(t *testing.T) {
	cacheDir := t.TempDir()
	spec := fixture.Spec(t, 1)
	first := build(t, cacheDir, spec)
	spec.ModelDir = fixture.ModelDir(t, 2)
	second := build(t, cacheDir, spec)
	if first.Digest == second.Digest {
		t.Fatal("a new model did not change the image digest")
	}
	for i := range first.Layers {
		a, b := first.Layers[i], second.Layers[i]
		if a.Name == imagebuild.LayerModel {
			if a.Digest == b.Digest || b.Cached {
				t.Errorf("model layer: %s -> %s (cached %t), want a new, compressed layer", a.Digest, b.Digest, b.Cached)
			}
			continue
		}
		if a.Digest != b.Digest || !b.Cached {
			t.Errorf("layer %s: %s -> %s (cached %t), want unchanged and cached", a.Name, a.Digest, b.Digest, b.Cached)
		}
	}
	// A new Builder over the same cache directory (a new process) compresses nothing.
	third := build(t, cacheDir, spec)
	for _, l := range third.Layers {
		if !l.Cached {
			t.Errorf("layer %s recompressed although the cache holds it", l.Name)
		}
	}
	if third.Digest != second.Digest {
		t.Errorf("rebuild from cache: %s != %s", third.Digest, second.Digest)
	}
}

func TestCorruptCacheEntryIsRebuilt(t *testing.T) {
	cacheDir := t.TempDir()
	spec := fixture.Spec(t, 1)
	first := build(t, cacheDir, spec)
	// Truncate every cached blob: the cache must notice and compress again.
	blobs, _ := filepath.Glob(filepath.Join(cacheDir, "blobs", "sha256", "*"))
	for _, b := range blobs {
		if err := os.Truncate(b, 10); err != nil {
			t.Fatal(err)
		}
	}
	second := build(t, cacheDir, spec)
	if second.Digest != first.Digest {
		t.Fatalf("digest after rebuilding a corrupt cache: %s != %s", second.Digest, first.Digest)
	}
	if err := validate.Image(second.Image); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
}

func TestLinkageCheck(t *testing.T) {
	ctx := context.Background()
	base, err := imagebuild.DebianBase(ctx, imagebuild.DebianOptions{})
	if err != nil {
		t.Fatal(err)
	}
	libs := fixture.SmallLibraries(t)
	all, err := imagebuild.LibrariesIn(fixture.LibtorchDir(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		libs    []string
		missing string // a library the error must name; "" for success
	}{
		{"full libtorch", all, ""},
		{"small libraries", libs, ""},
		{"without libc10", withoutName(all, "libc10.so"), "libc10.so"},
		{"without the cuda stubs", withoutName(all, "libcudart.so.12"), "libcudart.so.12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := imagebuild.NewFileSet()
			var roots []string
			for _, l := range tt.libs {
				p := imagebuild.LibraryDir + "/" + filepath.Base(l)
				if err := set.AddFile(l, p, 0o755); err != nil {
					t.Fatal(err)
				}
				roots = append(roots, p)
			}
			app := imagebuild.NewFileSet()
			if err := app.AddFile(fixture.Binary(t), imagebuild.BinaryPath, 0o755); err != nil {
				t.Fatal(err)
			}
			roots = append(roots, imagebuild.BinaryPath)
			err := imagebuild.CheckLinkage([]*imagebuild.FileSet{base, set, app}, roots, []string{imagebuild.LibraryDir})
			var mle *imagebuild.MissingLibraryError
			switch {
			case tt.missing == "" && err != nil:
				t.Fatalf("CheckLinkage: %v", err)
			case tt.missing != "" && !errors.As(err, &mle):
				t.Fatalf("CheckLinkage = %v, want *MissingLibraryError", err)
			case tt.missing != "" && !strings.Contains(err.Error(), tt.missing):
				t.Fatalf("error %q does not name %s", err, tt.missing)
			}
		})
	}
	// Without the base, even the binary's loader is missing.
	app := imagebuild.NewFileSet()
	if err := app.AddFile(fixture.Binary(t), imagebuild.BinaryPath, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := imagebuild.CheckLinkage([]*imagebuild.FileSet{app}, []string{imagebuild.BinaryPath}, nil); err == nil ||
		!strings.Contains(err.Error(), "ld-linux-x86-64.so.2") {
		t.Fatalf("CheckLinkage without base = %v, want the loader missing", err)
	}
}

func withoutName(paths []string, name string) []string {
	var out []string
	for _, p := range paths {
		if filepath.Base(p) != name {
			out = append(out, p)
		}
	}
	return out
}

func hasKey(m map[string]struct{}, k string) bool { _, ok := m[k]; return ok }
