package monitoring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/drift/imagedrift"
	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/inference"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin := testenv.LookPath(t, "promtool", "install the Debian package: apt-get install prometheus")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtool(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"check rules", []string{"check", "rules", "rules/catdog.rules.yml"}, "SUCCESS: 12 rules found"},
		{"test rules", []string{"test", "rules", "rules/catdog.rules.test.yml"}, "SUCCESS"},
		{"check config", []string{"check", "config", "prometheus.yml"}, "is valid prometheus config file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out := promtool(t, tc.args...); !strings.Contains(out, tc.want) {
				t.Errorf("promtool %v output lacks %q:\n%s", tc.args, tc.want, out)
			}
		})
	}
}

// fixed is a constant predictor: every image is a cat with probability 0.9.
type fixed struct{}

func (fixed) Predict(_ []float32, n int) ([][]float32, error) {
	out := make([][]float32, n)
	for i := range out {
		out[i] = []float32{0.9, 0.1}
	}
	return out, nil
}

func (fixed) Spec() imageprep.Spec { s := imageprep.DefaultSpec(); s.Size = 8; return s }

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Annotations struct {
		List []struct {
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

var metricName = regexp.MustCompile(`\b(?:catdog|process|go)_[a-z_]+\b`)

// familyName maps a series name to its metric family (histogram series carry suffixes).
func familyName(s string) string {
	for _, suf := range []string{"_bucket", "_count", "_sum"} {
		if f, ok := strings.CutSuffix(s, suf); ok {
			return f
		}
	}
	return s
}

// TestAgainstLivePrometheus loads the rules into a real Prometheus that scrapes a real
// inference service, then checks that every rule is healthy, that every metric the rules
// and the dashboard use is exported by the service, and that every dashboard query runs.
// TestAlertmanagerConfig checks alertmanager.yml with the real amtool and that the drift alert
// is routed to the alert-relay webhook.
func TestAlertmanagerConfig(t *testing.T) {
	amtool := testenv.LookPath(t, "amtool", "install the Debian package: apt-get install prometheus-alertmanager")
	out, err := exec.Command(amtool, "check-config", "alertmanager.yml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	out, err = exec.Command(amtool, "config", "routes", "test", "--config.file=alertmanager.yml", "alertname=CatdogInputDrift", "job=catdog").Output()
	if err != nil || strings.TrimSpace(string(out)) != "retrain" {
		t.Errorf("CatdogInputDrift routes to %q (%v), want retrain", out, err)
	}
	out, err = exec.Command(amtool, "config", "routes", "test", "--config.file=alertmanager.yml", "alertname=CatdogInferenceHighErrorRatio").Output()
	if err != nil || strings.TrimSpace(string(out)) != "default" {
		t.Errorf("CatdogInferenceHighErrorRatio routes to %q (%v), want default", out, err)
	}
}

// driftProfile is a reference of 40 solid-colour 8×8 images for the fixed predictor.
func driftProfile(t *testing.T) *drift.Profile {
	t.Helper()
	var rows []imageprep.Features
	for i := 0; i < 40; i++ {
		var b bytes.Buffer
		m := image.NewRGBA(image.Rect(0, 0, 4+i%3, 4))
		for j := range m.Pix {
			m.Pix[j] = uint8(40 + 5*i + j%7)
		}
		if err := png.Encode(&b, m); err != nil {
			t.Fatal(err)
		}
		f, err := imageprep.FileFeatures(b.Bytes(), 8, imageprep.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, f)
	}
	p, err := drift.NewProfile(imagedrift.Table(rows), 8, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.Predictions = &drift.PredictionProfile{Split: "val", Rows: 4, ClassShare: map[string]float64{"cat": 0.5, "dog": 0.5}, Confidence: []float64{0.9, 0.8, 0.7, 0.95}}
	return p
}

func TestAgainstLivePrometheus(t *testing.T) {
	reg := inference.NewRegistry()
	svc, err := inference.New(fixed{}, reg, nil, inference.WithModelInfo(inference.ModelInfo{Name: "m", Version: "1", RunID: "r"}),
		inference.WithDrift(driftProfile(t), drift.MonitorConfig{EveryRequests: 10, MinRows: 5}))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	srv := httptest.NewServer(svc)
	defer srv.Close()
	if err := svc.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}

	abs, err := filepath.Abs("rules/catdog.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{
		Targets:        []string{strings.TrimPrefix(srv.URL, "http://")},
		ScrapeInterval: 500 * time.Millisecond,
		RuleFiles:      []string{abs},
	})
	prom.WaitQuery(t, `catdog_predictions_total{class="cat"}`, 30*time.Second, func(s []testenv.Sample) bool {
		return len(s) == 1 && s[0].Value == 0
	})
	// Traffic after the first scrape, so that rates see it.
	var img bytes.Buffer
	if err := png.Encode(&img, solid(4)); err != nil {
		t.Fatal(err)
	}
	post := func(ct string, body []byte, want int) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/predict", ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("predict: %d, want %d", resp.StatusCode, want)
		}
	}
	post("text/plain", img.Bytes(), http.StatusUnsupportedMediaType)
	for range 20 {
		post("image/png", img.Bytes(), http.StatusOK)
	}

	prom.WaitQuery(t, `catdog_predictions_total{class="cat"}`, 30*time.Second, func(s []testenv.Sample) bool {
		return len(s) == 1 && s[0].Value == 20
	})
	// Recording rules evaluate against the scraped data.
	prom.WaitQuery(t, `catdog:predictions_cat:ratio_rate1h`, 30*time.Second, func(s []testenv.Sample) bool {
		return len(s) == 1 && s[0].Value == 1
	})

	// Every rule group is loaded and every rule evaluates without error.
	deadline := time.Now().Add(30 * time.Second)
	for {
		groups, bad := ruleHealth(t, prom.URL)
		if groups == 3 && len(bad) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rules: %d groups loaded, unhealthy: %v", groups, bad)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Every metric family the service exports (and the recording rules define).
	exported := map[string]bool{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		exported[mf.GetName()] = true
	}
	rules, err := os.ReadFile("rules/catdog.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`record: (\S+)`).FindAllStringSubmatch(string(rules), -1) {
		exported[m[1]] = true
	}
	var dash dashboard
	b, err := os.ReadFile("grafana/catdog-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, a := range dash.Annotations.List {
		exprs = append(exprs, a.Expr)
	}
	for _, text := range append([]string{string(rules)}, exprs...) {
		for _, name := range metricName.FindAllString(text, -1) {
			if !exported[familyName(name)] && !exported[name] {
				t.Errorf("%s is used by the rules or the dashboard but not exported by the service", name)
			}
		}
	}

	vars := strings.NewReplacer("$__rate_interval", "1m", "$job", ".*", "$instance", ".*")
	for _, e := range exprs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := prom.Query(ctx, vars.Replace(e)); err != nil {
			t.Errorf("dashboard query %q: %v", e, err)
		}
		cancel()
	}
}

func solid(n int) image.Image {
	m := image.NewRGBA(image.Rect(0, 0, n, n))
	for i := range m.Pix {
		m.Pix[i] = 0xff
	}
	return m
}

// ruleHealth returns the number of rule groups Prometheus loaded and the rules that are not
// healthy (health "ok"; "unknown" before the first evaluation counts as not yet healthy).
func ruleHealth(t *testing.T, base string) (int, []string) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			if rule.Health != "ok" {
				bad = append(bad, rule.Name+": "+rule.Health+" "+rule.LastError)
			}
		}
	}
	return len(r.Data.Groups), bad
}
