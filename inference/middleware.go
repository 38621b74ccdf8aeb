package inference

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/catdog-mlops/catdog/imageprep"
)

// handlerFunc is an endpoint: it writes a success response itself or returns an error, which
// wrap turns into a JSON error response.
type handlerFunc func(w http.ResponseWriter, r *http.Request, rec *record) error

// record collects what the access log says about a request. It never holds image bytes.
type record struct {
	start         time.Time
	id            string
	images        int
	imageBytes    int
	width, height int
	class         string
	confidence    float64
	features      *imageprep.Features // the drift features of a single upload (numbers only)
}

// observeImage notes an uploaded image's size in bytes and, for the first, its dimensions
// (read from the header only).
func (rec *record) observeImage(data []byte, lim imageprep.Limits) {
	rec.images++
	rec.imageBytes += len(data)
	if rec.images == 1 {
		if cfg, _, err := imageprep.DecodeConfigBytes(data, lim); err == nil {
			rec.width, rec.height = cfg.Width, cfg.Height
		}
	}
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error     *Error `json:"error"`
	RequestID string `json:"request_id"`
}

// wrap checks the method, runs h, writes its error as JSON (recovering from panics), counts
// errors by reason and writes one access-log line.
func (s *Service) wrap(endpoint string, methods []string, h handlerFunc) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &record{start: time.Now(), id: requestID(r)}
		w.Header().Set("X-Request-Id", rec.id)
		sw := &statusWriter{ResponseWriter: w}
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("inference: handler panic: %v", p)
				}
			}()
			if methods != nil && !slices.Contains(methods, r.Method) {
				w.Header().Set("Allow", allow)
				err = apiError(http.StatusMethodNotAllowed, ReasonMethodNotAllowed, "%s is not allowed here; use %s", r.Method, allow)
				return
			}
			err = h(sw, r, rec)
		}()
		var apiErr *Error
		if err != nil {
			apiErr = toError(err)
			s.m.errors.WithLabelValues(apiErr.Reason).Inc()
			if !sw.wroteHeader {
				if apiErr.Status == http.StatusServiceUnavailable {
					w.Header().Set("Retry-After", "1")
				}
				if apiErr.Status == http.StatusRequestEntityTooLarge {
					w.Header().Set("Connection", "close")
				}
				writeJSON(sw, apiErr.Status, errorBody{Error: apiErr, RequestID: rec.id})
			}
		}
		s.logRequest(r, endpoint, sw.status(), rec, apiErr, err)
	})
}

// logRequest writes the access-log line: ids, endpoint, status, latency, image size, class and
// confidence. Headers, query strings, image bytes and decoder messages (which can quote input
// bytes) are never logged.
func (s *Service) logRequest(r *http.Request, endpoint string, status int, rec *record, apiErr *Error, err error) {
	level := slog.LevelInfo
	switch {
	case status >= 500 && status != http.StatusServiceUnavailable:
		level = slog.LevelError
	case status >= 400:
		level = slog.LevelWarn
	case endpoint != EndpointPredict && endpoint != EndpointPredictBatch:
		level = slog.LevelDebug
	}
	ctx := r.Context()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", rec.id),
		slog.String("endpoint", endpoint),
		slog.String("method", r.Method),
		slog.Int("status", status),
		slog.Float64("latency_ms", millis(time.Since(rec.start))),
	}
	if endpoint == EndpointOther {
		attrs = append(attrs, slog.String("path", truncate(r.URL.Path, 128)))
	}
	if rec.images > 0 {
		attrs = append(attrs, slog.Int("images", rec.images), slog.Int("image_bytes", rec.imageBytes))
		if rec.width > 0 {
			attrs = append(attrs, slog.Int("width", rec.width), slog.Int("height", rec.height))
		}
	}
	if rec.features != nil {
		attrs = append(attrs, slog.Any("features", rec.features.Map()))
	}
	if rec.class != "" {
		attrs = append(attrs, slog.String("class", rec.class), slog.Float64("confidence", rec.confidence))
	}
	if apiErr != nil {
		attrs = append(attrs, slog.String("reason", apiErr.Reason))
		if apiErr.Reason == ReasonInternal {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

// requestID returns the client's X-Request-Id when it is short and plain, else a new id.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); validID(id) {
		return id
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
