package alertrelay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu    sync.Mutex
	calls []map[string]any
	fail  error
}

func (r *recorder) Dispatch(_ context.Context, eventType string, payload map[string]any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	payload["_event"] = eventType
	r.calls = append(r.calls, payload)
	return nil
}

func webhook(status, alertname, group string) []byte {
	m := map[string]any{
		"version": "4", "groupKey": group, "status": status, "receiver": "retrain",
		"groupLabels":  map[string]string{"alertname": alertname},
		"commonLabels": map[string]string{"alertname": alertname, "job": "catdog", "severity": "warning"},
		"externalURL":  "http://127.0.0.1:9093",
		"alerts": []map[string]any{{
			"status": status, "labels": map[string]string{"alertname": alertname, "job": "catdog", "instance": "a:8080"},
			"annotations": map[string]string{"summary": "60% of features drifted", "drifted_features": "brightness, mean_r mean_g"},
			"startsAt":    "2026-12-03T08:00:00Z",
		}, {
			"status": status, "labels": map[string]string{"alertname": alertname, "job": "catdog", "instance": "b:8080"},
			"annotations": map[string]string{"drifted_features": "mean_r,contrast"},
			"startsAt":    "2026-12-03T07:59:00Z",
		}},
	}
	b, _ := json.Marshal(m)
	return b
}

func TestRelay(t *testing.T) {
	rec := &recorder{}
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	r := New(rec, Options{RepeatInterval: time.Hour, Now: func() time.Time { return now }})
	srv := httptest.NewServer(r)
	defer srv.Close()
	post := func(body []byte) (int, Result) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/alertmanager", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var res Result
		_ = json.NewDecoder(resp.Body).Decode(&res)
		return resp.StatusCode, res
	}
	steps := []struct {
		name       string
		body       []byte
		advance    time.Duration
		status     int
		dispatched bool
		calls      int
	}{
		{"firing drift group dispatches", webhook("firing", "CatdogInputDrift", "g1"), 0, 200, true, 1},
		{"same group again: deduplicated", webhook("firing", "CatdogInputDrift", "g1"), 10 * time.Minute, 200, false, 1},
		{"another group dispatches", webhook("firing", "CatdogInputDrift", "g2"), 0, 200, true, 2},
		{"resolved: nothing", webhook("resolved", "CatdogInputDrift", "g1"), 0, 200, false, 2},
		{"other alert: nothing", webhook("firing", "CatdogInferenceHighLatencyP99", "g3"), 0, 200, false, 2},
		{"after the repeat interval: again", webhook("firing", "CatdogInputDrift", "g1"), time.Hour, 200, true, 3},
		{"not JSON", []byte("{"), 0, 400, false, 3},
		{"wrong version", bytes.Replace(webhook("firing", "CatdogInputDrift", "g9"), []byte(`"version":"4"`), []byte(`"version":"3"`), 1), 0, 400, false, 3},
		{"no group key", webhook("firing", "CatdogInputDrift", ""), 0, 400, false, 3},
		{"no alerts", []byte(`{"version":"4","groupKey":"x","status":"firing","alerts":[]}`), 0, 400, false, 3},
		{"bad status", []byte(`{"version":"4","groupKey":"x","status":"burning","alerts":[{"status":"firing","labels":{"alertname":"CatdogInputDrift"}}]}`), 0, 400, false, 3},
		{"too large", append([]byte(`{"version":"4","groupKey":"`), bytes.Repeat([]byte("x"), 2<<20)...), 0, 400, false, 3},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		code, res := post(s.body)
		if code != s.status || res.Dispatched != s.dispatched || len(rec.calls) != s.calls {
			t.Errorf("%s: status %d, result %+v, %d dispatches; want %d, dispatched %v, %d", s.name, code, res, len(rec.calls), s.status, s.dispatched, s.calls)
		}
	}
	p := rec.calls[0]
	feats, _ := p["drifted_features"].([]string)
	labels, _ := p["labels"].(map[string]string)
	if p["_event"] != "retrain" || strings.Join(feats, ",") != "brightness,contrast,mean_g,mean_r" || labels["job"] != "catdog" ||
		p["group_key"] != "g1" || p["starts_at"] != "2026-12-03T07:59:00Z" || p["alerts"] != 2 || len(p) > 11 {
		t.Errorf("payload %v", p)
	}
	if resp, err := http.Get(srv.URL + "/alertmanager"); err != nil || resp.StatusCode != 405 {
		t.Errorf("GET: %v %v", resp, err)
	}
}

func TestRelayDispatchFailureIsRetriedByAlertmanager(t *testing.T) {
	rec := &recorder{fail: errors.New("github down")}
	r := New(rec, Options{})
	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(webhook("firing", "CatdogInputDrift", "g1")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	rec.fail = nil
	resp, err = http.Post(srv.URL, "application/json", bytes.NewReader(webhook("firing", "CatdogInputDrift", "g1")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(rec.calls) != 1 {
		t.Fatalf("retry after failure: status %d, %d dispatches", resp.StatusCode, len(rec.calls))
	}
}
