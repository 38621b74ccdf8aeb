package mlflowclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// MLflow 3 experiment kinds (the experiment tag TagExperimentKind). The UI opens an
// experiment of kind ExperimentKindTraining on its "Training runs" page; an experiment
// without the tag opens on the GenAI overview.
const (
	TagExperimentKind      = "mlflow.experimentKind"
	ExperimentKindTraining = "custom_model_development"
	// TagDatasetContext is the input tag saying what a dataset was used for ("training").
	TagDatasetContext = "mlflow.data.context"
	// TagModelVersions is the LoggedModel tag the server keeps with the registered versions
	// created from the model (a JSON list of {"name", "version"}).
	TagModelVersions = "mlflow.modelVersions"
)

// LoggedModel statuses.
const (
	LoggedModelPending = "LOGGED_MODEL_PENDING"
	LoggedModelReady   = "LOGGED_MODEL_READY"
	LoggedModelFailed  = "LOGGED_MODEL_FAILED"
)

// LoggedModelInfo mirrors the server's LoggedModelInfo message.
type LoggedModelInfo struct {
	ModelID           string `json:"model_id"`
	ExperimentID      string `json:"experiment_id"`
	Name              string `json:"name"`
	CreationTimestamp int64  `json:"creation_timestamp_ms"`
	LastUpdated       int64  `json:"last_updated_timestamp_ms"`
	ArtifactURI       string `json:"artifact_uri"`
	Status            string `json:"status"`
	ModelType         string `json:"model_type"`
	SourceRunID       string `json:"source_run_id"`
	Tags              []Tag  `json:"tags"`
}

// LoggedModelData holds a LoggedModel's params and the metrics linked to it.
type LoggedModelData struct {
	Params  []Param  `json:"params"`
	Metrics []Metric `json:"metrics"`
}

// LoggedModel mirrors the server's LoggedModel message (an MLflow 3 model, listed in the
// experiment's Models tab and in the runs table's Models column).
type LoggedModel struct {
	Info LoggedModelInfo `json:"info"`
	Data LoggedModelData `json:"data"`
}

// Tag returns the value of the model's tag key and whether it is set.
func (m *LoggedModel) Tag(key string) (string, bool) {
	for _, t := range m.Info.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// URI is the model's models:/<model_id> URI (the source of versions registered from it).
func (m *LoggedModel) URI() string { return "models:/" + m.Info.ModelID }

// Dataset mirrors the server's Dataset message. Source, Schema and Profile are JSON strings.
type Dataset struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type"`
	Source     string `json:"source"`
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

// DatasetInput is a dataset used by a run, with input tags (e.g. mlflow.data.context).
type DatasetInput struct {
	Tags    []Tag   `json:"tags"`
	Dataset Dataset `json:"dataset"`
}

// ModelIO names a LoggedModel used or produced by a run (Step: the step it was logged at).
type ModelIO struct {
	ModelID string `json:"model_id"`
	Step    int64  `json:"step,omitempty"`
}

// RunInputs are the datasets and models a run used.
type RunInputs struct {
	DatasetInputs []DatasetInput `json:"dataset_inputs"`
	ModelInputs   []ModelIO      `json:"model_inputs"`
}

// RunOutputs are the models a run produced.
type RunOutputs struct {
	ModelOutputs []ModelIO `json:"model_outputs"`
}

const (
	maxDatasetName   = 500
	maxDatasetDigest = 36 // the SQL store's column
)

// Validate checks what the server would reject.
func (d Dataset) Validate() error {
	switch {
	case d.Name == "" || len(d.Name) > maxDatasetName:
		return &ValidationError{Field: "dataset name", Value: trunc(d.Name), Reason: "must be 1-500 characters"}
	case d.Digest == "" || len(d.Digest) > maxDatasetDigest:
		return &ValidationError{Field: "dataset digest", Value: trunc(d.Digest), Reason: "must be 1-36 characters"}
	case d.SourceType == "" || d.Source == "":
		return &ValidationError{Field: "dataset source", Value: d.Name, Reason: "source_type and source are required"}
	}
	return nil
}

// LogInputs records datasets a run used (runs/log-inputs). Logging the same dataset again is
// harmless: the server keeps one input per (dataset, run).
func (c *Client) LogInputs(ctx context.Context, runID string, datasets []DatasetInput) error {
	for _, d := range datasets {
		if err := d.Dataset.Validate(); err != nil {
			return err
		}
	}
	return c.do(ctx, request{method: http.MethodPost, path: api("/runs/log-inputs"),
		body: map[string]any{"run_id": runID, "datasets": nonNil(datasets)}, idempotent: true})
}

// LogOutputs records models a run produced (runs/outputs). The server rejects an output it
// already has, so LogOutputs first skips the ones the run lists.
func (c *Client) LogOutputs(ctx context.Context, runID string, models []ModelIO) error {
	run, err := c.GetRun(ctx, runID)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, m := range run.Outputs.ModelOutputs {
		have[m.ModelID] = true
	}
	var todo []ModelIO
	for _, m := range models {
		if !have[m.ModelID] {
			todo = append(todo, m)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	return c.do(ctx, request{method: http.MethodPost, path: api("/runs/outputs"),
		body: map[string]any{"run_id": runID, "models": todo}, idempotent: true})
}

// CreateLoggedModelRequest describes a new LoggedModel.
type CreateLoggedModelRequest struct {
	ExperimentID string
	Name         string // the model's name in the run ("model" for mlflow.<flavor>.log_model(name="model"))
	ModelType    string
	SourceRunID  string
	Params       []Param
	Tags         []Tag
}

// maxLoggedModelParams is how many params go with the create call (the Python client's
// MLFLOW_CREATE_LOGGED_MODEL_PARAMS_BATCH_SIZE); the rest follow in batches of that size.
const maxLoggedModelParams = 100

// CreateLoggedModel creates a LoggedModel in the PENDING state (POST logged-models), as
// mlflow.<flavor>.log_model does before uploading the files. It is not retried once the
// server may have processed it (a retry would create a second model): use
// FindLoggedModel to look for one first when replaying.
func (c *Client) CreateLoggedModel(ctx context.Context, r CreateLoggedModelRequest) (*LoggedModel, error) {
	for _, p := range r.Params {
		if err := validateKey("param", p.Key); err != nil {
			return nil, err
		}
	}
	first := r.Params[:min(len(r.Params), maxLoggedModelParams)]
	body := map[string]any{"experiment_id": r.ExperimentID, "params": nonNil(first), "tags": nonNil(r.Tags)}
	if r.Name != "" {
		body["name"] = r.Name
	}
	if r.ModelType != "" {
		body["model_type"] = r.ModelType
	}
	if r.SourceRunID != "" {
		body["source_run_id"] = r.SourceRunID
	}
	var out struct {
		Model LoggedModel `json:"model"`
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: api("/logged-models"), body: body, out: &out}); err != nil {
		return nil, err
	}
	if rest := r.Params[len(first):]; len(rest) > 0 {
		if err := c.logLoggedModelParams(ctx, out.Model.Info.ModelID, rest); err != nil {
			return &out.Model, err
		}
		return c.getLoggedModel(ctx, out.Model.Info.ModelID)
	}
	return &out.Model, nil
}

func loggedModelPath(id string) string { return api("/logged-models/" + url.PathEscape(id)) }

// getLoggedModel returns a LoggedModel with its params and linked metrics.
func (c *Client) getLoggedModel(ctx context.Context, modelID string) (*LoggedModel, error) {
	var out struct {
		Model LoggedModel `json:"model"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: loggedModelPath(modelID), out: &out, idempotent: true}); err != nil {
		return nil, err
	}
	return &out.Model, nil
}

// logLoggedModelParams adds params to a LoggedModel (in batches of 100, as the Python client).
func (c *Client) logLoggedModelParams(ctx context.Context, modelID string, params []Param) error {
	for len(params) > 0 {
		n := min(len(params), maxLoggedModelParams)
		if err := c.do(ctx, request{method: http.MethodPost, path: loggedModelPath(modelID) + "/params",
			body: map[string]any{"model_id": modelID, "params": params[:n]}, idempotent: true}); err != nil {
			return err
		}
		params = params[n:]
	}
	return nil
}

// FinalizeLoggedModel sets a LoggedModel's final status (LoggedModelReady or LoggedModelFailed).
func (c *Client) FinalizeLoggedModel(ctx context.Context, modelID, status string) (*LoggedModel, error) {
	var out struct {
		Model LoggedModel `json:"model"`
	}
	if err := c.do(ctx, request{method: http.MethodPatch, path: loggedModelPath(modelID),
		body: map[string]any{"model_id": modelID, "status": status}, out: &out, idempotent: true}); err != nil {
		return nil, err
	}
	return &out.Model, nil
}

// SearchLoggedModels returns one page of the LoggedModels of experiments matching filter
// (e.g. "source_run_id = '…' AND name = 'model'") and the next page token.
func (c *Client) SearchLoggedModels(ctx context.Context, experimentIDs []string, filter, pageToken string) ([]LoggedModel, string, error) {
	body := map[string]any{"experiment_ids": experimentIDs, "max_results": 100}
	if filter != "" {
		body["filter"] = filter
	}
	if pageToken != "" {
		body["page_token"] = pageToken
	}
	var out struct {
		Models        []LoggedModel `json:"models"`
		NextPageToken string        `json:"next_page_token"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: api("/logged-models/search"), body: body, out: &out, idempotent: true})
	return out.Models, out.NextPageToken, err
}

// FindLoggedModel returns the LoggedModel called name that run runID logged in experiment
// experimentID, or an error matching ErrNotFound.
func (c *Client) FindLoggedModel(ctx context.Context, experimentID, runID, name string) (*LoggedModel, error) {
	filter := fmt.Sprintf("source_run_id = '%s' AND name = '%s'", quoteFilter(runID), quoteFilter(name))
	ms, _, err := c.SearchLoggedModels(ctx, []string{experimentID}, filter, "")
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("%w: no logged model %q of run %s", ErrNotFound, name, runID)
	}
	return &ms[0], nil
}

func quoteFilter(s string) string { return strings.ReplaceAll(s, "'", "\\'") }

// LinkModelMetrics links the run's metric points logged at step to the LoggedModel (they
// then appear with the model in the Models tab), as mlflow.<flavor>.log_model(step=…)
// does: the points are logged again with model_id and their original timestamps, so the
// run's own histories gain no duplicate. dataset, when set, says what they were measured on.
func (c *Client) LinkModelMetrics(ctx context.Context, runID, modelID string, step int64, dataset *Dataset) error {
	run, err := c.GetRun(ctx, runID)
	if err != nil {
		return err
	}
	var b Batch
	for _, latest := range run.Data.Metrics {
		h, err := c.GetMetricHistory(ctx, runID, latest.Key)
		if err != nil {
			return err
		}
		for _, m := range h {
			if m.Step != step {
				continue
			}
			m.ModelID = modelID
			if dataset != nil {
				m.DatasetName, m.DatasetDigest = dataset.Name, dataset.Digest
			}
			b.Metrics = append(b.Metrics, m)
		}
	}
	if len(b.Metrics) == 0 {
		return nil
	}
	return c.LogBatch(ctx, runID, b)
}

// CreateModelVersionFromLoggedModel registers a new version of name from a LoggedModel
// (source models:/<model_id>, model_id set), as mlflow.register_model does in MLflow 3: the
// server resolves the files to the model's artifact location, takes the run from the model
// and adds the version to the model's mlflow.modelVersions tag. Not retried once the server
// may have processed it.
func (c *Client) CreateModelVersionFromLoggedModel(ctx context.Context, name, modelID string, tags ...Tag) (*ModelVersion, error) {
	if err := validateModelName(name); err != nil {
		return nil, err
	}
	body := map[string]any{"name": name, "source": "models:/" + modelID, "model_id": modelID, "tags": nonNil(tags)}
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: api("/model-versions/create"), body: body, out: &out}); err != nil {
		return nil, err
	}
	return &out.ModelVersion, nil
}

// ExperimentURL is the UI page of an experiment's runs (…/#/experiments/ID/runs).
func (c *Client) ExperimentURL(experimentID string) string {
	return c.base.String() + "/#/experiments/" + url.PathEscape(experimentID) + "/runs"
}

// RunURL is the UI page of a run.
func (c *Client) RunURL(experimentID, runID string) string {
	return c.base.String() + "/#/experiments/" + url.PathEscape(experimentID) + "/runs/" + url.PathEscape(runID)
}

// LoggedModelURL is the UI page of a LoggedModel.
func (c *Client) LoggedModelURL(experimentID, modelID string) string {
	return c.base.String() + "/#/experiments/" + url.PathEscape(experimentID) + "/models/" + url.PathEscape(modelID)
}
