package imagerun_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/catdog-mlops/catdog/ci/imagebuild"
	"github.com/catdog-mlops/catdog/ci/imagerun"
	"github.com/catdog-mlops/catdog/ci/internal/fixture"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

func TestRunImageUnderChroot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test starts a chroot and must run as root (make test runs as root here)")
	}
	root := testenv.RepoRoot(t)
	bin := filepath.Join(t.TempDir(), "catdog")
	testenv.Run(t, root, nil, "go", "build", "-o", bin, "./ci/imagerun/testdata/fakeserve")
	spec := fixture.Spec(t, 3)
	spec.Binary = bin
	cache, err := imagebuild.NewCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res, err := imagebuild.NewBuilder(cache).Build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	if err := imagerun.Extract(context.Background(), res.Image, rootfs); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(rootfs, "tmp"))
	if err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Fatalf("/tmp in the rootfs: %v %v", fi.Mode(), err)
	}
	cf, _ := res.Image.ConfigFile()
	port := testenv.FreePort(t)
	var logs bytes.Buffer
	p, err := imagerun.Start(rootfs, cf.Config, imagerun.StartOptions{
		Args:   []string{"--model", imagebuild.ModelPath, "--addr", fmt.Sprintf("127.0.0.1:%d", port)},
		Stdout: &logs, Stderr: &logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	sample := []byte("\xff\xd8\xff\xe0 not really a jpeg")
	sr, err := imagerun.Smoke(ctx, base, sample, p.Done())
	if err != nil {
		t.Fatalf("Smoke: %v\n%s", err, logs.String())
	}
	if sr.Prediction.Label != "cat" {
		t.Errorf("prediction %+v", sr.Prediction)
	}
	resp, err := http.Get(base + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var who struct {
		UID, GID     int
		WD, LD       string
		TmpError     string `json:"tmp_error"`
		RootReadable bool   `json:"root_readable"`
		URandomOK    bool   `json:"urandom_ok"`
		ProcOK       bool   `json:"proc_ok"`
		Model        string
	}
	if err := json.NewDecoder(resp.Body).Decode(&who); err != nil {
		t.Fatal(err)
	}
	if who.UID != 65532 || who.GID != 65532 || who.WD != "/home/nonroot" || who.LD != imagebuild.LibraryDir ||
		who.TmpError != "" || who.RootReadable || !who.URandomOK || !who.ProcOK || !strings.Contains(who.Model, `"classes"`) {
		t.Errorf("inside the image: %+v", who)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if ents, err := os.ReadDir(filepath.Join(rootfs, "proc")); err != nil || len(ents) != 0 {
		t.Errorf("/proc still mounted after Close: %d entries, %v", len(ents), err)
	}

	// A server that cannot load its model exits; the smoke test fails fast instead of waiting.
	broken, err := imagerun.Start(rootfs, cf.Config, imagerun.StartOptions{
		Args: []string{"--model", "/models/missing", "--addr", fmt.Sprintf("127.0.0.1:%d", port)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer broken.Close()
	start := time.Now()
	if _, err := imagerun.Smoke(ctx, base, sample, broken.Done()); !errors.Is(err, imagerun.ErrSmokeFailed) || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("Smoke against a server that exits = %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("noticing the exit took %v", time.Since(start))
	}
}

func TestSmokeFailsOnABrokenServer(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/predict", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"label":"cat","probabilities":{"cat":0.9,"dog":0.9}}`))
	})
	ln := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	srv := &http.Server{Addr: ln, Handler: mux}
	go srv.ListenAndServe()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := imagerun.Smoke(ctx, "http://"+ln, []byte("x"), nil)
	if !errors.Is(err, imagerun.ErrSmokeFailed) || !strings.Contains(err.Error(), "0.9") {
		t.Fatalf("Smoke = %v, want ErrSmokeFailed for probabilities not summing to 1", err)
	}
	// Nothing listening: the deadline ends the wait.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	if _, err := imagerun.Smoke(ctx2, fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), []byte("x"), nil); !errors.Is(err, imagerun.ErrSmokeFailed) {
		t.Fatalf("Smoke against nothing = %v", err)
	}
}

func layerImage(t *testing.T, entries []tar.Header) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestExtractRejectsEscapes(t *testing.T) {
	outside := t.TempDir() // an escape would write outside/etc/evil or outside/evil
	tests := []struct {
		name    string
		entries []tar.Header
		wantErr bool // false: the entry is dropped silently (go-containerregistry's Extract)
	}{
		{"dot-dot", []tar.Header{{Name: "../../evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}}, true},
		{"through a symlink", []tar.Header{
			{Name: "escape", Typeflag: tar.TypeSymlink, Linkname: outside, Mode: 0o777},
			{Name: "escape/etc/evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
		}, false},
		{"hard link out", []tar.Header{{Name: "evil", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs := filepath.Join(t.TempDir(), "a", "rootfs")
			err := imagerun.Extract(context.Background(), layerImage(t, tt.entries), rootfs)
			if tt.wantErr && !errors.Is(err, imagerun.ErrUnsafePath) {
				t.Fatalf("Extract = %v, want ErrUnsafePath", err)
			}
			if !tt.wantErr && err != nil && !errors.Is(err, imagerun.ErrUnsafePath) {
				t.Fatalf("Extract = %v", err)
			}
			for _, p := range []string{filepath.Join(outside, "etc", "evil"), filepath.Join(outside, "evil"),
				filepath.Join(filepath.Dir(filepath.Dir(rootfs)), "evil"), filepath.Join(rootfs, "evil")} {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("%s exists: an entry escaped or a dangerous link was created", p)
				}
			}
		})
	}
}
