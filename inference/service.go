package inference

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/internal/buildinfo"
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

// Prediction is the answer for one image.
type Prediction struct {
	Filename      string             `json:"filename,omitempty"`
	Label         string             `json:"label"`
	Confidence    float64            `json:"confidence"`
	Probabilities map[string]float64 `json:"probabilities"`
}

// PredictResponse is the body of a successful POST /predict.
type PredictResponse struct {
	Prediction
	ModelVersion string  `json:"model_version"`
	LatencyMS    float64 `json:"latency_ms"`
}

// BatchResponse is the body of a successful POST /predict/batch.
type BatchResponse struct {
	Predictions  []Prediction `json:"predictions"`
	ModelVersion string       `json:"model_version"`
	LatencyMS    float64      `json:"latency_ms"`
}

func (s *Service) predict(w http.ResponseWriter, r *http.Request, rec *record) error {
	x, err := s.decodeSingle(r, rec)
	if err != nil {
		return err
	}
	preds, err := s.run(r.Context(), x, 1)
	if err != nil {
		return err
	}
	rec.class, rec.confidence = preds[0].Label, preds[0].Confidence
	writeJSON(w, http.StatusOK, PredictResponse{
		Prediction:   preds[0],
		ModelVersion: s.cfg.model.Version,
		LatencyMS:    millis(time.Since(rec.start)),
	})
	return nil
}

func (s *Service) predictBatch(w http.ResponseWriter, r *http.Request, rec *record) error {
	imgs, err := s.readMultipart(r, s.cfg.maxFiles)
	if err != nil {
		return err
	}
	if len(imgs) == 0 {
		return apiError(http.StatusBadRequest, ReasonBadRequest, `no "file" parts in the form`)
	}
	n := len(imgs)
	x := make([]byte, 0, n*s.spec.Size*s.spec.Size*3)
	for i, img := range imgs {
		rec.observeImage(img.data, s.cfg.limits)
		xi, err := s.preprocess(r.Context(), img.data, nil)
		if err != nil {
			e := toError(err)
			e.Message = fmt.Sprintf("file %d (%q): %s", i, img.filename, e.Message)
			return e
		}
		x = append(x, xi...)
	}
	preds, err := s.run(r.Context(), x, n)
	if err != nil {
		return err
	}
	for i := range preds {
		preds[i].Filename = imgs[i].filename
	}
	rec.images = n
	writeJSON(w, http.StatusOK, BatchResponse{
		Predictions:  preds,
		ModelVersion: s.cfg.model.Version,
		LatencyMS:    millis(time.Since(rec.start)),
	})
	return nil
}

// decodeSingle reads the image of POST /predict and preprocesses it with imageprep's shared
// path. Every failure is an *Error, an *imageprep.DecodeError or an *http.MaxBytesError.
func (s *Service) decodeSingle(r *http.Request, rec *record) ([]byte, error) {
	img, err := s.readSingle(r)
	if err != nil {
		return nil, err
	}
	rec.observeImage(img.data, s.cfg.limits)
	return s.preprocess(r.Context(), img.data, rec)
}

// preprocess runs imageprep's shared path on one image, at most GOMAXPROCS at a time. Waiting
// requests are admitted in arrival order (a channel's blocked senders are served FIFO), so
// under a burst images are decoded in the order they came instead of all at once competing
// with the model threads for the CPU: this keeps the tail latency close to the median. With
// drift monitoring on, the image's features go into the window and, when rec is set, into the
// request's log line.
func (s *Service) preprocess(ctx context.Context, data []byte, rec *record) ([]byte, error) {
	select {
	case s.prep <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.prep }()
	// imageprep.DecodeResized is the first half of Spec.Preprocess; the model worker applies
	// the second half, Spec.Normalize, right before the forward pass.
	rgb, src, err := imageprep.DecodeResized(data, s.spec.Size, s.cfg.limits, nil)
	if err == nil && s.drift != nil {
		if f, ok := s.drift.observe(rgb, src, len(data)); ok && rec != nil {
			rec.features = &f
		}
	}
	return rgb, err
}

// run sends n preprocessed images to the workers and turns probabilities into predictions.
func (s *Service) run(ctx context.Context, x []byte, n int) ([]Prediction, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.predictTimeout)
	defer cancel()
	res, err := s.pool.submit(ctx, x, n)
	if err != nil {
		return nil, err
	}
	classes := s.cfg.model.Classes
	preds := make([]Prediction, n)
	for i, row := range res.probs {
		if len(row) != len(classes) {
			return nil, fmt.Errorf("inference: model gave %d probabilities for %d classes", len(row), len(classes))
		}
		p := Prediction{Probabilities: make(map[string]float64, len(classes))}
		best := -1.0
		for c, v := range row {
			f := float64(v)
			if math.IsNaN(f) {
				return nil, errors.New("inference: model gave NaN probabilities")
			}
			p.Probabilities[classes[c]] = f
			if f > best {
				best, p.Label = f, classes[c]
			}
		}
		p.Confidence = best
		preds[i] = p
	}
	for _, p := range preds {
		s.m.predictions.WithLabelValues(p.Label).Inc()
		s.m.confidence.Observe(p.Confidence)
	}
	return preds, nil
}

func (s *Service) health(w http.ResponseWriter, _ *http.Request, _ *record) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Service) ready(w http.ResponseWriter, _ *http.Request, _ *record) error {
	warm, err := s.pool.ready()
	switch {
	case s.draining.Load():
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
	case !warm:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "warming"})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "failed", "error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
	return nil
}

// VersionResponse is the body of GET /version.
type VersionResponse struct {
	Model         ModelInfo `json:"model"`
	InputSize     int       `json:"input_size"`
	CatdogVersion string    `json:"catdog_version"`
	GoVersion     string    `json:"go_version"`
	Workers       int       `json:"workers"`
	MaxBatch      int       `json:"max_batch"`
}

func (s *Service) version(w http.ResponseWriter, _ *http.Request, _ *record) error {
	writeJSON(w, http.StatusOK, VersionResponse{
		Model:         s.cfg.model,
		InputSize:     s.spec.Size,
		CatdogVersion: buildinfo.Version(),
		GoVersion:     runtime.Version(),
		Workers:       s.cfg.workers,
		MaxBatch:      s.cfg.maxBatch,
	})
	return nil
}

// upload is one image read from a request.
type upload struct {
	filename string
	data     []byte
}

// readSingle reads the image of POST /predict: the "file" part of a multipart form, or the
// whole body when it is sent raw with an image Content-Type.
func (s *Service) readSingle(r *http.Request) (upload, error) {
	mt, _, err := mediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return upload{}, err
	}
	if mt == "multipart/form-data" {
		imgs, err := s.readMultipart(r, 1)
		if err != nil {
			return upload{}, err
		}
		if len(imgs) == 0 {
			return upload{}, apiError(http.StatusBadRequest, ReasonBadRequest, `no "file" part in the form`)
		}
		return imgs[0], nil
	}
	if err := checkImageType(mt); err != nil {
		return upload{}, err
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return upload{}, bodyError(err)
	}
	return upload{data: data}, nil
}

// readMultipart streams a multipart form and keeps the parts named "file" (or "files"), at
// most max of them; other parts are skipped. The body size is bounded by MaxBytesHandler.
func (s *Service) readMultipart(r *http.Request, max int) ([]upload, error) {
	mt, _, err := mediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	if mt != "multipart/form-data" {
		return nil, apiError(http.StatusUnsupportedMediaType, ReasonUnsupportedMediaType,
			"want multipart/form-data with one or more \"file\" parts, got %q", mt)
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, apiError(http.StatusBadRequest, ReasonBadRequest, "bad multipart form: %v", err)
	}
	var out []upload
	for parts := 0; ; parts++ {
		if parts >= max+16 {
			return nil, apiError(http.StatusBadRequest, ReasonBadRequest, "too many form parts")
		}
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, bodyError(err)
		}
		if name := p.FormName(); name != "file" && name != "files" {
			if _, err := io.Copy(io.Discard, p); err != nil {
				return nil, bodyError(err)
			}
			continue
		}
		if len(out) == max {
			return nil, apiError(http.StatusRequestEntityTooLarge, ReasonTooManyFiles, "more than %d files in one request", max)
		}
		if err := partType(p); err != nil {
			return nil, err
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, bodyError(err)
		}
		out = append(out, upload{filename: truncate(p.FileName(), 255), data: data})
	}
}

func partType(p *multipart.Part) error {
	ct := p.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mediaType(ct)
	if err != nil {
		return err
	}
	return checkImageType(mt)
}

// mediaType parses a Content-Type header; an empty one is application/octet-stream.
func mediaType(ct string) (string, map[string]string, error) {
	if ct == "" {
		return "application/octet-stream", nil, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", nil, apiError(http.StatusUnsupportedMediaType, ReasonUnsupportedMediaType, "bad Content-Type: %v", err)
	}
	return mt, params, nil
}

// checkImageType accepts the media types of images the service decodes (JPEG, PNG) and
// application/octet-stream, whose content is sniffed.
func checkImageType(mt string) error {
	switch mt {
	case "image/jpeg", "image/jpg", "image/pjpeg", "image/png", "application/octet-stream":
		return nil
	}
	return apiError(http.StatusUnsupportedMediaType, ReasonUnsupportedMediaType,
		"unsupported Content-Type %q: send image/jpeg or image/png, raw or as the \"file\" part of multipart/form-data", mt)
}

func bodyError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return err
	}
	return apiError(http.StatusBadRequest, ReasonBadRequest, "reading the request body: %v", err)
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
