package mlflowclient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// faulty answers the first `fail` requests with status (and optional Retry-After / body),
// then "{}"-style success. It counts requests.
type faulty struct {
	fail       int32
	status     int
	retryAfter string
	body       string
	n          atomic.Int32
	last       atomic.Pointer[http.Request]
	lastBody   atomic.Pointer[[]byte]
}

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.n.Add(1)
	b, _ := io.ReadAll(r.Body)
	f.last.Store(r)
	f.lastBody.Store(&b)
	if n <= f.fail {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		w.WriteHeader(f.status)
		io.WriteString(w, f.body)
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/runs/create"):
		io.WriteString(w, `{"run":{"info":{"run_id":"r1","status":"RUNNING","artifact_uri":"mlflow-artifacts:/1/r1/artifacts"}}}`)
	case strings.HasSuffix(r.URL.Path, "/experiments/get"):
		io.WriteString(w, `{"experiment":{"experiment_id":"7","name":"x","extra_future_field":{"a":1}}}`)
	default:
		io.WriteString(w, `{}`)
	}
}

func fastRetry(n int) Option {
	return WithRetry(RetryPolicy{MaxRetries: n, BaseDelay: 10 * time.Millisecond, MaxDelay: 3 * time.Second, Jitter: 5 * time.Millisecond})
}

func TestRetryPolicy(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name         string
		f            *faulty
		call         func(*Client) error
		wantRequests int32
		wantErr      bool
		wantCode     int
		minElapsed   time.Duration
	}{
		{name: "503 twice then success (idempotent)", f: &faulty{fail: 2, status: 503, body: "upstream unavailable"},
			call: func(c *Client) error { return c.LogMetric(ctx, "r1", "m", 1, 0) }, wantRequests: 3},
		{name: "429 with Retry-After is honoured", f: &faulty{fail: 1, status: 429, retryAfter: "1"},
			call: func(c *Client) error { _, err := c.GetExperiment(ctx, "7"); return err }, wantRequests: 2, minElapsed: time.Second},
		{name: "HTML 502 from a proxy is retried", f: &faulty{fail: 1, status: 502, body: "<html><body>Bad Gateway</body></html>"},
			call: func(c *Client) error { _, err := c.GetRun(ctx, "r1"); return err }, wantRequests: 2},
		{name: "exhausted retries return the typed error", f: &faulty{fail: 100, status: 504, body: "<html>gateway timeout</html>"},
			call: func(c *Client) error { _, err := c.GetRun(ctx, "r1"); return err }, wantRequests: 4, wantErr: true, wantCode: 504},
		{name: "create run is not retried after a 500", f: &faulty{fail: 1, status: 500, body: `{"error_code":"INTERNAL_ERROR","message":"db locked"}`},
			call: func(c *Client) error { _, err := c.CreateRun(ctx, CreateRunRequest{ExperimentID: "1"}); return err }, wantRequests: 1, wantErr: true, wantCode: 500},
		{name: "create run is retried after a 503 (not processed)", f: &faulty{fail: 1, status: 503},
			call: func(c *Client) error { _, err := c.CreateRun(ctx, CreateRunRequest{ExperimentID: "1"}); return err }, wantRequests: 2},
		{name: "create model version is retried after 429", f: &faulty{fail: 2, status: 429, retryAfter: "0"},
			call: func(c *Client) error {
				_, err := c.CreateModelVersion(ctx, "m", "mlflow-artifacts:/1/r/artifacts/model", "r")
				return err
			}, wantRequests: 3},
		{name: "400 is never retried", f: &faulty{fail: 5, status: 400, body: `{"error_code":"INVALID_PARAMETER_VALUE","message":"bad"}`},
			call: func(c *Client) error { return c.LogParam(ctx, "r1", "k", "v") }, wantRequests: 1, wantErr: true, wantCode: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.f)
			defer srv.Close()
			c, err := New(srv.URL, fastRetry(3))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = tc.call(c)
			elapsed := time.Since(start)
			if got := tc.f.n.Load(); got != tc.wantRequests {
				t.Errorf("requests = %d, want %d", got, tc.wantRequests)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %t", err, tc.wantErr)
			}
			if tc.wantCode != 0 {
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.wantCode {
					t.Fatalf("err = %#v, want *APIError %d", err, tc.wantCode)
				}
				if len(apiErr.Message) > maxErrorBody+4 {
					t.Errorf("error message not bounded: %d bytes", len(apiErr.Message))
				}
			}
			if elapsed < tc.minElapsed {
				t.Errorf("took %v, want >= %v (Retry-After)", elapsed, tc.minElapsed)
			}
		})
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	p := RetryPolicy{MaxRetries: 10, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second, Jitter: 50 * time.Millisecond}
	prev := time.Duration(0)
	for n := range 6 {
		d := p.wait(n, 0)
		base := min(100*time.Millisecond<<n, time.Second)
		if d < base || d >= base+50*time.Millisecond {
			t.Errorf("wait(%d) = %v, want in [%v, %v)", n, d, base, base+50*time.Millisecond)
		}
		if base < time.Second && d < prev {
			t.Errorf("wait(%d) = %v shrank from %v", n, d, prev)
		}
		prev = d
	}
	if d := p.wait(0, 5*time.Second); d < time.Second || d >= time.Second+50*time.Millisecond {
		t.Errorf("Retry-After 5s capped at MaxDelay: got %v", d)
	}
	for in, want := range map[string]time.Duration{"3": 3 * time.Second, "": 0, "junk": 0, "-1": 0} {
		if got := parseRetryAfter(in); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
	if got := parseRetryAfter(time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)); got < time.Second || got > 3*time.Second {
		t.Errorf("parseRetryAfter(date) = %v", got)
	}
}

func TestConnectionRefusedIsRetriedThenFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c, err := New("http://"+addr, fastRetry(2))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.CreateRun(context.Background(), CreateRunRequest{ExperimentID: "1"}) // safe to retry: never reached a server
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %v, want connection refused", err)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Errorf("gave up after %v: no back-off happened", time.Since(start))
	}
}

func TestContextCancelStopsRetrying(t *testing.T) {
	f := &faulty{fail: 1000, status: 503}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, _ := New(srv.URL, WithRetry(RetryPolicy{MaxRetries: 100, BaseDelay: 200 * time.Millisecond, MaxDelay: time.Second}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetRun(ctx, "r1")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %v, want deadline exceeded promptly", err, time.Since(start))
	}
}

func TestPerRequestTimeout(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			select { // hang the first request
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		io.WriteString(w, `{"run":{"info":{"run_id":"r1"}}}`)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, fastRetry(2), WithTimeout(200*time.Millisecond))
	run, err := c.GetRun(context.Background(), "r1")
	if err != nil || run.Info.RunID != "r1" || n.Load() != 2 {
		t.Fatalf("GetRun after a hung request = %+v, %v (%d requests)", run, err, n.Load())
	}
}

func TestTransportDetails(t *testing.T) {
	f := &faulty{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx := context.Background()

	// a path prefix in the tracking URI is kept; bearer token sent; unknown JSON fields ignored
	c, _ := New(srv.URL+"/mlflow/", withToken("s3cret-token"))
	exp, err := c.GetExperiment(ctx, "7")
	if err != nil || exp.ID != "7" {
		t.Fatalf("GetExperiment = %+v, %v", exp, err)
	}
	r := f.last.Load()
	if r.URL.Path != "/mlflow/api/2.0/mlflow/experiments/get" || r.URL.Query().Get("experiment_id") != "7" {
		t.Errorf("request = %s %s", r.Method, r.URL)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer s3cret-token" {
		t.Errorf("Authorization = %q", got)
	}

	// basic auth wins over the token (as in the Python client); credentials in the URI are not echoed
	c, _ = New(strings.Replace(srv.URL, "http://", "http://alice:pw@", 1), withToken("tok"))
	if err := c.DeleteAlias(ctx, "m", "champion"); err != nil {
		t.Fatal(err)
	}
	r = f.last.Load()
	if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "pw" {
		t.Errorf("basic auth = %q %q %t", u, p, ok)
	}
	// DELETE carries a JSON body with Content-Type
	if r.Method != http.MethodDelete || r.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(*f.lastBody.Load()), `"alias":"champion"`) {
		t.Errorf("DELETE alias: %s %q %s", r.Method, r.Header.Get("Content-Type"), *f.lastBody.Load())
	}
	if strings.Contains(c.TrackingURI(), "pw") {
		t.Errorf("TrackingURI leaks the password: %s", c.TrackingURI())
	}

	// errors never carry secrets
	f2 := &faulty{fail: 10, status: 401, body: "unauthorized"}
	srv2 := httptest.NewServer(f2)
	defer srv2.Close()
	c, _ = New(strings.Replace(srv2.URL, "http://", "http://bob:hunter2@", 1), fastRetry(0))
	_, err = c.GetRun(ctx, "r")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks or is nil: %v", err)
	}

	// NaN / Inf are sent as protobuf JSON strings
	c, _ = New(srv.URL)
	if err := c.LogBatch(ctx, "r1", Batch{Metrics: []Metric{{Key: "a", Value: Float(nan()), Timestamp: 1}, {Key: "b", Value: Float(inf()), Timestamp: 1}}}); err != nil {
		t.Fatal(err)
	}
	if body := string(*f.lastBody.Load()); !strings.Contains(body, `"value":"NaN"`) || !strings.Contains(body, `"value":"Infinity"`) {
		t.Errorf("log-batch body = %s", body)
	}

	// artifact uploads stream with Content-Length (not chunked)
	dir := t.TempDir()
	p := filepath.Join(dir, "w.bin")
	os.WriteFile(p, make([]byte, 12345), 0o644)
	root, _ := c.ResolveArtifactURI("mlflow-artifacts:/1/r1/artifacts")
	if err := c.UploadFile(ctx, root, p, "model/w.bin"); err != nil {
		t.Fatal(err)
	}
	r = f.last.Load()
	if r.Method != http.MethodPut || r.ContentLength != 12345 || len(r.TransferEncoding) != 0 || len(*f.lastBody.Load()) != 12345 {
		t.Errorf("upload: %s %s content-length %d transfer-encoding %v body %d", r.Method, r.URL.Path, r.ContentLength, r.TransferEncoding, len(*f.lastBody.Load()))
	}
	if r.URL.Path != "/api/2.0/mlflow-artifacts/artifacts/1/r1/artifacts/model/w.bin" {
		t.Errorf("upload path = %s", r.URL.Path)
	}
}

func TestNewRejectsBadURIs(t *testing.T) {
	for _, uri := range []string{"", "file:///tmp/mlruns", "databricks", "http://", "://x"} {
		if _, err := New(uri); err == nil {
			t.Errorf("New(%q) succeeded", uri)
		}
	}
	t.Setenv(EnvTrackingURI, "")
	if _, err := NewFromEnv(""); err == nil {
		t.Error("NewFromEnv without a URI succeeded")
	}
	t.Setenv(EnvTrackingURI, "http://127.0.0.1:1")
	t.Setenv(EnvTrackingUsername, "u")
	t.Setenv(EnvTrackingPassword, "p")
	c, err := NewFromEnv("")
	if err != nil || c.user != "u" || c.TrackingURI() != "http://127.0.0.1:1" {
		t.Fatalf("NewFromEnv = %+v, %v", c, err)
	}
}

func nan() float64 { z := 0.0; return z / z }
func inf() float64 { z := 0.0; return 1 / z }

func TestInsecureTLS(t *testing.T) {
	f := &faulty{}
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	ctx := context.Background()
	c, _ := New(srv.URL, fastRetry(3))
	if _, err := c.GetExperiment(ctx, "7"); err == nil || f.n.Load() != 0 {
		t.Fatalf("self-signed certificate accepted (err %v, %d requests)", err, f.n.Load())
	}
	t.Setenv(EnvInsecureTLS, "true")
	c, err := NewFromEnv(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if exp, err := c.GetExperiment(ctx, "7"); err != nil || exp.ID != "7" {
		t.Fatalf("MLFLOW_TRACKING_INSECURE_TLS=true: %+v, %v", exp, err)
	}
}
