package mlflowclient

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

func TestExperimentGetOrCreate(t *testing.T) {
	ctx, c := testCtx(t), newTestClient(t)
	name := uniq(t, "exp")

	// concurrent callers all get the same experiment
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			exp, err := c.GetOrCreateExperiment(ctx, name, false)
			if err == nil {
				ids[i] = exp.ID
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil {
			t.Fatalf("GetOrCreateExperiment #%d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("concurrent GetOrCreateExperiment gave ids %v, want one id", ids)
		}
	}
	exp, err := c.GetExperiment(ctx, ids[0])
	if err != nil || exp.Name != name || exp.LifecycleStage != "active" {
		t.Fatalf("GetExperiment = %+v, %v", exp, err)
	}
	if exp.ArtifactLocation != "mlflow-artifacts:/"+exp.ID {
		t.Errorf("artifact_location = %q, want proxied mlflow-artifacts:/%s", exp.ArtifactLocation, exp.ID)
	}

	// creating the same name again is RESOURCE_ALREADY_EXISTS, HTTP 400
	_, err = c.CreateExperiment(ctx, name)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate CreateExperiment err = %v, want 400 RESOURCE_ALREADY_EXISTS", err)
	}

	// a deleted experiment holding the name is an error unless restoring is asked for
	if err := c.DeleteExperiment(ctx, exp.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetOrCreateExperiment(ctx, name, false); !errors.Is(err, ErrExperimentDeleted) {
		t.Fatalf("GetOrCreateExperiment(deleted) err = %v, want ErrExperimentDeleted", err)
	}
	restored, err := c.GetOrCreateExperiment(ctx, name, true)
	if err != nil || restored.ID != exp.ID {
		t.Fatalf("GetOrCreateExperiment(restore) = %+v, %v", restored, err)
	}
	if got, _ := c.GetExperiment(ctx, exp.ID); got.LifecycleStage != "active" {
		t.Fatalf("restored experiment lifecycle = %q", got.LifecycleStage)
	}
}

func TestSearchExperimentsPagination(t *testing.T) {
	ctx, c := testCtx(t), newTestClient(t)
	prefix := uniq(t, "page")
	want := map[string]bool{}
	for i := range 5 {
		n := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := c.CreateExperiment(ctx, n); err != nil {
			t.Fatal(err)
		}
		want[n] = true
	}
	got := map[string]bool{}
	token, pages := "", 0
	for {
		exps, next, err := c.searchExperiments(ctx, ExperimentQuery{Filter: fmt.Sprintf("name LIKE '%s-%%'", prefix), MaxResults: 2, PageToken: token, OrderBy: []string{"name ASC"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(exps) > 2 {
			t.Fatalf("page of %d > max_results 2", len(exps))
		}
		pages++
		for _, e := range exps {
			got[e.Name] = true
		}
		if token = next; token == "" {
			break
		}
	}
	if pages != 3 || len(got) != len(want) {
		t.Fatalf("pagination: %d pages, %d experiments; want 3 pages, %d experiments", pages, len(got), len(want))
	}
}

func TestRunLoggingReadBackByPython(t *testing.T) {
	ctx, c := testCtx(t), newTestClient(t)
	exp, err := c.GetOrCreateExperiment(ctx, uniq(t, "runs"), false)
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.CreateRun(ctx, CreateRunRequest{ExperimentID: exp.ID, RunName: "go-run", GitCommit: "0123456789abcdef0123456789abcdef01234567",
		Tags: []Tag{{Key: "team", Value: "pets"}}})
	if err != nil {
		t.Fatal(err)
	}
	id := run.Info.RunID
	if run.Info.Status != StatusRunning || run.Info.RunName != "go-run" {
		t.Fatalf("created run info = %+v", run.Info)
	}
	for _, k := range []string{TagUser, TagSourceName, TagSourceType, TagGitCommit, TagRunName} {
		if _, ok := run.Tag(k); !ok {
			t.Errorf("system tag %s missing on the created run", k)
		}
	}

	// 150 params and 2500 metric points: more than one log-batch request can carry
	e := testenv.MLflowExpectation{TrackingURI: server.URI, RunID: id, Status: StatusFinished,
		Params: map[string]string{}, Tags: map[string]string{"team": "pets", TagGitCommit: "0123456789abcdef0123456789abcdef01234567", TagSourceType: "LOCAL", TagRunName: "go-run"}}
	var b Batch
	for i := range 150 {
		k, v := fmt.Sprintf("p%03d", i), fmt.Sprintf("value %d", i)
		b.Params = append(b.Params, Param{Key: k, Value: v})
		e.Params[k] = v
	}
	ts := time.Now().UnixMilli()
	for step := range int64(500) {
		for j, key := range []string{"train/loss", "train/accuracy", "val/loss", "val/accuracy", "lr"} {
			b.Metrics = append(b.Metrics, Metric{Key: key, Value: Float(float64(step)/1000 + float64(j)), Timestamp: ts + step, Step: step})
		}
	}
	special := []Metric{
		{Key: "special", Value: Float(math.NaN()), Timestamp: ts, Step: 0},
		{Key: "special", Value: Float(math.Inf(1)), Timestamp: ts, Step: 1},
		{Key: "special", Value: Float(math.Inf(-1)), Timestamp: ts, Step: 2},
		{Key: "special", Value: -0.5, Timestamp: ts, Step: 3},
	}
	b.Metrics = append(b.Metrics, special...)
	b.Tags = []Tag{{Key: "stage", Value: "test"}}
	e.Tags["stage"] = "test"
	if n := len(b.chunks()); n < 3 {
		t.Fatalf("batch split into %d requests, want >= 3", n)
	}
	if err := c.LogBatch(ctx, id, b); err != nil {
		t.Fatal(err)
	}
	// logging the same batch again is idempotent: no duplicated points
	if err := c.LogBatch(ctx, id, b); err != nil {
		t.Fatalf("re-logging the same batch: %v", err)
	}
	addMetrics(&e, b.Metrics...)

	hist, err := c.GetMetricHistory(ctx, id, "val/accuracy")
	if err != nil || len(hist) != 500 {
		t.Fatalf("GetMetricHistory = %d points, %v; want 500", len(hist), err)
	}
	sp, err := c.GetMetricHistory(ctx, id, "special")
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(sp, func(i, j int) bool { return sp[i].Step < sp[j].Step })
	if len(sp) != 4 || !math.IsNaN(float64(sp[0].Value)) || float64(sp[1].Value) != math.MaxFloat64 || float64(sp[2].Value) != -math.MaxFloat64 || sp[3].Value != -0.5 {
		t.Fatalf("special values read back as %+v", sp)
	}

	// changing a param is rejected by the server with a typed error
	err = c.LogParam(ctx, id, "p000", "other")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != CodeInvalidParameterValue {
		t.Fatalf("changing a param: err = %v, want INVALID_PARAMETER_VALUE", err)
	}

	// artifacts next to the metrics
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "plots", "cm.png"), randomBytes(t, 70_000))
	writeFile(t, filepath.Join(dir, "metrics.json"), []byte(`{"accuracy":0.9}`))
	root, err := c.RunArtifactRoot(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadDir(ctx, root, dir, "outputs"); err != nil {
		t.Fatal(err)
	}
	e.Artifacts = map[string]string{"outputs/plots/cm.png": filepath.Join(dir, "plots", "cm.png"), "outputs/metrics.json": filepath.Join(dir, "metrics.json")}

	if err := c.TerminateRun(ctx, id, StatusFinished); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRun(ctx, id)
	if err != nil || got.Info.Status != StatusFinished || got.Info.EndTime == 0 {
		t.Fatalf("terminated run = %+v, %v", got.Info, err)
	}
	testenv.CheckMLflow(t, e)
}

func TestSearchRuns(t *testing.T) {
	ctx, c := testCtx(t), newTestClient(t)
	exp, err := c.GetOrCreateExperiment(ctx, uniq(t, "search"), false)
	if err != nil {
		t.Fatal(err)
	}
	statuses := []string{StatusFinished, StatusFailed, StatusKilled, StatusFinished, StatusFinished}
	for i, st := range statuses {
		r, err := c.CreateRun(ctx, CreateRunRequest{ExperimentID: exp.ID, RunName: fmt.Sprintf("r%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.LogMetric(ctx, r.Info.RunID, "test_accuracy", 0.5+float64(i)/10, 0); err != nil {
			t.Fatal(err)
		}
		if err := c.TerminateRun(ctx, r.Info.RunID, st); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		filter string
		want   []string // run names in order
	}{
		{"finished by accuracy", "attributes.status = 'FINISHED'", []string{"r4", "r3", "r0"}},
		{"accuracy threshold", "metrics.test_accuracy > 0.65", []string{"r4", "r3", "r2"}},
		{"killed", "attributes.status = 'KILLED'", []string{"r2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var names []string
			token := ""
			for {
				runs, next, err := c.SearchRuns(ctx, RunQuery{ExperimentIDs: []string{exp.ID}, Filter: tc.filter,
					OrderBy: []string{"metrics.test_accuracy DESC"}, MaxResults: 2, PageToken: token})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range runs {
					names = append(names, r.Info.RunName)
				}
				if token = next; token == "" {
					break
				}
			}
			if fmt.Sprint(names) != fmt.Sprint(tc.want) {
				t.Errorf("SearchRuns(%q) = %v, want %v", tc.filter, names, tc.want)
			}
		})
	}
}

func TestValidationBeforeSending(t *testing.T) {
	ctx, c := testCtx(t), newTestClient(t)
	tests := []struct {
		name string
		b    Batch
	}{
		{"empty key", Batch{Metrics: []Metric{{Key: ""}}}},
		{"bad char", Batch{Metrics: []Metric{{Key: "acc@1"}}}},
		{"dotdot", Batch{Params: []Param{{Key: "a/../b", Value: "1"}}}},
		{"leading slash", Batch{Tags: []Tag{{Key: "/x", Value: "1"}}}},
		{"double slash", Batch{Tags: []Tag{{Key: "a//b", Value: "1"}}}},
		{"long key", Batch{Params: []Param{{Key: string(bytes.Repeat([]byte("k"), 251)), Value: "1"}}}},
		{"long param", Batch{Params: []Param{{Key: "k", Value: string(bytes.Repeat([]byte("v"), 6001))}}}},
		{"conflicting params", Batch{Params: []Param{{Key: "k", Value: "1"}, {Key: "k", Value: "2"}}}},
		{"negative timestamp", Batch{Metrics: []Metric{{Key: "k", Timestamp: -1}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var verr *ValidationError
			// run ID does not exist: a request would fail with RESOURCE_DOES_NOT_EXIST instead
			if err := c.LogBatch(ctx, "0000000000000000", tc.b); !errors.As(err, &verr) {
				t.Fatalf("LogBatch err = %v, want *ValidationError", err)
			}
		})
	}
	for _, ok := range []string{"val/accuracy", "train loss", "a:b", "x.y-z_1"} {
		if err := validateKey("metric", ok); err != nil {
			t.Errorf("validateKey(%q) = %v, want nil", ok, err)
		}
	}
}

func TestErrorsAreTyped(t *testing.T) {
	ctx, c := testCtx(t), newTestClient(t)
	_, err := c.GetRun(ctx, "doesnotexist00000000000000000000")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.ErrorCode != CodeResourceDoesNotExist || !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetRun(missing) err = %#v", err)
	}
	// an endpoint the server does not serve: bare 404
	err = c.do(ctx, request{method: http.MethodGet, path: api("/no-such-endpoint"), idempotent: true})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.ErrorCode != CodeEndpointNotFound {
		t.Fatalf("unknown endpoint err = %#v", err)
	}
	// a Host outside localhost/private ranges: 403 text/plain from the security middleware
	hc := &http.Client{Transport: hostRewriter{host: "mlflow.example.com"}}
	c2 := newTestClient(t, withHTTPClient(hc))
	_, err = c2.GetExperiment(ctx, "0")
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.ErrorCode != CodePermissionDenied {
		t.Fatalf("foreign Host err = %#v", err)
	}
}

type hostRewriter struct{ host string }

func (h hostRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	return http.DefaultTransport.RoundTrip(r)
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
