package inference

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// NewServer returns an http.Server for h with timeouts set: 5 s to read the headers, 30 s for
// the whole request, 60 s to write the response, 120 s idle keep-alive, 64 KiB of headers.
// Server errors go to log at warning level.
func NewServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// DrainOptions controls the graceful shutdown of Run.
type DrainOptions struct {
	// Drain is called first when ctx ends (typically Service.Drain, turning /ready to 503).
	Drain func()
	// Delay is how long the server keeps accepting requests after Drain, so that load
	// balancers notice the failing readiness probe. Zero means no delay.
	Delay time.Duration
	// Timeout bounds the wait for in-flight requests after the listener closes. Zero means 30 s.
	Timeout time.Duration
}

// Run serves srv on l until ctx ends, then drains: opts.Drain, opts.Delay, then
// srv.Shutdown, which stops accepting connections and waits for in-flight requests (at most
// opts.Timeout). It returns nil after a clean drain.
func Run(ctx context.Context, srv *http.Server, l net.Listener, opts DrainOptions) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if opts.Drain != nil {
		opts.Drain()
	}
	if opts.Delay > 0 {
		t := time.NewTimer(opts.Delay)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return err
		}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return errors.Join(err, serr)
	}
	return err
}

// Swap is an http.Handler whose target can be replaced while serving: `catdog serve` answers
// with Loading while the model loads, then swaps in the Service.
type Swap struct{ h atomic.Pointer[http.Handler] }

// NewSwap returns a Swap serving h.
func NewSwap(h http.Handler) *Swap {
	s := &Swap{}
	s.Set(h)
	return s
}

// Set makes later requests go to h.
func (s *Swap) Set(h http.Handler) { s.h.Store(&h) }

// ServeHTTP implements http.Handler.
func (s *Swap) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.h.Load()).ServeHTTP(w, r) }

// Loading answers while the model is not loaded yet: /health 200, /ready 503
// {"status":"loading"}, everything else 503 with Retry-After.
func Loading() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		case "/ready":
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "loading"})
		default:
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: apiError(http.StatusServiceUnavailable, ReasonNotReady, "the model is loading")})
		}
	})
}
