package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Prometheus is a real Prometheus server (Debian's /usr/bin/prometheus) started for a test,
// listening on 127.0.0.1 with its TSDB in a temporary directory.
type Prometheus struct {
	URL  string // http://127.0.0.1:PORT
	Proc *Process
}

// PrometheusOptions configures StartPrometheus.
type PrometheusOptions struct {
	// Targets are host:port addresses scraped at /metrics under job "catdog".
	Targets []string
	// ScrapeInterval defaults to 1s (also the rule evaluation interval).
	ScrapeInterval time.Duration
	// RuleFiles are loaded as rule_files (alerting/recording rules).
	RuleFiles []string
	// Alertmanagers are host:port addresses alerts are sent to.
	Alertmanagers []string
}

// StartPrometheus writes a config scraping opts.Targets, starts Prometheus and waits until it
// is ready. It is stopped at test cleanup.
func StartPrometheus(t testing.TB, opts PrometheusOptions) *Prometheus {
	t.Helper()
	bin := LookPath(t, "prometheus", "install the Debian package: apt-get install prometheus")
	if opts.ScrapeInterval <= 0 {
		opts.ScrapeInterval = time.Second
	}
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", opts.ScrapeInterval, opts.ScrapeInterval)
	if len(opts.RuleFiles) > 0 {
		b.WriteString("rule_files:\n")
		for _, f := range opts.RuleFiles {
			fmt.Fprintf(&b, "  - %q\n", f)
		}
	}
	if len(opts.Alertmanagers) > 0 {
		b.WriteString("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [")
		for i, a := range opts.Alertmanagers {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", a)
		}
		b.WriteString("]\n")
	}
	b.WriteString("scrape_configs:\n  - job_name: catdog\n    metrics_path: /metrics\n    static_configs:\n      - targets: [")
	for i, tg := range opts.Targets {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", tg)
	}
	b.WriteString("]\n")
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	port := FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := Start(t, bin, []string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}, nil, dir)
	prom := &Prometheus{URL: "http://" + addr, Proc: p}
	p.WaitHTTP(t, prom.URL+"/-/ready", 60*time.Second)
	return prom
}

// Sample is one series of an instant-query result.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant query through /api/v1/query and returns the vector (or scalar as one
// sample with no labels).
func (p *Prometheus) Query(ctx context.Context, query string) ([]Sample, error) {
	u := p.URL + "/api/v1/query?" + url.Values{"query": {query}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus query: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("prometheus query: %w", err)
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("prometheus query: bad response (%d): %.200s", resp.StatusCode, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus query %q: %s", query, r.Error)
	}
	switch r.Data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &vec); err != nil {
			return nil, fmt.Errorf("prometheus query: %w", err)
		}
		out := make([]Sample, 0, len(vec))
		for _, v := range vec {
			f, err := sampleValue(v.Value[1])
			if err != nil {
				return nil, err
			}
			out = append(out, Sample{Metric: v.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var sc [2]any
		if err := json.Unmarshal(r.Data.Result, &sc); err != nil {
			return nil, fmt.Errorf("prometheus query: %w", err)
		}
		f, err := sampleValue(sc[1])
		if err != nil {
			return nil, err
		}
		return []Sample{{Value: f}}, nil
	default:
		return nil, fmt.Errorf("prometheus query: unexpected result type %q", r.Data.ResultType)
	}
}

func sampleValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("prometheus query: sample value %v is not a string", v)
	}
	return strconv.ParseFloat(s, 64)
}

// WaitQuery polls query until ok accepts the result or timeout passes, then fails the test
// showing the last result. It returns the accepted result.
func (p *Prometheus) WaitQuery(t testing.TB, query string, timeout time.Duration, ok func([]Sample) bool) []Sample {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var (
		last []Sample
		err  error
	)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		last, err = p.Query(ctx, query)
		cancel()
		if err == nil && ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: prometheus query %q: last result %v, error %v\n--- prometheus output ---\n%s",
				query, last, err, tail(p.Proc.Output(), 2000))
		}
		time.Sleep(250 * time.Millisecond)
	}
}
