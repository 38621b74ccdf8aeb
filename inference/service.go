package inference

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/catdog-mlops/catdog/imageprep"
)

// Predictor runs the model on preprocessed images. *model.Model implements it; handler tests
// use a fixed predictor.
type Predictor interface {
	// Predict returns n rows of class probabilities for x, which holds n*3*S*S normalised
	// CHW floats. It is called only from the service's OS-thread-locked workers.
	Predict(x []float32, n int) ([][]float32, error)
	// Spec is the preprocessing the model was trained with.
	Spec() imageprep.Spec
}

// ModelInfo describes the model being served, for /version, responses and catdog_model_info.
type ModelInfo struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	RunID   string   `json:"run_id"`
	Source  string   `json:"source"`  // model directory or models:/ URI
	Classes []string `json:"classes"` // ordered as the predictor's output columns
}

// Route names: the endpoint label of the request metrics and the log field.
const (
	EndpointPredict      = "predict"
	EndpointPredictBatch = "predict_batch"
	EndpointHealth       = "health"
	EndpointReady        = "ready"
	EndpointMetrics      = "metrics"
	EndpointVersion      = "version"
	EndpointOpenAPI      = "openapi"
	EndpointOther        = "other"
)

// Service is the prediction HTTP service. It implements http.Handler.
type Service struct {
	cfg      config
	spec     imageprep.Spec
	log      *slog.Logger
	m        *metrics
	pool     *pool
	prep     chan struct{} // decode slots: at most GOMAXPROCS images are preprocessed at once
	handler  http.Handler
	draining atomic.Bool
	drift    *driftMonitor // nil when drift monitoring is off
}

var _ http.Handler = (*Service)(nil)

// New builds the service around p, registers its metrics with reg and starts the model
// workers, which warm up in the background (/ready answers 503 until they have). /metrics
// serves reg when it is also a prometheus.Gatherer (a *prometheus.Registry is both), or the
// gatherer given WithGatherer. Call Close to stop the workers.
func New(p Predictor, reg prometheus.Registerer, log *slog.Logger, opts ...Option) (*Service, error) {
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	spec := p.Spec()
	if spec.Size <= 0 || spec.Size > 4096 {
		return nil, fmt.Errorf("inference: predictor input size %d out of range", spec.Size)
	}
	if cfg.gatherer == nil {
		g, ok := reg.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("inference: registerer is not a Gatherer; pass WithGatherer")
		}
		cfg.gatherer = g
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, spec: spec, log: log, m: newMetrics(reg), prep: make(chan struct{}, runtime.GOMAXPROCS(0))}
	mi := cfg.model
	s.m.modelInfo.WithLabelValues(mi.Name, mi.Version, mi.RunID).Set(1)
	for _, c := range mi.Classes {
		s.m.predictions.WithLabelValues(c)
	}
	for _, e := range []string{EndpointPredict, EndpointPredictBatch} {
		s.m.requests.WithLabelValues(e, "200")
		s.m.latency.WithLabelValues(e)
	}
	if cfg.driftProfile != nil {
		d, err := newDriftMonitor(cfg.driftProfile, cfg.driftConfig, spec.Size, reg, log)
		if err != nil {
			return nil, err
		}
		s.drift = d
	}
	s.pool = newPool(p, spec, s.m, cfg.workers, cfg.queue, cfg.maxBatch, cfg.maxWait)
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Drain makes /ready answer 503 so that load balancers stop sending traffic; requests keep
// being served until the HTTP server shuts down.
func (s *Service) Drain() { s.draining.Store(true) }

// Close stops the model workers after they finish queued work. Call it after the HTTP server
// has shut down; predictions submitted afterwards fail with 503.
func (s *Service) Close() {
	s.pool.close()
	if s.drift != nil {
		s.drift.stop()
	}
}

// Ready reports whether the workers are warm (and the service is not draining), and the
// warm-up error if warm-up failed.
func (s *Service) Ready() (bool, error) {
	ok, err := s.pool.ready()
	return ok && err == nil && !s.draining.Load(), err
}

// WaitReady blocks until warm-up is over; it returns the warm-up error or ctx's.
func (s *Service) WaitReady(ctx context.Context) error {
	select {
	case <-s.pool.warmed:
		_, err := s.pool.ready()
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

//go:embed openapi.json
var openAPI []byte

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	predict := func(name string, h handlerFunc) http.Handler {
		var next http.Handler = s.wrap(name, []string{http.MethodPost}, h)
		next = http.MaxBytesHandler(next, s.cfg.maxBody)
		next = promhttp.InstrumentHandlerInFlight(s.m.inFlight, next)
		return s.instrument(name, next)
	}
	plain := func(name string, h handlerFunc) http.Handler {
		return s.instrument(name, s.wrap(name, []string{http.MethodGet, http.MethodHead}, h))
	}
	mux.Handle("/predict", predict(EndpointPredict, s.predict))
	mux.Handle("/predict/batch", predict(EndpointPredictBatch, s.predictBatch))
	mux.Handle("/health", plain(EndpointHealth, s.health))
	mux.Handle("/ready", plain(EndpointReady, s.ready))
	metricsHandler := promhttp.HandlerFor(s.cfg.gatherer, promhttp.HandlerOpts{})
	mux.Handle("/metrics", plain(EndpointMetrics, func(w http.ResponseWriter, r *http.Request, _ *record) error {
		metricsHandler.ServeHTTP(w, r)
		return nil
	}))
	mux.Handle("/version", plain(EndpointVersion, s.version))
	mux.Handle("/openapi.json", plain(EndpointOpenAPI, func(w http.ResponseWriter, _ *http.Request, _ *record) error {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
		return nil
	}))
	mux.Handle("/", s.instrument(EndpointOther, s.wrap(EndpointOther, nil, func(http.ResponseWriter, *http.Request, *record) error {
		return apiError(http.StatusNotFound, ReasonNotFound, "no such endpoint")
	})))
	return mux
}

// instrument counts requests and observes latency for one endpoint.
func (s *Service) instrument(endpoint string, next http.Handler) http.Handler {
	l := prometheus.Labels{"endpoint": endpoint}
	return promhttp.InstrumentHandlerCounter(s.m.requests.MustCurryWith(l),
		promhttp.InstrumentHandlerDuration(s.m.latency.MustCurryWith(l), next))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func millis(d time.Duration) float64 {
	return math.Round(float64(d.Microseconds())) / 1000
}
