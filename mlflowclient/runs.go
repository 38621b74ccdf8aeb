package mlflowclient

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// Standard MLflow system tags.
const (
	TagUser       = "mlflow.user"
	TagSourceName = "mlflow.source.name"
	TagSourceType = "mlflow.source.type"
	TagGitCommit  = "mlflow.source.git.commit"
	TagRunName    = "mlflow.runName"
)

// CreateRunRequest describes a new run. Missing standard tags are filled in by CreateRun:
// mlflow.user (MLFLOW_TRACKING_USERNAME, else the OS user), mlflow.source.name (the program
// path), mlflow.source.type (LOCAL), mlflow.runName (RunName) and mlflow.source.git.commit
// (GitCommit, when set).
type CreateRunRequest struct {
	ExperimentID string
	RunName      string
	StartTime    time.Time // zero: now
	GitCommit    string
	Tags         []Tag
}

// CreateRun starts a run in RUNNING state. It is not retried after the server may have
// processed it (a retry could create a second run).
func (c *Client) CreateRun(ctx context.Context, r CreateRunRequest) (*Run, error) {
	tags := withDefaultRunTags(r)
	start := r.StartTime
	if start.IsZero() {
		start = time.Now()
	}
	userID := ""
	for _, t := range tags {
		if t.Key == TagUser {
			userID = t.Value
		}
	}
	body := map[string]any{"experiment_id": r.ExperimentID, "start_time": start.UnixMilli(), "tags": tags, "user_id": userID}
	if r.RunName != "" {
		body["run_name"] = r.RunName
	}
	var out struct {
		Run Run `json:"run"`
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: api("/runs/create"), body: body, out: &out}); err != nil {
		return nil, err
	}
	return &out.Run, nil
}

func withDefaultRunTags(r CreateRunRequest) []Tag {
	have := map[string]bool{}
	tags := append([]Tag(nil), r.Tags...)
	for _, t := range tags {
		have[t.Key] = true
	}
	add := func(k, v string) {
		if !have[k] && v != "" {
			tags = append(tags, Tag{Key: k, Value: v})
			have[k] = true
		}
	}
	add(TagUser, currentUser())
	prog := "<unknown>"
	if len(os.Args) > 0 {
		prog = os.Args[0]
	}
	add(TagSourceName, prog)
	add(TagSourceType, "LOCAL")
	add(TagRunName, r.RunName)
	add(TagGitCommit, r.GitCommit)
	return tags
}

func currentUser() string {
	if u := os.Getenv(EnvTrackingUsername); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// GitCommit returns the HEAD commit of the git repository holding dir, or "" when there is none.
func GitCommit(ctx context.Context, dir string) string {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "HEAD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// GetRun returns a run with its latest metrics, params and tags.
func (c *Client) GetRun(ctx context.Context, runID string) (*Run, error) {
	var out struct {
		Run Run `json:"run"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: api("/runs/get"),
		query: url.Values{"run_id": {runID}}, out: &out, idempotent: true})
	if err != nil {
		return nil, err
	}
	return &out.Run, nil
}

// UpdateRun sets a run's status and end time (endTime zero: not sent).
func (c *Client) UpdateRun(ctx context.Context, runID, status string, endTime time.Time) (*RunInfo, error) {
	body := map[string]any{"run_id": runID, "status": status}
	if !endTime.IsZero() {
		body["end_time"] = endTime.UnixMilli()
	}
	var out struct {
		RunInfo RunInfo `json:"run_info"`
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: api("/runs/update"), body: body, out: &out, idempotent: true}); err != nil {
		return nil, err
	}
	return &out.RunInfo, nil
}

// TerminateRun ends a run with status (StatusFinished, StatusFailed or StatusKilled) now.
func (c *Client) TerminateRun(ctx context.Context, runID, status string) error {
	_, err := c.UpdateRun(ctx, runID, status, time.Now())
	return err
}

// RunQuery selects runs; zero values use the server defaults.
type RunQuery struct {
	ExperimentIDs []string
	Filter        string   // e.g. "metrics.test_accuracy > 0.9 and attributes.status = 'FINISHED'"
	OrderBy       []string // e.g. "metrics.test_accuracy DESC"
	MaxResults    int
	PageToken     string
	ViewType      string
}

// SearchRuns returns one page of runs and the next page token ("" at the end).
func (c *Client) SearchRuns(ctx context.Context, q RunQuery) ([]Run, string, error) {
	body := map[string]any{"experiment_ids": q.ExperimentIDs}
	if q.Filter != "" {
		body["filter"] = q.Filter
	}
	if len(q.OrderBy) > 0 {
		body["order_by"] = q.OrderBy
	}
	if q.MaxResults > 0 {
		body["max_results"] = q.MaxResults
	}
	if q.PageToken != "" {
		body["page_token"] = q.PageToken
	}
	if q.ViewType != "" {
		body["run_view_type"] = q.ViewType
	}
	var out struct {
		Runs          []Run  `json:"runs"`
		NextPageToken string `json:"next_page_token"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: api("/runs/search"), body: body, out: &out, idempotent: true})
	return out.Runs, out.NextPageToken, err
}

// maxHistoryPages bounds GetMetricHistory (25000 points per page on the server).
const maxHistoryPages = 400

// GetMetricHistory returns every point of metric key of a run, following pagination.
func (c *Client) GetMetricHistory(ctx context.Context, runID, key string) ([]Metric, error) {
	var all []Metric
	token := ""
	for range maxHistoryPages {
		v := url.Values{"run_id": {runID}, "metric_key": {key}, "max_results": {strconv.Itoa(25000)}}
		if token != "" {
			v.Set("page_token", token)
		}
		var out struct {
			Metrics       []Metric `json:"metrics"`
			NextPageToken string   `json:"next_page_token"`
		}
		if err := c.do(ctx, request{method: http.MethodGet, path: api("/metrics/get-history"), query: v, out: &out, idempotent: true}); err != nil {
			return nil, err
		}
		all = append(all, out.Metrics...)
		if out.NextPageToken == "" {
			return all, nil
		}
		token = out.NextPageToken
	}
	return all, nil
}
