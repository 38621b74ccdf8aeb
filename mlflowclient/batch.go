package mlflowclient

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Server limits of one log-batch request (mlflow/utils/validation.py).
const (
	maxBatchMetrics  = 1000
	maxBatchParams   = 100
	maxBatchTags     = 100
	maxBatchEntities = 1000
	maxKeyLen        = 250
	maxParamValueLen = 6000
	maxTagValueLen   = 8000
)

var keyRE = regexp.MustCompile(`^[/\w.\- :]*$`)

// validateKey checks a metric, param or tag key as the server does: 1-250 characters of
// letters, digits, '_', '-', '.', ' ', ':' and '/', path-normal (no "..", no leading or
// doubled '/', not ".").
func validateKey(kind, key string) error {
	switch {
	case key == "":
		return &ValidationError{Field: kind + " key", Value: key, Reason: "empty"}
	case len(key) > maxKeyLen:
		return &ValidationError{Field: kind + " key", Value: trunc(key), Reason: "longer than 250 characters"}
	case !keyRE.MatchString(key):
		return &ValidationError{Field: kind + " key", Value: trunc(key), Reason: "only alphanumerics, '_', '-', '.', ' ', ':' and '/' are allowed"}
	case key == "." || strings.HasPrefix(key, "/") || strings.Contains(key, "//") ||
		key == ".." || strings.HasPrefix(key, "../") || strings.HasSuffix(key, "/..") || strings.Contains(key, "/../"):
		return &ValidationError{Field: kind + " key", Value: trunc(key), Reason: "must be a normalized relative path"}
	}
	return nil
}

// Batch is what one LogBatch call records. It may be of any size: LogBatch splits it.
type Batch struct {
	Metrics []Metric
	Params  []Param
	Tags    []Tag
}

// Validate checks keys and value sizes before anything is sent.
func (b Batch) Validate() error {
	seen := map[string]string{}
	for _, m := range b.Metrics {
		if err := validateKey("metric", m.Key); err != nil {
			return err
		}
		if m.Timestamp < 0 {
			return &ValidationError{Field: "metric timestamp", Value: m.Key, Reason: "negative"}
		}
	}
	for _, p := range b.Params {
		if err := validateKey("param", p.Key); err != nil {
			return err
		}
		if len(p.Value) > maxParamValueLen {
			return &ValidationError{Field: "param value", Value: p.Key, Reason: "longer than 6000 characters"}
		}
		if v, dup := seen[p.Key]; dup && v != p.Value {
			return &ValidationError{Field: "param", Value: p.Key, Reason: "logged twice with different values"}
		}
		seen[p.Key] = p.Value
	}
	for _, t := range b.Tags {
		if err := validateKey("tag", t.Key); err != nil {
			return err
		}
		if len(t.Value) > maxTagValueLen {
			return &ValidationError{Field: "tag value", Value: t.Key, Reason: "longer than 8000 characters"}
		}
	}
	return nil
}

// chunks splits b into requests within the server limits: params and tags first (as the
// Python client does), then metrics in their original order. Duplicate params are dropped.
func (b Batch) chunks() []Batch {
	var params []Param
	seen := map[string]bool{}
	for _, p := range b.Params {
		if !seen[p.Key] {
			seen[p.Key] = true
			params = append(params, p)
		}
	}
	var out []Batch
	for len(params) > 0 || len(b.Tags) > 0 {
		np, nt := min(len(params), maxBatchParams), min(len(b.Tags), maxBatchTags)
		out = append(out, Batch{Params: params[:np], Tags: b.Tags[:nt]})
		params, b.Tags = params[np:], b.Tags[nt:]
	}
	ms := b.Metrics
	for len(ms) > 0 {
		n := min(len(ms), maxBatchMetrics)
		if len(out) > 0 {
			last := &out[len(out)-1]
			if last.Metrics == nil {
				room := maxBatchEntities - len(last.Params) - len(last.Tags)
				if room > 0 {
					n = min(n, room)
					last.Metrics = ms[:n]
					ms = ms[n:]
					continue
				}
			}
		}
		out = append(out, Batch{Metrics: ms[:n]})
		ms = ms[n:]
	}
	return out
}

// LogBatch records metrics, params and tags of a run, validating keys first and splitting
// the batch into requests within the server's limits. Logging the same batch twice is
// harmless: exact duplicate metric points, equal params and tags are idempotent on the server.
func (c *Client) LogBatch(ctx context.Context, runID string, b Batch) error {
	if err := b.Validate(); err != nil {
		return err
	}
	for _, ch := range b.chunks() {
		body := map[string]any{"run_id": runID, "metrics": nonNil(ch.Metrics), "params": nonNil(ch.Params), "tags": nonNil(ch.Tags)}
		if err := c.do(ctx, request{method: http.MethodPost, path: api("/runs/log-batch"), body: body, idempotent: true}); err != nil {
			return err
		}
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// LogMetric records one metric point at step, timestamped now.
func (c *Client) LogMetric(ctx context.Context, runID, key string, value float64, step int64) error {
	return c.LogBatch(ctx, runID, Batch{Metrics: []Metric{{Key: key, Value: Float(value), Timestamp: time.Now().UnixMilli(), Step: step}}})
}

// LogParam records one parameter.
func (c *Client) LogParam(ctx context.Context, runID, key, value string) error {
	return c.LogBatch(ctx, runID, Batch{Params: []Param{{Key: key, Value: value}}})
}

// SetTag sets one run tag.
func (c *Client) SetTag(ctx context.Context, runID, key, value string) error {
	return c.LogBatch(ctx, runID, Batch{Tags: []Tag{{Key: key, Value: value}}})
}
