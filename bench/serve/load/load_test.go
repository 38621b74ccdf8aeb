package load_test

import (
	"context"
	"mime"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/bench/serve/load"
)

func TestRunCountsEveryRequest(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/form-data" {
			http.Error(w, "bad type", http.StatusUnsupportedMediaType)
			return
		}
		if _, _, err := r.FormFile("file"); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if hits.Add(1)%10 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	body, err := load.Multipart("a.jpg", "image/jpeg", []byte("\xff\xd8\xff"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := load.Run(context.Background(), load.Config{URL: srv.URL, Bodies: []load.Body{body}, Requests: 200, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 || res.Errors != 0 || res.Codes[200] != 180 || res.Codes[503] != 20 || len(res.Latencies) != 200 {
		t.Errorf("result: requests %d errors %d codes %v latencies %d", res.Requests, res.Errors, res.Codes, len(res.Latencies))
	}
	if res.RPS() <= 0 || res.Percentile(0.5) <= 0 || res.Percentile(0.5) > res.Percentile(0.99) {
		t.Errorf("rps %v p50 %v p99 %v", res.RPS(), res.Percentile(0.5), res.Percentile(0.99))
	}
}

func TestRunForDuration(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { time.Sleep(time.Millisecond) }))
	defer srv.Close()
	start := time.Now()
	res, err := load.Run(context.Background(), load.Config{URL: srv.URL, Bodies: []load.Body{{ContentType: "image/jpeg", Data: []byte("x")}}, Duration: 200 * time.Millisecond, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second || res.Codes[200] == 0 || res.Errors != 0 {
		t.Errorf("ran %v: codes %v errors %d (%v)", d, res.Codes, res.Errors, res.FirstErr)
	}
}

func TestPercentile(t *testing.T) {
	r := load.Result{}
	for i := 1; i <= 100; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond, 0: time.Millisecond} {
		if got := r.Percentile(q); got != want {
			t.Errorf("Percentile(%v) = %v, want %v", q, got, want)
		}
	}
	if (load.Result{}).Percentile(0.5) != 0 {
		t.Error("empty result has a percentile")
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	if _, err := load.Run(context.Background(), load.Config{URL: "http://127.0.0.1:1"}); err == nil {
		t.Error("Run accepted a config without bodies")
	}
}
