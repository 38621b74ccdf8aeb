package gha

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGitHub answers /repos/o/r/dispatches with the scripted statuses, then 204.
type fakeGitHub struct {
	mu      sync.Mutex
	script  []func(w http.ResponseWriter)
	bodies  []map[string]any
	headers []http.Header
	paths   []string
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := io.ReadAll(r.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	f.bodies = append(f.bodies, m)
	f.headers = append(f.headers, r.Header.Clone())
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	if len(f.script) > 0 {
		s := f.script[0]
		f.script = f.script[1:]
		s(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func status(code int, hdr ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"message":"scripted"}`)
	}
}

func TestDispatch(t *testing.T) {
	const token = "ghp_secretTOKEN123"
	tests := []struct {
		name     string
		script   []func(http.ResponseWriter)
		wantErr  int // 0: success, else the final status
		requests int
		waits    []time.Duration // exact waits (Retry-After); nil: only count
		nwaits   int
	}{
		{name: "204 at once", requests: 1},
		{name: "503 then 204", script: []func(http.ResponseWriter){status(503)}, requests: 2, nwaits: 1},
		{name: "429 honours Retry-After seconds", script: []func(http.ResponseWriter){status(429, "Retry-After", "7")}, requests: 2, waits: []time.Duration{7 * time.Second}},
		{name: "Retry-After capped at MaxDelay", script: []func(http.ResponseWriter){status(503, "Retry-After", "3600")}, requests: 2, waits: []time.Duration{time.Minute}},
		{name: "403 rate limit retried", script: []func(http.ResponseWriter){status(403, "X-RateLimit-Remaining", "0", "Retry-After", "1")}, requests: 2, waits: []time.Duration{time.Second}},
		{name: "422 is final", script: []func(http.ResponseWriter){status(422)}, wantErr: 422, requests: 1},
		{name: "404 is final", script: []func(http.ResponseWriter){status(404)}, wantErr: 404, requests: 1},
		{name: "5xx until attempts run out", script: []func(http.ResponseWriter){status(502), status(502), status(502)}, wantErr: 502, requests: 3, nwaits: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh := &fakeGitHub{script: tt.script}
			srv := httptest.NewServer(gh)
			defer srv.Close()
			var waits []time.Duration
			d := &Dispatcher{APIURL: srv.URL, Repo: "o/r", Token: token, Attempts: 3, Backoff: 100 * time.Millisecond,
				Sleep: func(_ context.Context, w time.Duration) error { waits = append(waits, w); return nil }}
			err := d.Dispatch(context.Background(), "retrain", map[string]any{"drifted_features": []string{"brightness"}})
			var de *DispatchError
			switch {
			case tt.wantErr == 0 && err != nil:
				t.Fatalf("Dispatch: %v", err)
			case tt.wantErr != 0 && (!errors.As(err, &de) || de.Status != tt.wantErr):
				t.Fatalf("Dispatch error %v, want status %d", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), token) {
				t.Errorf("the error shows the token: %v", err)
			}
			if len(gh.bodies) != tt.requests {
				t.Fatalf("%d requests, want %d", len(gh.bodies), tt.requests)
			}
			if tt.waits != nil && (len(waits) != len(tt.waits) || waits[0] != tt.waits[0]) {
				t.Errorf("waits %v, want %v", waits, tt.waits)
			}
			if tt.nwaits > 0 {
				if len(waits) != tt.nwaits {
					t.Errorf("waits %v, want %d", waits, tt.nwaits)
				}
				for i, w := range waits { // exponential backoff with ±20 % jitter
					base := 100 * time.Millisecond << i
					if w < base*8/10 || w > base*12/10 {
						t.Errorf("wait %d = %v, want %v ±20%%", i, w, base)
					}
				}
			}
			h := gh.headers[0]
			if gh.paths[0] != "POST /repos/o/r/dispatches" || h.Get("Authorization") != "Bearer "+token ||
				h.Get("Accept") != "application/vnd.github+json" || h.Get("X-GitHub-Api-Version") == "" {
				t.Errorf("request %s %v", gh.paths[0], h)
			}
			b := gh.bodies[0]
			cp, _ := b["client_payload"].(map[string]any)
			if b["event_type"] != "retrain" || cp == nil || cp["drifted_features"] == nil {
				t.Errorf("body %v", b)
			}
		})
	}
}

func TestDispatchRejectsBadInput(t *testing.T) {
	big := map[string]any{}
	for i := 0; i < 11; i++ {
		big[string(rune('a'+i))] = i
	}
	for name, d := range map[string]struct {
		d       Dispatcher
		payload map[string]any
	}{
		"no token":      {Dispatcher{Repo: "o/r"}, nil},
		"bad repo":      {Dispatcher{Repo: "o", Token: "x"}, nil},
		"11 top keys":   {Dispatcher{Repo: "o/r", Token: "x"}, big},
		"repo with url": {Dispatcher{Repo: "o/r/../x", Token: "x"}, nil},
		"dot-dot repo":  {Dispatcher{Repo: "../..", Token: "x"}, nil},
	} {
		if err := d.d.Dispatch(context.Background(), "retrain", d.payload); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(&fakeGitHub{script: []func(http.ResponseWriter){status(503), status(503)}})
	defer srv.Close()
	d := &Dispatcher{APIURL: srv.URL, Repo: "o/r", Token: "x", Sleep: func(ctx context.Context, _ time.Duration) error { cancel(); return ctx.Err() }}
	if err := d.Dispatch(ctx, "retrain", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	h := http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}
	if d, ok := retryAfter(h, now); !ok || d != 90*time.Second {
		t.Errorf("retryAfter = %v %v", d, ok)
	}
}
