package mlflowclient

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r)
	return nil
}
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recorder) WithGroup(string) slog.Handler      { return h }

// count returns how many records at level have a message starting with prefix.
func (h *recorder) count(level slog.Level, prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level == level && strings.HasPrefix(r.Message, prefix) {
			n++
		}
	}
	return n
}

// TestRestyLoggerLevels: resty's errors are logged as errors and its warnings as warnings,
// except the per-request plain-HTTP basic-auth warning (New warns about that once).
func TestRestyLoggerLevels(t *testing.T) {
	tests := []struct {
		name string
		log  func(restyLogger)
		want slog.Level
	}{
		{"error", func(l restyLogger) { l.Errorf("%v", errors.New("transport is not an *http.Transport")) }, slog.LevelError},
		{"warning", func(l restyLogger) { l.Warnf("Cannot unmarshal response body: %s", "EOF") }, slog.LevelWarn},
		{"basic auth over http", func(l restyLogger) { l.Warnf("Using Basic Auth in HTTP mode is not secure, use HTTPS") }, slog.LevelDebug},
		{"debug", func(l restyLogger) { l.Debugf("request %d", 1) }, slog.LevelDebug},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{}
			tt.log(restyLogger{slog.New(h)})
			if len(h.recs) != 1 || h.recs[0].Level != tt.want {
				t.Fatalf("records %+v, want one at %v", h.recs, tt.want)
			}
		})
	}
}

// TestBasicAuthOverHTTPWarnsOnce: against the real server, credentials over plain HTTP give
// one warning from New, not one per request, and the password is never logged.
func TestBasicAuthOverHTTPWarnsOnce(t *testing.T) {
	h := &recorder{}
	c := newTestClient(t, withBasicAuth("alice", "s3cret-pw"), WithLogger(slog.New(h)))
	ctx := testCtx(t)
	for range 3 {
		if _, err := c.GetExperimentByName(ctx, "Default"); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.count(slog.LevelWarn, insecureAuthWarning); n != 1 {
		t.Errorf("%d plain-HTTP credential warnings, want 1", n)
	}
	if n := h.count(slog.LevelWarn, "Using Basic Auth"); n != 0 {
		t.Errorf("resty's per-request warning logged %d times at warn level", n)
	}
	if n := h.count(slog.LevelDebug, "Using Basic Auth"); n != 3 {
		t.Errorf("resty's per-request warning logged %d times at debug level, want 3 (one per request)", n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		line := r.Message
		r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
		if strings.Contains(line, "s3cret-pw") {
			t.Errorf("password logged: %s", line)
		}
	}
}
