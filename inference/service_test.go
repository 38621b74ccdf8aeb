package inference_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image/color"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/inference"
)

const testSize = 32

func TestPredictAcceptedInputs(t *testing.T) {
	h := newHarness(t, newFixed(testSize))
	h.waitReady()
	cat := devPhoto(t, "cat.1.jpg")
	mpCT, mpBody := multipartBody(t, part{field: "file", filename: "cat.1.jpg", contentType: "image/jpeg", data: cat})
	mpNoCT, mpNoCTBody := multipartBody(t, part{field: "note", data: []byte("hello")}, part{field: "file", filename: "x", data: cat})
	tests := []struct {
		name        string
		contentType string
		body        []byte
		image       []byte
	}{
		{"multipart", mpCT, mpBody, cat},
		{"multipart part without type after another field", mpNoCT, mpNoCTBody, cat},
		{"raw jpeg", "image/jpeg", cat, cat},
		{"raw octet-stream", "application/octet-stream", cat, cat},
		{"raw without content type", "", cat, cat},
		{"raw jpeg with params", "image/jpeg; charset=binary", cat, cat},
		{"grayscale", "image/jpeg", badInput(t, "grayscale.jpg"), badInput(t, "grayscale.jpg")},
		{"cmyk", "image/jpeg", badInput(t, "cmyk.jpg"), badInput(t, "cmyk.jpg")},
		{"alpha png", "image/png", badInput(t, "alpha.png"), badInput(t, "alpha.png")},
		{"tiny png", "image/png", pngImage(t, 1, 1, color.White), pngImage(t, 1, 1, color.White)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.post("/predict", tt.contentType, tt.body)
			if resp.status != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", resp.status, resp.body)
			}
			if ct := resp.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var got inference.PredictResponse
			resp.json(t, &got)
			want := expectedCat(t, tt.image, testSize)
			if math.Abs(got.Probabilities["cat"]-want) > 1e-6 {
				t.Errorf("P(cat) = %v, want %v", got.Probabilities["cat"], want)
			}
			if sum := got.Probabilities["cat"] + got.Probabilities["dog"]; math.Abs(sum-1) > 1e-6 {
				t.Errorf("probabilities sum to %v", sum)
			}
			wantLabel := "dog"
			if want > 0.5 {
				wantLabel = "cat"
			}
			if got.Label != wantLabel || got.Confidence != math.Max(got.Probabilities["cat"], got.Probabilities["dog"]) {
				t.Errorf("label %q confidence %v for %v", got.Label, got.Confidence, got.Probabilities)
			}
			if got.ModelVersion != "7" || got.LatencyMS <= 0 {
				t.Errorf("model_version %q latency_ms %v", got.ModelVersion, got.LatencyMS)
			}
		})
	}
}

// pngHeader is a valid PNG signature and IHDR chunk claiming w x h pixels, with no image
// data: a decompression bomb has to be refused from this header alone.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	b.Write(chunk)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestPredictRejectsBadInput(t *testing.T) {
	h := newHarness(t, newFixed(testSize), inference.WithMaxBodyBytes(1<<20))
	h.waitReady()
	cat := devPhoto(t, "cat.1.jpg")
	noFileCT, noFileBody := multipartBody(t, part{field: "image", filename: "a.jpg", data: cat})
	textPartCT, textPartBody := multipartBody(t, part{field: "file", filename: "a.txt", contentType: "text/plain", data: []byte("hi")})
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        []byte
		status      int
		reason      string
	}{
		{"empty body", "POST", "/predict", "image/jpeg", nil, 400, "empty"},
		{"empty file", "POST", "/predict", "image/jpeg", badInput(t, "empty.jpg"), 400, "empty"},
		{"not an image", "POST", "/predict", "image/jpeg", badInput(t, "fake.jpg"), 400, "unknown-format"},
		{"truncated", "POST", "/predict", "image/jpeg", badInput(t, "truncated.jpg"), 400, "truncated"},
		{"text content type", "POST", "/predict", "text/plain", cat, 415, "unsupported-media-type"},
		{"form urlencoded", "POST", "/predict", "application/x-www-form-urlencoded", cat, 415, "unsupported-media-type"},
		{"gif content type", "POST", "/predict", "image/gif", cat, 415, "unsupported-media-type"},
		{"gif bytes", "POST", "/predict", "application/octet-stream", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), 415, "unsupported-format"},
		{"bad content type", "POST", "/predict", "image/jpeg; =", cat, 415, "unsupported-media-type"},
		{"multipart text part", "POST", "/predict", textPartCT, textPartBody, 415, "unsupported-media-type"},
		{"multipart without file", "POST", "/predict", noFileCT, noFileBody, 400, "bad-request"},
		{"multipart without boundary", "POST", "/predict", "multipart/form-data", cat, 400, "bad-request"},
		{"body over limit", "POST", "/predict", "image/jpeg", bytes.Repeat(cat, 1+(1<<20)/len(cat)), 413, "body-too-large"},
		{"decompression bomb", "POST", "/predict", "image/png", pngHeader(100000, 100000), 413, "too-many-pixels"},
		{"GET predict", "GET", "/predict", "", nil, 405, "method-not-allowed"},
		{"PUT batch", "PUT", "/predict/batch", "", nil, 405, "method-not-allowed"},
		{"POST health", "POST", "/health", "", nil, 405, "method-not-allowed"},
		{"unknown path", "GET", "/nope", "", nil, 404, "not-found"},
		{"batch raw body", "POST", "/predict/batch", "image/jpeg", cat, 415, "unsupported-media-type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, h.srv.URL+tt.path, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp := h.do(req)
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tt.status, resp.body)
			}
			var got struct {
				Error     inference.Error `json:"error"`
				RequestID string          `json:"request_id"`
			}
			resp.json(t, &got)
			if got.Error.Reason != tt.reason || got.Error.Status != tt.status || got.Error.Message == "" {
				t.Errorf("error = %+v, want reason %q", got.Error, tt.reason)
			}
			if got.RequestID == "" || got.RequestID != resp.header.Get("X-Request-Id") {
				t.Errorf("request_id %q, header %q", got.RequestID, resp.header.Get("X-Request-Id"))
			}
			if tt.status == 405 && resp.header.Get("Allow") == "" {
				t.Error("405 without Allow header")
			}
		})
	}
	// The service still answers after all that.
	if resp := h.post("/predict", "image/jpeg", cat); resp.status != http.StatusOK {
		t.Fatalf("after bad inputs: status %d", resp.status)
	}
}

func TestPredictBatch(t *testing.T) {
	h := newHarness(t, newFixed(testSize), inference.WithMaxBatchFiles(4))
	h.waitReady()
	names := []string{"cat.1.jpg", "dog.2.jpg", "cat.3.jpg"}
	var parts []part
	for _, n := range names {
		parts = append(parts, part{field: "file", filename: n, contentType: "image/jpeg", data: devPhoto(t, n)})
	}
	ct, body := multipartBody(t, parts...)
	resp := h.post("/predict/batch", ct, body)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	var got inference.BatchResponse
	resp.json(t, &got)
	if len(got.Predictions) != len(names) {
		t.Fatalf("%d predictions for %d files", len(got.Predictions), len(names))
	}
	for i, p := range got.Predictions {
		want := expectedCat(t, devPhoto(t, names[i]), testSize)
		if p.Filename != names[i] || math.Abs(p.Probabilities["cat"]-want) > 1e-6 {
			t.Errorf("prediction %d = %+v, want %s with P(cat) %v", i, p, names[i], want)
		}
	}
	if sizes := h.pred.batchSizes(); len(sizes) != 1 || sizes[0] != 3 {
		t.Errorf("forward passes %v, want one of 3 images", sizes)
	}

	t.Run("bad file names the file", func(t *testing.T) {
		ct, body := multipartBody(t, parts[0], part{field: "file", filename: "bad.jpg", data: badInput(t, "truncated.jpg")})
		resp := h.post("/predict/batch", ct, body)
		var e struct{ Error inference.Error }
		resp.json(t, &e)
		if resp.status != 400 || e.Error.Reason != "truncated" || !strings.Contains(e.Error.Message, `file 1 ("bad.jpg")`) {
			t.Errorf("status %d error %+v", resp.status, e.Error)
		}
	})
	t.Run("too many files", func(t *testing.T) {
		ct, body := multipartBody(t, parts[0], parts[0], parts[0], parts[0], parts[0])
		resp := h.post("/predict/batch", ct, body)
		var e struct{ Error inference.Error }
		resp.json(t, &e)
		if resp.status != 413 || e.Error.Reason != "too-many-files" {
			t.Errorf("status %d error %+v", resp.status, e.Error)
		}
	})
	t.Run("no files", func(t *testing.T) {
		ct, body := multipartBody(t, part{field: "other", data: []byte("x")})
		if resp := h.post("/predict/batch", ct, body); resp.status != 400 {
			t.Errorf("status %d: %s", resp.status, resp.body)
		}
	})
}

func TestWorkersRunOnLockedThreads(t *testing.T) {
	pred := newFixed(testSize)
	h := newHarness(t, pred, inference.WithWorkers(2))
	h.waitReady()
	img := devPhoto(t, "dog.5.jpg")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if resp := h.post("/predict", "image/jpeg", img); resp.status != 200 {
					t.Errorf("status %d", resp.status)
				}
			}
		}()
	}
	wg.Wait()
	// 80 requests plus 2 warm-ups ran on exactly the two workers' OS threads.
	tids := pred.threads()
	total := 0
	for _, n := range tids {
		total += n
	}
	if len(tids) != 2 || total != 82 {
		t.Errorf("predictor ran on threads %v, want 2 threads and 82 calls", tids)
	}
}

func TestOverloadAnswers503(t *testing.T) {
	pred := newFixed(testSize)
	pred.gate = make(chan struct{})
	h := newHarness(t, pred, inference.WithQueueSize(1))
	h.waitReady()
	img := pngImage(t, 8, 8, color.Black)
	results := make(chan int, 2)
	send := func() { results <- h.post("/predict", "image/png", img).status }
	go send() // taken by the worker, which blocks on the gate
	waitFor(t, "first request on the worker", func() bool { return pred.calls.Load() == 2 })
	go send() // waits in the queue
	waitFor(t, "second request queued", func() bool { return metricValue(t, h.reg, "catdog_inference_queue_length") == 1 })

	resp := h.post("/predict", "image/png", img)
	if resp.status != http.StatusServiceUnavailable || resp.header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q: %s", resp.status, resp.header.Get("Retry-After"), resp.body)
	}
	var e struct{ Error inference.Error }
	resp.json(t, &e)
	if e.Error.Reason != "overloaded" {
		t.Errorf("reason %q", e.Error.Reason)
	}
	close(pred.gate)
	for range 2 {
		if s := <-results; s != 200 {
			t.Errorf("accepted request got %d", s)
		}
	}
}

func TestPredictTimeout(t *testing.T) {
	pred := newFixed(testSize)
	pred.gate = make(chan struct{})
	h := newHarness(t, pred, inference.WithPredictTimeout(50*time.Millisecond))
	h.waitReady()
	resp := h.post("/predict", "image/png", pngImage(t, 4, 4, color.White))
	close(pred.gate)
	var e struct{ Error inference.Error }
	resp.json(t, &e)
	if resp.status != 503 || e.Error.Reason != "timeout" || resp.header.Get("Retry-After") == "" {
		t.Errorf("status %d error %+v", resp.status, e.Error)
	}
}

func TestPredictorFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*fixedPredictor)
	}{
		{"error", func(p *fixedPredictor) { p.failAll = errors.New("libtorch: out of memory") }},
		{"panic", func(p *fixedPredictor) { p.panics = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pred := newFixed(testSize)
			tc.set(pred)
			h := newHarness(t, pred)
			h.waitReady()
			for range 2 { // the worker survives the first failure
				resp := h.post("/predict", "image/png", pngImage(t, 4, 4, color.White))
				var e struct{ Error inference.Error }
				resp.json(t, &e)
				if resp.status != 500 || e.Error.Reason != "internal" || strings.Contains(e.Error.Message, "libtorch") {
					t.Errorf("status %d error %+v", resp.status, e.Error)
				}
			}
			if !strings.Contains(h.logs.String(), `"level":"ERROR"`) {
				t.Error("internal error not logged at ERROR level")
			}
		})
	}
}

func TestReadyLifecycle(t *testing.T) {
	t.Run("warm-up, then drain", func(t *testing.T) {
		pred := newFixed(testSize)
		h := newHarness(t, pred)
		h.waitReady()
		if resp := h.get("/health"); resp.status != 200 {
			t.Errorf("health %d", resp.status)
		}
		h.svc.Drain()
		resp := h.get("/ready")
		if resp.status != 503 || !strings.Contains(string(resp.body), "draining") {
			t.Errorf("ready while draining: %d %s", resp.status, resp.body)
		}
		if resp := h.get("/health"); resp.status != 200 {
			t.Errorf("health while draining %d", resp.status)
		}
		// Draining does not refuse predictions: the HTTP server's shutdown does.
		if resp := h.post("/predict", "image/png", pngImage(t, 4, 4, color.White)); resp.status != 200 {
			t.Errorf("predict while draining: %d", resp.status)
		}
	})
	t.Run("failed warm-up", func(t *testing.T) {
		pred := newFixed(testSize)
		pred.warmErr = errors.New("bad weights")
		h := newHarness(t, pred)
		if err := h.svc.WaitReady(t.Context()); err == nil || !strings.Contains(err.Error(), "bad weights") {
			t.Fatalf("WaitReady = %v", err)
		}
		resp := h.get("/ready")
		if resp.status != 503 || !strings.Contains(string(resp.body), "failed") {
			t.Errorf("ready after failed warm-up: %d %s", resp.status, resp.body)
		}
	})
	t.Run("loading handler", func(t *testing.T) {
		sw := inference.NewSwap(inference.Loading())
		srv := newServer(t, sw)
		for path, want := range map[string]int{"/health": 200, "/ready": 503, "/predict": 503} {
			resp, err := http.Get(srv + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("loading %s = %d, want %d", path, resp.StatusCode, want)
			}
		}
		h := newHarness(t, newFixed(testSize))
		h.waitReady()
		sw.Set(h.svc)
		resp, err := http.Get(srv + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("after swap /ready = %d", resp.StatusCode)
		}
	})
}

func TestRequestID(t *testing.T) {
	h := newHarness(t, newFixed(testSize))
	for _, tc := range []struct{ sent, want string }{
		{"abc-123", "abc-123"},
		{"bad id with spaces", ""},
		{strings.Repeat("a", 65), ""},
		{"", ""},
	} {
		req, _ := http.NewRequest("GET", h.srv.URL+"/health", nil)
		if tc.sent != "" {
			req.Header.Set("X-Request-Id", tc.sent)
		}
		got := h.do(req).header.Get("X-Request-Id")
		if tc.want != "" && got != tc.want || tc.want == "" && (got == "" || got == tc.sent) {
			t.Errorf("sent %q, got %q", tc.sent, got)
		}
	}
}

func TestVersion(t *testing.T) {
	h := newHarness(t, newFixed(testSize), inference.WithBatching(4, time.Millisecond))
	var v inference.VersionResponse
	h.get("/version").json(t, &v)
	want := inference.ModelInfo{Name: "catdog-test", Version: "7", RunID: "run123", Source: "fixed", Classes: []string{"cat", "dog"}}
	if fmt.Sprint(v.Model) != fmt.Sprint(want) || v.InputSize != testSize || v.MaxBatch != 4 || v.GoVersion == "" {
		t.Errorf("version = %+v", v)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, opt := range map[string]inference.Option{
		"workers":   inference.WithWorkers(0),
		"queue":     inference.WithQueueSize(0),
		"batch":     inference.WithBatching(0, 0),
		"wait":      inference.WithBatching(2, -time.Second),
		"body":      inference.WithMaxBodyBytes(0),
		"files":     inference.WithMaxBatchFiles(0),
		"timeout":   inference.WithPredictTimeout(0),
		"one class": inference.WithModelInfo(inference.ModelInfo{Classes: []string{"cat"}}),
	} {
		if _, err := inference.New(newFixed(testSize), inference.NewRegistry(), nil, opt); err == nil {
			t.Errorf("%s: New accepted a bad option", name)
		}
	}
}

// TestMicroBatching queues requests behind a busy worker and checks that the worker runs them
// as one forward pass and that every request still gets the answer for its own image.
func TestMicroBatching(t *testing.T) {
	pred := newFixed(testSize)
	pred.gate = make(chan struct{})
	h := newHarness(t, pred, inference.WithBatching(8, 20*time.Millisecond))
	h.waitReady()
	type answer struct {
		i   int
		cat float64
		s   int
	}
	answers := make(chan answer, 6)
	imgs := make([][]byte, 6)
	for i := range imgs {
		v := uint8(40 * i)
		imgs[i] = pngImage(t, 4, 4, color.RGBA{v, v, v, 255})
	}
	send := func(i int) {
		resp := h.post("/predict", "image/png", imgs[i])
		var p inference.PredictResponse
		if resp.status == 200 {
			resp.json(t, &p)
		}
		answers <- answer{i, p.Probabilities["cat"], resp.status}
	}
	go send(0)
	waitFor(t, "first request on the worker", func() bool { return pred.calls.Load() == 2 })
	for i := 1; i < 6; i++ {
		go send(i)
	}
	waitFor(t, "five requests queued", func() bool { return metricValue(t, h.reg, "catdog_inference_queue_length") == 5 })
	close(pred.gate)
	for range 6 {
		a := <-answers
		want := expectedCat(t, imgs[a.i], testSize)
		if a.s != 200 || math.Abs(a.cat-want) > 1e-6 {
			t.Errorf("request %d: status %d P(cat) %v, want %v", a.i, a.s, a.cat, want)
		}
	}
	if got := pred.batchSizes(); fmt.Sprint(got) != "[1 5]" {
		t.Errorf("forward passes %v, want [1 5]", got)
	}
}
