package publish_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/catdog-mlops/catdog/ci/imagebuild"
	"github.com/catdog-mlops/catdog/ci/internal/fixture"
	"github.com/catdog-mlops/catdog/ci/publish"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

func fastBackoff() remote.Backoff {
	return remote.Backoff{Duration: 10 * time.Millisecond, Factor: 1, Steps: 4}
}

func buildImage(t *testing.T, cacheDir string, spec imagebuild.Spec) *imagebuild.Result {
	t.Helper()
	cache, err := imagebuild.NewCache(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := imagebuild.NewBuilder(cache).Build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// skopeo runs the independent client and returns its stdout.
func skopeo(t *testing.T, args ...string) string {
	t.Helper()
	bin := testenv.LookPath(t, "skopeo", "apt-get install skopeo")
	return testenv.Run(t, "", nil, bin, append([]string{"--insecure-policy"}, args...)...)
}

type skopeoInspect struct {
	Digest       string
	Architecture string
	Os           string
	Labels       map[string]string
	Layers       []string
}

func TestPushToDistributionRegistry(t *testing.T) {
	reg := testenv.StartRegistry(t)
	ctx := context.Background()
	res := buildImage(t, t.TempDir(), fixture.Spec(t, 1))
	var progressCalls int
	var lastComplete, lastTotal int64
	pushed, err := publish.Push(ctx, res.Image, reg.Host+"/catdog-mlops/catdog", []string{"sha-0123456", "main", "1.2.3"},
		publish.WithProgress(func(c, tot int64) { progressCalls++; lastComplete, lastTotal = c, tot }))
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if pushed.Digest != res.Digest {
		t.Errorf("pushed digest %s, built %s", pushed.Digest, res.Digest)
	}
	if len(pushed.Uploaded) != 5 { // 4 layers + config
		t.Errorf("uploaded %d blobs on the first push, want 5", len(pushed.Uploaded))
	}
	if progressCalls == 0 || lastComplete != lastTotal || lastTotal == 0 {
		t.Errorf("progress: %d calls, last %d/%d", progressCalls, lastComplete, lastTotal)
	}

	// An independent client sees the same image under every tag.
	for _, tag := range []string{"sha-0123456", "main", "1.2.3"} {
		var got skopeoInspect
		out := skopeo(t, "inspect", "--tls-verify=false", "docker://"+reg.Host+"/catdog-mlops/catdog:"+tag)
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, out)
		}
		if got.Digest != res.Digest.String() || got.Architecture != "amd64" || got.Os != "linux" {
			t.Errorf("skopeo inspect %s: digest %s %s/%s", tag, got.Digest, got.Os, got.Architecture)
		}
		if got.Labels[imagebuild.LabelRevision] != "0123456789abcdef0123456789abcdef01234567" || got.Labels[imagebuild.LabelVersion] != "1.2.3" {
			t.Errorf("skopeo labels = %v", got.Labels)
		}
		if len(got.Layers) != 4 || got.Layers[3] != res.Layers[3].Digest.String() {
			t.Errorf("skopeo layers = %v", got.Layers)
		}
	}
	var manifest struct {
		MediaType string
		Config    struct{ MediaType string }
	}
	raw := skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+reg.Host+"/catdog-mlops/catdog:main")
	if err := json.Unmarshal([]byte(raw), &manifest); err != nil {
		t.Fatal(err)
	}
	if manifest.MediaType != string(types.OCIManifestSchema1) || manifest.Config.MediaType != string(types.OCIConfigJSON) {
		t.Errorf("manifest media types %s / %s, want OCI", manifest.MediaType, manifest.Config.MediaType)
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal([]byte(skopeo(t, "inspect", "--config", "--tls-verify=false",
		"docker://"+reg.Host+"/catdog-mlops/catdog:main")), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || strings.Join(cfg.Config.Entrypoint, " ") != "/usr/local/bin/catdog serve" {
		t.Errorf("config seen by skopeo: user %q entrypoint %v", cfg.Config.User, cfg.Config.Entrypoint)
	}

	// skopeo copy to an OCI directory: the copy is byte-identical (same manifest digest) and
	// go-containerregistry validates every blob of it.
	ociDir := filepath.Join(t.TempDir(), "oci")
	skopeo(t, "copy", "--src-tls-verify=false", "docker://"+reg.Host+"/catdog-mlops/catdog@"+res.Digest.String(), "oci:"+ociDir+":copied")
	copied, err := publish.ReadLayout(ociDir, "copied")
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := copied.Digest(); d != res.Digest {
		t.Errorf("skopeo copy digest %s, want %s", d, res.Digest)
	}
	if err := validate.Image(copied); err != nil {
		t.Errorf("validate skopeo's copy: %v", err)
	}

	// Pull by digest returns the same image.
	pulled, err := publish.Pull(ctx, pushed.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := pulled.Digest(); d != res.Digest {
		t.Errorf("pulled %s, want %s", d, res.Digest)
	}
}

func TestRebuildUploadsOnlyTheModelLayer(t *testing.T) {
	reg := testenv.StartRegistry(t)
	ctx := context.Background()
	cacheDir := t.TempDir()
	spec := fixture.Spec(t, 1)
	first := buildImage(t, cacheDir, spec)
	repo := reg.Host + "/catdog"
	if _, err := publish.Push(ctx, first.Image, repo, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	spec.ModelDir = fixture.ModelDir(t, 9)
	second := buildImage(t, cacheDir, spec)
	pushed, err := publish.Push(ctx, second.Image, repo, []string{"v2"})
	if err != nil {
		t.Fatal(err)
	}
	cfgDigest, _ := second.Image.ConfigName()
	want := map[v1.Hash]bool{second.Layers[3].Digest: true, cfgDigest: true}
	if len(pushed.Uploaded) != 2 || !want[pushed.Uploaded[0]] || !want[pushed.Uploaded[1]] {
		t.Errorf("uploaded %v, want only the model layer %s and the config %s", pushed.Uploaded, second.Layers[3].Digest, cfgDigest)
	}
	// Pushing the same image again uploads nothing.
	again, err := publish.Push(ctx, second.Image, repo, []string{"v2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Uploaded) != 0 {
		t.Errorf("re-push uploaded %v, want nothing", again.Uploaded)
	}
}

func TestBaseImageReference(t *testing.T) {
	reg := testenv.StartRegistry(t)
	ctx := context.Background()
	cache, err := imagebuild.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Publish a base image made of the Debian base layer, as a registry would serve distroless/cc.
	set, err := imagebuild.DebianBase(ctx, imagebuild.DebianOptions{})
	if err != nil {
		t.Fatal(err)
	}
	baseLayer, err := cache.Layer(ctx, set, imagebuild.LayerOptions{Name: "base"})
	if err != nil {
		t.Fatal(err)
	}
	base, err := mutate.Append(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
		mutate.Addendum{Layer: baseLayer, MediaType: types.OCILayer})
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := base.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/bin", "TZ=UTC"}
	if base, err = mutate.ConfigFile(base, cf); err != nil {
		t.Fatal(err)
	}
	basePush, err := publish.Push(ctx, base, reg.Host+"/base/cc", []string{"debian12"})
	if err != nil {
		t.Fatal(err)
	}

	spec := fixture.Spec(t, 1)
	spec.BaseRef = reg.Host + "/base/cc:debian12"
	res, err := imagebuild.NewBuilder(cache).Build(ctx, spec)
	if err != nil {
		t.Fatalf("Build with base %s: %v", spec.BaseRef, err)
	}
	layers, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	bd, _ := baseLayer.Digest()
	if len(layers) != 4 {
		t.Fatalf("%d layers, want the base's 1 + 3", len(layers))
	}
	if d, _ := layers[0].Digest(); d != bd {
		t.Errorf("first layer %s, want the base layer %s", d, bd)
	}
	got, _ := res.Image.ConfigFile()
	if got.Config.Labels[imagebuild.LabelBaseDig] != basePush.Digest.String() {
		t.Errorf("base digest label = %q, want %s", got.Config.Labels[imagebuild.LabelBaseDig], basePush.Digest)
	}
	env := strings.Join(got.Config.Env, ",")
	if !strings.Contains(env, "TZ=UTC") || !strings.Contains(env, "PATH=/usr/local/sbin") {
		t.Errorf("env %v should keep the base's TZ and override PATH", got.Config.Env)
	}
	pushed, err := publish.Push(ctx, res.Image, reg.Host+"/catdog", []string{"on-base"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pushed.Uploaded) != 4 { // the base layer is already in the registry (mounted or skipped)
		t.Errorf("uploaded %d blobs, want 3 layers + config", len(pushed.Uploaded))
	}
	var ins skopeoInspect
	if err := json.Unmarshal([]byte(skopeo(t, "inspect", "--tls-verify=false", "docker://"+reg.Host+"/catdog:on-base")), &ins); err != nil {
		t.Fatal(err)
	}
	if ins.Digest != res.Digest.String() || len(ins.Layers) != 4 || ins.Layers[0] != bd.String() {
		t.Errorf("skopeo sees %s with layers %v", ins.Digest, ins.Layers)
	}
}

// faultyRegistry is go-containerregistry's in-memory registry answering 503 to the first
// `faults` requests of each kind (blob uploads, manifest puts).
type faultyRegistry struct {
	inner    http.Handler
	faults   int
	status   int
	mu       sync.Mutex
	seen     map[string]int
	injected int
}

func (f *faultyRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := ""
	switch {
	case strings.Contains(r.URL.Path, "/blobs/uploads/"):
		kind = "upload"
	case strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodPut:
		kind = "manifest"
	}
	if kind != "" {
		f.mu.Lock()
		f.seen[kind]++
		inject := f.faults < 0 || f.seen[kind] <= f.faults
		if inject {
			f.injected++
		}
		f.mu.Unlock()
		if inject {
			http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}`, f.status)
			return
		}
	}
	f.inner.ServeHTTP(w, r)
}

func TestPushRetriesTransientErrors(t *testing.T) {
	ctx := context.Background()
	res := buildImage(t, t.TempDir(), fixture.Spec(t, 1))
	tests := []struct {
		name   string
		faults int
		status int
	}{
		{"503 twice", 2, http.StatusServiceUnavailable},
		{"502 once", 1, http.StatusBadGateway},
		{"429 once", 1, http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &faultyRegistry{inner: registry.New(registry.Logger(nopLogger())), faults: tt.faults, status: tt.status, seen: map[string]int{}}
			srv := httptest.NewServer(f)
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			pushed, err := publish.Push(ctx, res.Image, host+"/catdog", []string{"main"}, publish.WithRetryBackoff(fastBackoff()))
			if err != nil {
				t.Fatalf("Push through %d injected %d: %v", tt.faults, tt.status, err)
			}
			if f.injected < tt.faults || pushed.Retried < tt.faults {
				t.Errorf("injected %d faults, push saw %d; want at least %d", f.injected, pushed.Retried, tt.faults)
			}
			ref, _ := name.ParseReference(host + "/catdog:main")
			got, err := remote.Image(ref)
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := got.Digest(); d != res.Digest {
				t.Errorf("registry has %s, want %s", d, res.Digest)
			}
			if err := validate.Image(got); err != nil {
				t.Errorf("validate pushed image: %v", err)
			}
		})
	}
}

func TestPushPermanentErrorIsTyped(t *testing.T) {
	res := buildImage(t, t.TempDir(), fixture.Spec(t, 1))
	f := &faultyRegistry{inner: registry.New(registry.Logger(nopLogger())), faults: -1, status: http.StatusInternalServerError, seen: map[string]int{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	start := time.Now()
	_, err := publish.Push(context.Background(), res.Image, host+"/catdog", []string{"main"}, publish.WithRetryBackoff(fastBackoff()))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusInternalServerError {
		t.Fatalf("Push = %v, want *transport.Error with status 500", err)
	}
	if f.injected < 2 {
		t.Errorf("the push gave up after %d attempts; want retries", f.injected)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("giving up took %v", time.Since(start))
	}
}

func TestPushNeedsTags(t *testing.T) {
	_, err := publish.Push(context.Background(), empty.Image, "127.0.0.1:1/x", nil)
	if !errors.Is(err, publish.ErrNoTags) {
		t.Fatalf("Push without tags = %v, want ErrNoTags", err)
	}
}

func TestLayoutAndTarball(t *testing.T) {
	cacheDir := t.TempDir()
	spec := fixture.Spec(t, 1)
	res := buildImage(t, cacheDir, spec)
	dir := filepath.Join(t.TempDir(), "layout")
	if err := publish.WriteLayout(res.Image, dir, "main"); err != nil {
		t.Fatal(err)
	}
	spec.ModelDir = fixture.ModelDir(t, 5)
	res2 := buildImage(t, cacheDir, spec)
	if err := publish.WriteLayout(res2.Image, dir, "main"); err != nil { // replaces "main"
		t.Fatal(err)
	}
	if err := publish.WriteLayout(res.Image, dir, "old"); err != nil {
		t.Fatal(err)
	}
	for tag, want := range map[string]v1.Hash{"main": res2.Digest, "old": res.Digest} {
		img, err := publish.ReadLayout(dir, tag)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := img.Digest(); d != want {
			t.Errorf("layout %s = %s, want %s", tag, d, want)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("validate layout image: %v", err)
		}
	}
	var ins skopeoInspect
	if err := json.Unmarshal([]byte(skopeo(t, "inspect", "oci:"+dir+":main")), &ins); err != nil {
		t.Fatal(err)
	}
	if ins.Digest != res2.Digest.String() || ins.Labels[imagebuild.LabelSource] == "" {
		t.Errorf("skopeo inspect of the layout: %+v", ins)
	}

	tarPath := filepath.Join(t.TempDir(), "catdog.tar")
	if err := publish.WriteTarball(res.Image, tarPath, []string{"ghcr.io/catdog-mlops/catdog:main"}); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("ghcr.io/catdog-mlops/catdog:main")
	fromTar, err := tarball.ImageFromPath(tarPath, &tag)
	if err != nil {
		t.Fatal(err)
	}
	wantCfg, _ := res.Image.ConfigName()
	if got, _ := fromTar.ConfigName(); got != wantCfg {
		t.Errorf("tarball config %s, want %s", got, wantCfg)
	}
	if ls, _ := fromTar.Layers(); len(ls) != 4 {
		t.Errorf("tarball has %d layers", len(ls))
	}
	if _, err := os.Stat(tarPath); err != nil {
		t.Fatal(err)
	}
	// docker-archive stores layers uncompressed, so skopeo lists their DiffIDs.
	out := skopeo(t, "inspect", "docker-archive:"+tarPath)
	cf, _ := res.Image.ConfigFile()
	if !strings.Contains(out, cf.RootFS.DiffIDs[3].String()) {
		t.Errorf("skopeo inspect docker-archive does not list the model layer %s:\n%s", cf.RootFS.DiffIDs[3], out)
	}
}
