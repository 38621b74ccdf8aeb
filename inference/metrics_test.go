package inference_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	_ "image/jpeg"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/catdog-mlops/catdog/inference"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

func TestMetrics(t *testing.T) {
	h := newHarness(t, newFixed(testSize))
	if err := h.svc.WaitReady(t.Context()); err != nil { // not through /ready: its requests would be counted
		t.Fatal(err)
	}
	cat, dog := pngImage(t, 4, 4, color.White), pngImage(t, 4, 4, color.Black) // white: P(cat) > .5
	for range 3 {
		h.post("/predict", "image/png", cat)
	}
	h.post("/predict", "image/png", dog)
	h.post("/predict", "image/png", nil)
	h.post("/predict", "text/plain", cat)
	h.get("/predict")
	ct, body := multipartBody(t, part{field: "file", data: cat}, part{field: "file", data: dog})
	h.post("/predict/batch", ct, body)

	want := `
# HELP catdog_inference_errors_total Requests that failed, by reason (decode errors, limits, overload, ...).
# TYPE catdog_inference_errors_total counter
catdog_inference_errors_total{reason="empty"} 1
catdog_inference_errors_total{reason="method-not-allowed"} 1
catdog_inference_errors_total{reason="unsupported-media-type"} 1
# HELP catdog_inference_requests_total HTTP requests answered by the inference service, by endpoint and status code.
# TYPE catdog_inference_requests_total counter
catdog_inference_requests_total{code="200",endpoint="predict"} 4
catdog_inference_requests_total{code="200",endpoint="predict_batch"} 1
catdog_inference_requests_total{code="400",endpoint="predict"} 1
catdog_inference_requests_total{code="405",endpoint="predict"} 1
catdog_inference_requests_total{code="415",endpoint="predict"} 1
# HELP catdog_model_info Always 1; labels name the model being served.
# TYPE catdog_model_info gauge
catdog_model_info{name="catdog-test",run_id="run123",version="7"} 1
# HELP catdog_predictions_total Images classified, by predicted class.
# TYPE catdog_predictions_total counter
catdog_predictions_total{class="cat"} 4
catdog_predictions_total{class="dog"} 2
# HELP catdog_inference_in_flight Requests being served right now.
# TYPE catdog_inference_in_flight gauge
catdog_inference_in_flight 0
# HELP catdog_inference_batch_size Images per forward pass of the model.
# TYPE catdog_inference_batch_size histogram
catdog_inference_batch_size_bucket{le="1"} 4
catdog_inference_batch_size_bucket{le="2"} 5
catdog_inference_batch_size_bucket{le="4"} 5
catdog_inference_batch_size_bucket{le="8"} 5
catdog_inference_batch_size_bucket{le="16"} 5
catdog_inference_batch_size_bucket{le="32"} 5
catdog_inference_batch_size_bucket{le="64"} 5
catdog_inference_batch_size_bucket{le="+Inf"} 5
catdog_inference_batch_size_sum 6
catdog_inference_batch_size_count 5
`
	names := []string{"catdog_inference_errors_total", "catdog_inference_requests_total", "catdog_model_info",
		"catdog_predictions_total", "catdog_inference_in_flight", "catdog_inference_batch_size"}
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// Histograms with timing: only the counts are deterministic.
	for name, n := range map[string]int{"catdog_prediction_confidence": 6} {
		if got := histogramCount(t, h.reg, name, nil); got != uint64(n) {
			t.Errorf("%s count = %d, want %d", name, got, n)
		}
	}
	if got := histogramCount(t, h.reg, "catdog_inference_latency_seconds", map[string]string{"endpoint": "predict"}); got != 7 {
		t.Errorf("latency count for predict = %d, want 7", got)
	}

	problems, err := testutil.GatherAndLint(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func histogramCount(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			return m.Histogram.GetSampleCount()
		}
	}
	t.Fatalf("histogram %s %v not found", name, labels)
	return 0
}

// TestPromtoolCheckMetrics runs the real `promtool check metrics` on the /metrics exposition.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := testenv.LookPath(t, "promtool", "install the Debian package: apt-get install prometheus")
	h := newHarness(t, newFixed(testSize))
	h.waitReady()
	h.post("/predict", "image/png", pngImage(t, 4, 4, color.White))
	h.post("/predict", "image/png", nil)
	resp := h.get("/metrics")
	if resp.status != 200 || !bytes.Contains(resp.body, []byte("catdog_predictions_total")) ||
		!bytes.Contains(resp.body, []byte("process_resident_memory_bytes")) || !bytes.Contains(resp.body, []byte("go_goroutines")) {
		t.Fatalf("/metrics: %d\n%s", resp.status, resp.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(resp.body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	// promtool exits 0 with warnings for non-fatal lint problems; there must be none.
	if len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics reported:\n%s", out)
	}
}

func TestLogsAreJSONAndSafe(t *testing.T) {
	h := newHarness(t, newFixed(testSize))
	h.waitReady()
	img := devPhoto(t, "cat.1.jpg")
	const secret = "s3cr3t-token-value"
	req, _ := http.NewRequest("POST", h.srv.URL+"/predict?token="+secret, bytes.NewReader(img))
	req.Header.Set("Content-Type", "image/jpeg")
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Cookie", "session="+secret)
	req.Header.Set("X-Request-Id", "req-42")
	if resp := h.do(req); resp.status != 200 {
		t.Fatalf("status %d", resp.status)
	}
	fake := badInput(t, "fake.jpg")
	req, _ = http.NewRequest("POST", h.srv.URL+"/predict", bytes.NewReader(fake))
	req.Header.Set("Authorization", "Basic "+secret)
	if resp := h.do(req); resp.status != 400 {
		t.Fatalf("fake.jpg status %d", resp.status)
	}

	cfg, _, err := image.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	raw := h.logs.String()
	for _, leak := range []string{secret, "Bearer", "Authorization", "Cookie", string(fake[:12]), string(img[:4])} {
		if strings.Contains(raw, leak) {
			t.Errorf("log contains %q:\n%s", leak, raw)
		}
	}
	// The decoder message quotes the input's first bytes: it must not reach the log, even escaped.
	if q, _ := json.Marshal(string(fake[:12])); strings.Contains(raw, strings.Trim(string(q), `"`)) {
		t.Errorf("log contains the rejected input's bytes:\n%s", raw)
	}
	var predict, rejected map[string]any
	for _, l := range h.logs.lines(t) {
		if l["msg"] != "request" {
			continue
		}
		switch l["status"] {
		case 200.0:
			if l["endpoint"] == "predict" {
				predict = l
			}
		case 400.0:
			rejected = l
		}
	}
	if predict == nil || rejected == nil {
		t.Fatalf("access log lines missing:\n%s", raw)
	}
	for k, want := range map[string]any{"request_id": "req-42", "endpoint": "predict", "method": "POST",
		"images": 1.0, "image_bytes": float64(len(img)), "width": float64(cfg.Width), "height": float64(cfg.Height), "level": "INFO"} {
		if predict[k] != want {
			t.Errorf("log %s = %v, want %v", k, predict[k], want)
		}
	}
	if c, ok := predict["class"].(string); !ok || (c != "cat" && c != "dog") {
		t.Errorf("log class = %v", predict["class"])
	}
	for _, k := range []string{"confidence", "latency_ms", "time"} {
		if _, ok := predict[k]; !ok {
			t.Errorf("log has no %s: %v", k, predict)
		}
	}
	if rejected["reason"] != "unknown-format" || rejected["level"] != "WARN" {
		t.Errorf("rejected request log = %v", rejected)
	}
}

func TestInFlightGauge(t *testing.T) {
	pred := newFixed(testSize)
	pred.gate = make(chan struct{})
	h := newHarness(t, pred, inference.WithWorkers(1))
	h.waitReady()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.post("/predict", "image/png", pngImage(t, 4, 4, color.White))
		}()
	}
	waitFor(t, "3 requests in flight", func() bool { return metricValue(t, h.reg, "catdog_inference_in_flight") == 3 })
	close(pred.gate)
	wg.Wait()
	if v := metricValue(t, h.reg, "catdog_inference_in_flight"); v != 0 {
		t.Errorf("in flight after completion = %v", v)
	}
}
