package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

// fixture is built once by TestMain: the catdog binary and a small model trained on 200
// development photos at 64x64 (the model itself is not good; the serving path is what is tested).
var fixture struct {
	root     string // repository root
	shared   string // shared data
	bin      string // catdog binary
	modelDir string
}

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e setup: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	root := filepath.Join(wd, "..", "..")
	shared := os.Getenv("CATDOG_SHARED_DATA")
	if shared == "" {
		shared = filepath.Join(root, "..", "shared", "data")
	}
	if _, err := os.Stat(filepath.Join(shared, "petimages-dev")); err != nil {
		return 0, fmt.Errorf("shared data not found (set CATDOG_SHARED_DATA): %w", err)
	}
	dir, err := os.MkdirTemp("", "catdog-inference-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	fixture.root, fixture.shared = root, shared
	fixture.bin = filepath.Join(dir, "catdog")
	fixture.modelDir = filepath.Join(dir, "model")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(cwd, name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = cwd
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	t0 := time.Now()
	if err := run(root, "go", "build", "-o", fixture.bin, "./cmd/catdog"); err != nil {
		return 0, err
	}
	photos := filepath.Join(dir, "photos")
	for _, cls := range []string{"Cat", "Dog"} {
		if err := os.MkdirAll(filepath.Join(photos, cls), 0o755); err != nil {
			return 0, err
		}
		for i := range 100 {
			name := fmt.Sprintf("%s.%d.jpg", strings.ToLower(cls), i)
			if err := os.Symlink(filepath.Join(shared, "petimages-dev", cls, name), filepath.Join(photos, cls, name)); err != nil {
				return 0, err
			}
		}
	}
	// The project's hyper-parameters with narrower layers: the serving path is under test, and
	// a cheaper forward pass keeps the 10,000-request load test short on 2 cores.
	params, err := os.ReadFile(filepath.Join(root, "params.yaml"))
	if err != nil {
		return 0, err
	}
	params = regexp.MustCompile(`(?m)^(\s*widths:).*$`).ReplaceAll(params, []byte("${1} [16, 32, 64, 128]"))
	paramsFile := filepath.Join(dir, "params.yaml")
	if err := os.WriteFile(paramsFile, params, 0o644); err != nil {
		return 0, err
	}
	prepared := filepath.Join(dir, "prepared")
	if err := run(dir, fixture.bin, "prepare", "--data", photos, "--out", prepared, "--size", "64", "-q"); err != nil {
		return 0, err
	}
	if err := run(dir, fixture.bin, "train", "--params", paramsFile, "--data", prepared,
		"--out", fixture.modelDir, "--epochs", "1", "--input-size", "64", "--name", "catdog-e2e", "-q"); err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "e2e setup: built catdog and trained a 64x64 model in %v\n", time.Since(t0).Round(time.Millisecond))
	return m.Run(), nil
}

func devPhoto(t testing.TB, name string) string {
	t.Helper()
	cls := "Cat"
	if strings.HasPrefix(name, "dog") {
		cls = "Dog"
	}
	return filepath.Join(fixture.shared, "petimages-dev", cls, name)
}

func badInput(name string) string { return filepath.Join(fixture.shared, "bad-inputs", name) }

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// smallJPEG re-encodes a photo at size x size, a cheap request body for load tests.
func smallJPEG(t testing.TB, path string, size int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := imageprep.Decode(f, imageprep.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, imageprep.Resize(img, size), &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// server is a `catdog serve` process started for a test.
type server struct {
	url  string
	proc *testenv.Process
}

// startServe runs the catdog binary's serve command on a free loopback port and waits for
// /ready to answer 200.
func startServe(t *testing.T, args ...string) *server {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	p := testenv.Start(t, fixture.bin, append([]string{"serve", "--addr", addr}, args...), nil, t.TempDir())
	s := &server{url: "http://" + addr, proc: p}
	s.waitStatus(t, "/ready", http.StatusOK, 60*time.Second)
	return s
}

// waitStatus polls path until it answers want.
func (s *server) waitStatus(t *testing.T, path string, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(s.url + path)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if done, _ := s.proc.Exited(); done || time.Now().After(deadline) {
			t.Fatalf("%s never answered %d (exited %v)\n--- output ---\n%s", path, want, done, s.proc.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func post(t testing.TB, url, contentType string, body []byte) response {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func get(t testing.TB, url string) response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}
