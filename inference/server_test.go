package inference_test

import (
	"context"
	"encoding/json"
	"image/color"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/inference"
)

// TestRunDrains checks the shutdown sequence on a real listener: when the context ends,
// /ready turns 503, a request in flight still gets its answer, and Run returns nil.
func TestRunDrains(t *testing.T) {
	pred := newFixed(testSize)
	pred.gate = make(chan struct{})
	svc, err := inference.New(pred, inference.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := svc.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	srv := inference.NewServer(l.Addr().String(), svc, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- inference.Run(ctx, srv, l, inference.DrainOptions{Drain: svc.Drain, Delay: 300 * time.Millisecond, Timeout: 10 * time.Second})
	}()

	inflight := make(chan int, 1)
	go func() {
		resp, err := http.Post(url+"/predict", "image/png", strings.NewReader(string(pngImage(t, 4, 4, color.White))))
		if err != nil {
			inflight <- -1
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		inflight <- resp.StatusCode
	}()
	waitFor(t, "request on the worker", func() bool { return pred.calls.Load() == 2 })

	cancel() // SIGTERM in catdog serve
	waitFor(t, "/ready to report draining", func() bool {
		resp, err := http.Get(url + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	select {
	case err := <-done:
		t.Fatalf("Run returned %v with a request in flight", err)
	case <-time.After(500 * time.Millisecond): // past the drain delay: Shutdown is waiting
	}
	close(pred.gate)
	if code := <-inflight; code != http.StatusOK {
		t.Errorf("in-flight request got %d, want 200", code)
	}
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if _, err := http.Get(url + "/health"); err == nil {
		t.Error("server still accepts connections after Run returned")
	}
}

func TestServerTimeouts(t *testing.T) {
	srv := inference.NewServer(":0", http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Errorf("server without timeouts: %+v", srv)
	}
}

// TestOpenAPIDocumentsRoutes checks that /openapi.json is valid JSON and documents exactly the
// routes the service answers, with their methods.
func TestOpenAPIDocumentsRoutes(t *testing.T) {
	h := newHarness(t, newFixed(testSize))
	resp := h.get("/openapi.json")
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	resp.json(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	routes := map[string]string{
		"/predict": "post", "/predict/batch": "post", "/health": "get", "/ready": "get",
		"/metrics": "get", "/version": "get", "/openapi.json": "get",
	}
	var documented []string
	for path, ops := range doc.Paths {
		documented = append(documented, path)
		for method := range ops {
			if routes[path] != method {
				t.Errorf("documented %s %s is not a route", method, path)
			}
			req, _ := http.NewRequest(strings.ToUpper(method), h.srv.URL+path, nil)
			if got := h.do(req).status; got == 404 || got == 405 {
				t.Errorf("%s %s answers %d", method, path, got)
			}
		}
	}
	for path := range routes {
		if !slices.Contains(documented, path) {
			t.Errorf("route %s is not documented", path)
		}
	}
}
