package inference

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a registry with the Go and process collectors, the registry that
// `catdog serve` passes to New and serves on /metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// metrics holds every metric the service exports. Label values are bounded: endpoint is one
// of the route names, code an HTTP status, class one of the model's classes and reason one of
// the error reasons listed in errors.go.
type metrics struct {
	requests    *prometheus.CounterVec   // endpoint, code
	latency     *prometheus.HistogramVec // endpoint
	predictions *prometheus.CounterVec   // class
	errors      *prometheus.CounterVec   // reason
	inFlight    prometheus.Gauge
	queue       prometheus.Gauge
	batchSize   prometheus.Histogram
	confidence  prometheus.Histogram
	modelInfo   *prometheus.GaugeVec // name, version, run_id
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catdog_inference_requests_total",
			Help: "HTTP requests answered by the inference service, by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "catdog_inference_latency_seconds",
			Help: "Time from request arrival to the response being written, by endpoint.",
			// Dense between 1 ms and 100 ms, where CPU inference of a small CNN lands.
			Buckets: []float64{.001, .0025, .005, .0075, .01, .015, .02, .03, .05, .075, .1, .15, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
		predictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catdog_predictions_total",
			Help: "Images classified, by predicted class.",
		}, []string{"class"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catdog_inference_errors_total",
			Help: "Requests that failed, by reason (decode errors, limits, overload, ...).",
		}, []string{"reason"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catdog_inference_in_flight",
			Help: "Requests being served right now.",
		}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catdog_inference_queue_length",
			Help: "Images waiting for a model worker.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "catdog_inference_batch_size",
			Help:    "Images per forward pass of the model.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
		confidence: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "catdog_prediction_confidence",
			Help: "Probability of the predicted class; a shift to lower values signals input drift.",
			// With two classes the top probability is at least 0.5.
			Buckets: []float64{.5, .55, .6, .65, .7, .75, .8, .85, .9, .95, .99, 1},
		}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "catdog_model_info",
			Help: "Always 1; labels name the model being served.",
		}, []string{"name", "version", "run_id"}),
	}
	reg.MustRegister(m.requests, m.latency, m.predictions, m.errors, m.inFlight, m.queue,
		m.batchSize, m.confidence, m.modelInfo)
	return m
}
