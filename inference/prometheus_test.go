package inference_test

import (
	"image/color"
	"strings"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

// TestPrometheusScrapesService starts a real Prometheus server that scrapes the service and
// reads the request and prediction counters back through its HTTP API.
func TestPrometheusScrapesService(t *testing.T) {
	h := newHarness(t, newFixed(testSize))
	h.waitReady()
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{
		Targets:        []string{strings.TrimPrefix(h.srv.URL, "http://")},
		ScrapeInterval: 500 * time.Millisecond,
	})
	cat, dog := pngImage(t, 4, 4, color.White), pngImage(t, 4, 4, color.Black)
	for range 5 {
		h.post("/predict", "image/png", cat)
	}
	for range 2 {
		h.post("/predict", "image/png", dog)
	}
	h.post("/predict", "image/png", nil)

	up := prom.WaitQuery(t, `up{job="catdog"}`, 30*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 && s[0].Value == 1 })
	t.Logf("target up: %v", up)

	expect := func(query string, want float64) {
		t.Helper()
		prom.WaitQuery(t, query, 30*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 && s[0].Value == want })
	}
	expect(`catdog_inference_requests_total{endpoint="predict",code="200"}`, 7)
	expect(`catdog_inference_requests_total{endpoint="predict",code="400"}`, 1)
	expect(`catdog_predictions_total{class="cat"}`, 5)
	expect(`catdog_predictions_total{class="dog"}`, 2)
	expect(`catdog_inference_errors_total{reason="empty"}`, 1)
	expect(`catdog_model_info{name="catdog-test",version="7",run_id="run123"}`, 1)
	expect(`sum(catdog_prediction_confidence_count)`, 7)
	expect(`catdog_inference_latency_seconds_count{endpoint="predict"}`, 8)
}
