package inference

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"time"

	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/internal/buildinfo"
)

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
		if s.drift != nil {
			s.drift.observePrediction(p.Label, p.Confidence)
		}
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
