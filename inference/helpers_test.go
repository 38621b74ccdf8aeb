package inference_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/inference"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

// fixedPredictor is a deterministic stand-in for the model: P(cat) is a function of the mean
// of the first channel, so different images get different, reproducible answers. It can block
// (gate), fail, panic, and records batch sizes and the OS threads it ran on.
type fixedPredictor struct {
	size int

	gate    chan struct{} // when non-nil, every call after warm-up waits for a receive
	warmErr error         // returned by the warm-up call
	failAll error         // returned by every later call
	panics  bool

	calls   atomic.Int64
	mu      sync.Mutex
	batches []int
	tids    map[int]int
}

func newFixed(size int) *fixedPredictor {
	return &fixedPredictor{size: size, tids: map[int]int{}}
}

func (f *fixedPredictor) Spec() imageprep.Spec {
	s := imageprep.DefaultSpec()
	s.Size = f.size
	return s
}

func (f *fixedPredictor) Predict(x []float32, n int) ([][]float32, error) {
	call := f.calls.Add(1)
	f.mu.Lock()
	f.tids[syscall.Gettid()]++
	if call > 1 {
		f.batches = append(f.batches, n)
	}
	f.mu.Unlock()
	if call == 1 { // warm-up
		if f.warmErr != nil {
			return nil, f.warmErr
		}
		return fixedProbs(x, n, f.size), nil
	}
	if f.gate != nil {
		<-f.gate
	}
	if f.panics {
		panic("boom")
	}
	if f.failAll != nil {
		return nil, f.failAll
	}
	return fixedProbs(x, n, f.size), nil
}

func (f *fixedPredictor) batchSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.batches...)
}

func (f *fixedPredictor) threads() map[int]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int]int{}
	for k, v := range f.tids {
		out[k] = v
	}
	return out
}

// fixedProbs is the fixed predictor's function: P(cat) = sigmoid(mean of channel 0).
func fixedProbs(x []float32, n, size int) [][]float32 {
	per := 3 * size * size
	out := make([][]float32, n)
	for i := range out {
		img := x[i*per : (i+1)*per]
		var sum float64
		for _, v := range img[:size*size] {
			sum += float64(v)
		}
		cat := float32(1 / (1 + math.Exp(-sum/float64(size*size))))
		out[i] = []float32{cat, 1 - cat}
	}
	return out
}

// expectedCat is what the fixed predictor answers for an encoded image, through the same
// preprocessing path the service uses.
func expectedCat(t *testing.T, data []byte, size int) float64 {
	t.Helper()
	s := imageprep.DefaultSpec()
	s.Size = size
	x, err := s.Preprocess(bytes.NewReader(data), imageprep.DefaultLimits())
	if err != nil {
		t.Fatalf("preprocess: %v", err)
	}
	return float64(fixedProbs(x, 1, size)[0][0])
}

// harness is a service on a real loopback listener with its own registry and captured logs.
type harness struct {
	t    *testing.T
	pred *fixedPredictor
	svc  *inference.Service
	reg  *prometheus.Registry
	srv  *httptest.Server
	logs *syncBuffer
}

func newHarness(t *testing.T, pred *fixedPredictor, opts ...inference.Option) *harness {
	t.Helper()
	reg := inference.NewRegistry()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts = append([]inference.Option{inference.WithModelInfo(inference.ModelInfo{
		Name: "catdog-test", Version: "7", RunID: "run123", Source: "fixed", Classes: []string{"cat", "dog"},
	})}, opts...)
	svc, err := inference.New(pred, reg, log, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(func() {
		srv.Close()
		svc.Close()
	})
	return &harness{t: t, pred: pred, svc: svc, reg: reg, srv: srv, logs: logs}
}

// waitReady waits for warm-up through the HTTP endpoint.
func (h *harness) waitReady() {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(h.srv.URL + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("service not ready after 10s (last err %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response (%d) is not JSON: %v\n%s", r.status, err, r.body)
	}
}

func (h *harness) do(req *http.Request) response {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func (h *harness) post(path, contentType string, body []byte) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return h.do(req)
}

func (h *harness) get(path string) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(req)
}

// part is one multipart part.
type part struct {
	field, filename, contentType string
	data                         []byte
}

func multipartBody(t testing.TB, parts ...part) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, p := range parts {
		hdr := textproto.MIMEHeader{}
		cd := `form-data; name="` + p.field + `"`
		if p.filename != "" {
			cd += `; filename="` + p.filename + `"`
		}
		hdr.Set("Content-Disposition", cd)
		if p.contentType != "" {
			hdr.Set("Content-Type", p.contentType)
		}
		pw, err := w.CreatePart(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pw.Write(p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), b.Bytes()
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func devPhoto(t testing.TB, name string) []byte {
	t.Helper()
	cls := "Cat"
	if name[:3] == "dog" {
		cls = "Dog"
	}
	return readFile(t, filepath.Join(testenv.SharedData(t), "petimages-dev", cls, name))
}

func badInput(t testing.TB, name string) []byte {
	t.Helper()
	return readFile(t, filepath.Join(testenv.SharedData(t), "bad-inputs", name))
}

// pngImage encodes a w x h PNG filled with c.
func pngImage(t testing.TB, w, h int, c color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// syncBuffer is a goroutine-safe log sink whose JSON lines the tests read.
type syncBuffer struct{ testenv.SyncBuffer }

// lines decodes every JSON log line.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(s.String())))
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, s.String())
		}
		out = append(out, m)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// metricValue gathers reg and returns the value of the unlabelled gauge or counter name.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.Metric) != 1 {
			continue
		}
		m := mf.Metric[0]
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// newServer serves h on a loopback listener for the test and returns its URL.
func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
