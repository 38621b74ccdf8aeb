// Package e2e_test runs the drift → alert → retraining chain end to end on 127.0.0.1: a real
// `catdog serve` (a small model trained here, with its drift profile) is sent drifted photos,
// a real Prometheus scrapes it and evaluates deploy/monitoring's rules, a real Alertmanager
// routes CatdogInputDrift with deploy/monitoring/alertmanager.yml to a real `catdog
// alert-relay`, and a local HTTP server standing in for the GitHub API receives the
// repository_dispatch.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/internal/drifttest"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

const token = "ghs_e2eSecretToken0123456789"

// dispatch is one request the fake GitHub API received.
type dispatch struct {
	Path, Auth, Accept string
	Body               struct {
		EventType     string `json:"event_type"`
		ClientPayload struct {
			Alertname       string            `json:"alertname"`
			GroupKey        string            `json:"group_key"`
			Labels          map[string]string `json:"labels"`
			DriftedFeatures []string          `json:"drifted_features"`
		} `json:"client_payload"`
	}
}

// fakeGitHub stands in for the GitHub API: it answers the first unavailable requests 503 with
// Retry-After: 1 (GitHub's answer when it is overloaded), then 204 and records the dispatch.
type fakeGitHub struct {
	unavailable int // 503 answers before the first success

	mu       sync.Mutex
	attempts []time.Time // every request, answered or not
	calls    []dispatch  // the dispatches answered 204
	got      chan struct{}
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var d dispatch
	d.Path, d.Auth, d.Accept = r.Method+" "+r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Accept")
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &d.Body); err != nil {
		http.Error(w, `{"message":"Problems parsing JSON"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.attempts = append(f.attempts, time.Now())
	if len(f.attempts) <= f.unavailable {
		f.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"message":"Service Unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	f.calls = append(f.calls, d)
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	select {
	case f.got <- struct{}{}:
	default:
	}
}

func (f *fakeGitHub) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func run(t *testing.T, ctx context.Context, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func TestDriftAlertDispatchesRetraining(t *testing.T) {
	root := testenv.RepoRoot(t)
	shared := testenv.SharedData(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// A small model (64×64, one epoch on 200 dev photos) with its drift profile.
	bin := filepath.Join(dir, "catdog")
	run(t, ctx, root, "go", "build", "-o", bin, "./cmd/catdog")
	photos := filepath.Join(dir, "photos")
	for _, cls := range []string{"Cat", "Dog"} {
		if err := os.MkdirAll(filepath.Join(photos, cls), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			name := fmt.Sprintf("%s.%d.jpg", strings.ToLower(cls), i)
			if err := os.Symlink(filepath.Join(shared, "petimages-dev", cls, name), filepath.Join(photos, cls, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	params, err := os.ReadFile(filepath.Join(root, "params.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	params = regexp.MustCompile(`(?m)^(\s*widths:).*$`).ReplaceAll(params, []byte("${1} [8, 16, 32, 64]"))
	// A window that fills and compares quickly.
	params = regexp.MustCompile(`(?m)^(\s*window_size:).*$`).ReplaceAll(params, []byte("${1} 60"))
	params = regexp.MustCompile(`(?m)^(\s*every_requests:).*$`).ReplaceAll(params, []byte("${1} 20"))
	params = regexp.MustCompile(`(?m)^(\s*every:).*$`).ReplaceAll(params, []byte("${1} 1s"))
	params = regexp.MustCompile(`(?m)^(\s*min_rows:).*$`).ReplaceAll(params, []byte("${1} 20"))
	paramsFile := filepath.Join(dir, "params.yaml")
	if err := os.WriteFile(paramsFile, params, 0o644); err != nil {
		t.Fatal(err)
	}
	prepared, model := filepath.Join(dir, "prepared"), filepath.Join(dir, "model")
	run(t, ctx, dir, bin, "prepare", "--data", photos, "--out", prepared, "--size", "64", "-q")
	run(t, ctx, dir, bin, "train", "--params", paramsFile, "--data", prepared, "--out", model, "--epochs", "1", "--input-size", "64", "--name", "catdog-drift-e2e", "-q")
	if _, err := os.Stat(filepath.Join(model, "drift_profile.json")); err != nil {
		t.Fatalf("training wrote no drift profile: %v", err)
	}

	// The fake GitHub API and the relay.
	gh := &fakeGitHub{unavailable: 1, got: make(chan struct{}, 1)}
	api := httptest.NewServer(gh)
	defer api.Close()
	relayAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	relay := testenv.Start(t, bin, []string{"alert-relay", "--addr", relayAddr, "--repo", "catdog-mlops/catdog", "--github-api", api.URL},
		[]string{"GITHUB_TOKEN=" + token}, dir)
	relay.WaitHTTP(t, "http://"+relayAddr+"/health", 30*time.Second)

	// Bad webhook bodies: 400, no dispatch.
	for _, body := range []string{"{", `{"version":"4","status":"firing","alerts":[]}`, `{"version":"1","groupKey":"k","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"CatdogInputDrift"}}]}`} {
		resp, err := http.Post("http://"+relayAddr+"/alertmanager", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("bad body %q: status %d, want 400", body, resp.StatusCode)
		}
	}

	// The real Alertmanager with the repository's configuration, the webhook pointed at this
	// relay, the group wait shortened from 30s to 1s, and the drift route's group and repeat
	// intervals to 1s and 2s, so that Alertmanager notifies again and again within the test
	// and the relay must deduplicate.
	amCfg, err := os.ReadFile(filepath.Join(root, "deploy", "monitoring", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	amText := strings.ReplaceAll(string(amCfg), "http://127.0.0.1:9095/alertmanager", "http://"+relayAddr+"/alertmanager")
	amText = strings.ReplaceAll(amText, "group_wait: 30s", "group_wait: 1s")
	amText = strings.ReplaceAll(amText, "group_interval: 5m", "group_interval: 1s")
	amText = strings.ReplaceAll(amText, "repeat_interval: 12h", "repeat_interval: 2s")
	am := testenv.StartAlertmanager(t, amText)

	// catdog serve with the model's profile and the fast window.
	serveAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	serve := testenv.Start(t, bin, []string{"serve", "--model", model, "--addr", serveAddr, "--params", paramsFile, "--threads", "1"}, nil, dir)
	serve.WaitHTTP(t, "http://"+serveAddr+"/ready", 60*time.Second)

	// Prometheus with the repository's rules; the drift alert's 15m becomes 2s and its
	// minimum window 100 becomes 20 (this test's window holds 60 images).
	rules, err := os.ReadFile(filepath.Join(root, "deploy", "monitoring", "rules", "catdog.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(rules), "- alert: CatdogInputDrift")
	if i < 0 {
		t.Fatal("no CatdogInputDrift rule")
	}
	drift := strings.Replace(string(rules[i:]), "for: 15m", "for: 2s", 1)
	drift = strings.Replace(drift, "catdog_drift_window_size) >= 100", "catdog_drift_window_size) >= 20", 1)
	ruleFile := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(ruleFile, []byte(string(rules[:i])+drift), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{
		Targets: []string{serveAddr}, ScrapeInterval: 500 * time.Millisecond,
		RuleFiles: []string{ruleFile}, Alertmanagers: []string{am.Addr},
	})

	post := func(b []byte) {
		resp, err := http.Post("http://"+serveAddr+"/predict", "image/jpeg", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("predict: %d", resp.StatusCode)
		}
	}
	// Undrifted photos first: compared, no alert.
	for i := 500; i < 530; i++ {
		for _, cls := range []string{"cat", "dog"} {
			b, err := os.ReadFile(filepath.Join(shared, "petimages-dev", strings.ToUpper(cls[:1])+cls[1:], fmt.Sprintf("%s.%d.jpg", cls, i)))
			if err != nil {
				t.Fatal(err)
			}
			post(b)
		}
	}
	prom.WaitQuery(t, `catdog_drift_window_size`, 60*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 && s[0].Value == 60 })
	normal := prom.WaitQuery(t, `catdog_drift_share`, 30*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 })
	t.Logf("undrifted photos: drifted share %.2f", normal[0].Value)
	if gh.count() != 0 {
		t.Fatalf("dispatched before any drift: %+v", gh.calls)
	}

	// Darkened copies of 60 other photos fill the window.
	for i := 600; i < 630; i++ {
		for _, cls := range []string{"cat", "dog"} {
			b, err := os.ReadFile(filepath.Join(shared, "petimages-dev", strings.ToUpper(cls[:1])+cls[1:], fmt.Sprintf("%s.%d.jpg", cls, i)))
			if err != nil {
				t.Fatal(err)
			}
			d, err := drifttest.Derive(b, drifttest.Darken)
			if err != nil {
				t.Fatal(err)
			}
			post(d)
		}
	}
	prom.WaitQuery(t, `catdog_drift_detected{feature="brightness"}`, 60*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 && s[0].Value == 1 })
	prom.WaitQuery(t, `ALERTS{alertname="CatdogInputDrift",alertstate="firing"}`, 90*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 })

	select {
	case <-gh.got:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no repository_dispatch within 2 minutes of the alert firing\nrelay:\n%s\nalertmanager:\n%s", relay.Output(), am.Proc.Output())
	}
	gh.mu.Lock()
	d := gh.calls[0]
	gh.mu.Unlock()
	feats := strings.Join(d.Body.ClientPayload.DriftedFeatures, ",")
	if d.Path != "POST /repos/catdog-mlops/catdog/dispatches" || d.Auth != "Bearer "+token || d.Accept != "application/vnd.github+json" ||
		d.Body.EventType != "retrain" || d.Body.ClientPayload.Alertname != "CatdogInputDrift" ||
		d.Body.ClientPayload.Labels["job"] != "catdog" || d.Body.ClientPayload.GroupKey == "" ||
		!strings.Contains(feats, "brightness") || !strings.Contains(feats, "mean_r") {
		t.Errorf("dispatch %+v", d)
	}
	t.Logf("dispatched retrain for %s: drifted %s", d.Body.ClientPayload.GroupKey, feats)

	// Alertmanager keeps notifying every repeat interval; the relay sends nothing more.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(relay.Output(), "webhook deduplicated") {
		if time.Now().After(deadline) {
			t.Fatalf("Alertmanager did not notify again within a minute\nrelay:\n%s", relay.Output())
		}
		time.Sleep(500 * time.Millisecond)
	}
	gh.mu.Lock()
	attempts := slices.Clone(gh.attempts)
	gh.mu.Unlock()
	if n := gh.count(); n != 1 {
		t.Errorf("%d dispatches for one alert group, want 1", n)
	}
	// The 503 was retried once, after the Retry-After second (not the webhook's retry: the
	// relay answered Alertmanager only after the success).
	if len(attempts) != 2 || attempts[1].Sub(attempts[0]) < 950*time.Millisecond {
		t.Errorf("GitHub requests at %v, want a 503 and one retry at least 1 s later", attempts)
	}
	if strings.Contains(relay.Output(), token) || strings.Contains(serve.Output(), token) {
		t.Error("the token appears in a log")
	}
	if !strings.Contains(relay.Output(), "retraining dispatched") {
		t.Errorf("relay log:\n%s", relay.Output())
	}

	// The service's own log lines carry each image's features: a batch report on them sees the
	// same 120 images, and the darkening.
	logFile := filepath.Join(dir, "serve.log")
	if err := os.WriteFile(logFile, []byte(serve.Output()), 0o644); err != nil {
		t.Fatal(err)
	}
	reportDir := filepath.Join(dir, "report")
	run(t, ctx, dir, bin, "drift", "report", "--model", model, "--data", logFile, "--out", reportDir)
	type columns []struct {
		Feature string `json:"feature"`
		Drifted bool   `json:"drifted"`
	}
	var rep struct {
		CurrentRows int     `json:"current_rows"`
		Columns     columns `json:"columns"`
		Predictions *struct {
			CurrentRows   int     `json:"current_rows"`
			ReferenceRows int     `json:"reference_rows"`
			Columns       columns `json:"columns"`
		} `json:"predictions"`
	}
	b, err := os.ReadFile(filepath.Join(reportDir, "drift_report.json"))
	if err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("report: %v %s", err, b)
	}
	drifted := map[string]bool{}
	for _, c := range rep.Columns {
		drifted[c.Feature] = c.Drifted
	}
	if rep.CurrentRows != 120 || !drifted["brightness"] {
		t.Errorf("report on the serve log: %d rows, drifted %v", rep.CurrentRows, drifted)
	}
	// The trained model's profile records its validation predictions, and the log lines carry
	// each answer: the report compares them too.
	if p := rep.Predictions; p == nil || p.CurrentRows != 120 || p.ReferenceRows == 0 || len(p.Columns) != 2 {
		t.Errorf("report on the serve log: predictions %+v", p)
	} else {
		t.Logf("predictions of the served model against its validation split: %+v", p.Columns)
	}
}
