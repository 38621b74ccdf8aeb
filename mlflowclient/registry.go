package mlflowclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

var aliasRE = regexp.MustCompile(`^[\w\-]{1,255}$`)
var reservedAliasRE = regexp.MustCompile(`^(?i:latest|v\d+)$`)

func validateModelName(name string) error {
	if name == "" || strings.ContainsAny(name, "/:") || len(name) > 256 {
		return &ValidationError{Field: "registered model name", Value: trunc(name), Reason: "must be non-empty, without '/' or ':'"}
	}
	return nil
}

// ValidateAlias checks an alias as the server does (letters, digits, '_' and '-'; not
// "latest" or "v<digits>").
func ValidateAlias(alias string) error {
	if !aliasRE.MatchString(alias) || reservedAliasRE.MatchString(alias) {
		return &ValidationError{Field: "alias", Value: trunc(alias), Reason: "must match [\\w-]{1,255} and not be 'latest' or 'v<digits>'"}
	}
	return nil
}

// CreateRegisteredModel creates a registered model (ErrAlreadyExists when it exists).
func (c *Client) CreateRegisteredModel(ctx context.Context, name, description string) (*RegisteredModel, error) {
	if err := validateModelName(name); err != nil {
		return nil, err
	}
	var out struct {
		RegisteredModel RegisteredModel `json:"registered_model"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: api("/registered-models/create"),
		body: map[string]any{"name": name, "description": description}, out: &out, idempotent: true})
	if err != nil {
		return nil, err
	}
	return &out.RegisteredModel, nil
}

// GetRegisteredModel returns a registered model with its aliases.
func (c *Client) GetRegisteredModel(ctx context.Context, name string) (*RegisteredModel, error) {
	var out struct {
		RegisteredModel RegisteredModel `json:"registered_model"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: api("/registered-models/get"),
		query: url.Values{"name": {name}}, out: &out, idempotent: true})
	if err != nil {
		return nil, err
	}
	return &out.RegisteredModel, nil
}

// EnsureRegisteredModel creates the registered model unless it exists.
func (c *Client) EnsureRegisteredModel(ctx context.Context, name string) error {
	_, err := c.CreateRegisteredModel(ctx, name, "")
	if err == nil || errors.Is(err, ErrAlreadyExists) {
		return nil
	}
	return err
}

// DeleteRegisteredModel deletes a registered model and its versions.
func (c *Client) DeleteRegisteredModel(ctx context.Context, name string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: api("/registered-models/delete"),
		body: map[string]any{"name": name}, idempotent: true})
}

// CreateModelVersion registers a new version of name from source, which must be a concrete
// artifact URI (e.g. "mlflow-artifacts:/1/<run>/artifacts/model"). A "runs:/<id>/<path>"
// source is resolved to the run's artifact URI first, as the Python client does, because the
// server would store it literally. Not retried once the server may have processed it.
func (c *Client) CreateModelVersion(ctx context.Context, name, source, runID string, tags ...Tag) (*ModelVersion, error) {
	if err := validateModelName(name); err != nil {
		return nil, err
	}
	if rest, ok := strings.CutPrefix(source, "runs:/"); ok {
		rid, sub, _ := strings.Cut(rest, "/")
		run, err := c.GetRun(ctx, rid)
		if err != nil {
			return nil, fmt.Errorf("mlflow: resolve %s: %w", source, err)
		}
		source = strings.TrimRight(run.Info.ArtifactURI, "/") + "/" + sub
		if runID == "" {
			runID = rid
		}
	}
	body := map[string]any{"name": name, "source": source, "tags": nonNil(tags)}
	if runID != "" {
		body["run_id"] = runID
	}
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: api("/model-versions/create"), body: body, out: &out}); err != nil {
		return nil, err
	}
	return &out.ModelVersion, nil
}

// GetModelVersion returns one version of a registered model.
func (c *Client) GetModelVersion(ctx context.Context, name, version string) (*ModelVersion, error) {
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: api("/model-versions/get"),
		query: url.Values{"name": {name}, "version": {version}}, out: &out, idempotent: true})
	if err != nil {
		return nil, err
	}
	return &out.ModelVersion, nil
}

// SetModelVersionTag sets a tag on one model version.
func (c *Client) SetModelVersionTag(ctx context.Context, name, version, key, value string) error {
	return c.do(ctx, request{method: http.MethodPost, path: api("/model-versions/set-tag"),
		body: map[string]any{"name": name, "version": version, "key": key, "value": value}, idempotent: true})
}

// ModelVersionQuery selects model versions.
type ModelVersionQuery struct {
	Filter     string // e.g. "name='catdog'" or "run_id='…'"
	OrderBy    []string
	MaxResults int
	PageToken  string
}

// SearchModelVersions returns one page of model versions and the next page token.
func (c *Client) SearchModelVersions(ctx context.Context, q ModelVersionQuery) ([]ModelVersion, string, error) {
	v := url.Values{}
	if q.Filter != "" {
		v.Set("filter", q.Filter)
	}
	for _, o := range q.OrderBy {
		v.Add("order_by", o)
	}
	if q.MaxResults > 0 {
		v.Set("max_results", strconv.Itoa(q.MaxResults))
	}
	if q.PageToken != "" {
		v.Set("page_token", q.PageToken)
	}
	var out struct {
		ModelVersions []ModelVersion `json:"model_versions"`
		NextPageToken string         `json:"next_page_token"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: api("/model-versions/search"), query: v, out: &out, idempotent: true})
	return out.ModelVersions, out.NextPageToken, err
}

// SetAlias points alias at version (moving it if it pointed elsewhere).
func (c *Client) SetAlias(ctx context.Context, name, alias, version string) error {
	if err := ValidateAlias(alias); err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodPost, path: api("/registered-models/alias"),
		body: map[string]any{"name": name, "alias": alias, "version": version}, idempotent: true})
}

// GetModelVersionByAlias returns the version alias points at. An unset alias gives an error
// matching ErrNotFound (the server answers 400 INVALID_PARAMETER_VALUE for it).
func (c *Client) GetModelVersionByAlias(ctx context.Context, name, alias string) (*ModelVersion, error) {
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: api("/registered-models/alias"),
		query: url.Values{"name": {name}, "alias": {alias}}, out: &out, idempotent: true})
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == CodeInvalidParameterValue && strings.Contains(apiErr.Message, "not found") {
		// mlflow 3.17 answers a missing alias with 400 INVALID_PARAMETER_VALUE, not 404
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return &out.ModelVersion, nil
}

// DeleteAlias removes an alias.
func (c *Client) DeleteAlias(ctx context.Context, name, alias string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: api("/registered-models/alias"),
		body: map[string]any{"name": name, "alias": alias}, idempotent: true})
}

// getModelVersionDownloadURI returns the artifact URI a version's files live at.
func (c *Client) getModelVersionDownloadURI(ctx context.Context, name, version string) (string, error) {
	var out struct {
		ArtifactURI string `json:"artifact_uri"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: api("/model-versions/get-download-uri"),
		query: url.Values{"name": {name}, "version": {version}}, out: &out, idempotent: true})
	return out.ArtifactURI, err
}

// Promotion is the outcome of PromoteIfBetter.
type Promotion struct {
	Promoted        bool
	Previous        string  // version the alias pointed at before ("" if none)
	PreviousMetric  float64 // its run's metric (NaN-free only when Previous != "")
	PreviousMissing bool    // the previous champion's run has no such metric
}

// PromoteIfBetter moves alias to version when value beats the metric (metricKey) of the run
// behind the version the alias currently points at, or when the alias is unset. A champion
// whose run lacks the metric is replaced.
func (c *Client) PromoteIfBetter(ctx context.Context, name, alias, version, metricKey string, value float64) (Promotion, error) {
	var p Promotion
	cur, err := c.GetModelVersionByAlias(ctx, name, alias)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return p, err
	default:
		p.Previous = cur.Version
		if cur.Version == version {
			return p, nil
		}
		better := true
		if cur.RunID != "" {
			run, err := c.GetRun(ctx, cur.RunID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return p, err
			}
			if err == nil {
				if v, ok := run.Metric(metricKey); ok {
					p.PreviousMetric = v
					better = value > v
				} else {
					p.PreviousMissing = true
				}
			}
		}
		if !better {
			return p, nil
		}
	}
	if err := c.SetAlias(ctx, name, alias, version); err != nil {
		return p, err
	}
	p.Promoted = true
	return p, nil
}

// ModelURI is a parsed models:/ URI: models:/NAME/VERSION, models:/NAME@ALIAS or
// models:/NAME/latest, optionally followed by a sub-path.
type ModelURI struct {
	Name, Version, Alias string
	Latest               bool
	SubPath              string
}

// parseModelURI parses a models:/ URI.
func parseModelURI(s string) (ModelURI, error) {
	rest, ok := strings.CutPrefix(s, "models:/")
	if !ok {
		return ModelURI{}, fmt.Errorf("mlflow: %q is not a models:/ URI", s)
	}
	rest = strings.TrimLeft(rest, "/")
	var m ModelURI
	first, tail, _ := strings.Cut(rest, "/")
	if name, alias, ok := strings.Cut(first, "@"); ok {
		m.Name, m.Alias, m.SubPath = name, alias, tail
		if err := ValidateAlias(alias); err != nil {
			return ModelURI{}, err
		}
	} else {
		ver, sub, _ := strings.Cut(tail, "/")
		m.Name, m.SubPath = first, sub
		switch {
		case strings.EqualFold(ver, "latest"):
			m.Latest = true
		case ver != "":
			if _, err := strconv.ParseUint(ver, 10, 63); err != nil {
				return ModelURI{}, fmt.Errorf("mlflow: %q: version %q is not a number (stages are not supported; use an alias)", s, ver)
			}
			m.Version = ver
		default:
			return ModelURI{}, fmt.Errorf("mlflow: %q: expected models:/NAME/VERSION or models:/NAME@ALIAS", s)
		}
	}
	if err := validateModelName(m.Name); err != nil {
		return ModelURI{}, err
	}
	if err := ValidateArtifactPath(m.SubPath); err != nil {
		return ModelURI{}, err
	}
	return m, nil
}

// ResolveModelURI finds the model version a models:/ URI names and its artifact root.
func (c *Client) ResolveModelURI(ctx context.Context, uri string) (*ModelVersion, ArtifactRoot, error) {
	m, err := parseModelURI(uri)
	if err != nil {
		return nil, ArtifactRoot{}, err
	}
	var mv *ModelVersion
	switch {
	case m.Alias != "":
		mv, err = c.GetModelVersionByAlias(ctx, m.Name, m.Alias)
	case m.Latest:
		mv, err = c.latestVersion(ctx, m.Name)
	default:
		mv, err = c.GetModelVersion(ctx, m.Name, m.Version)
	}
	if err != nil {
		return nil, ArtifactRoot{}, fmt.Errorf("mlflow: resolve %s: %w", uri, err)
	}
	src, err := c.getModelVersionDownloadURI(ctx, mv.Name, mv.Version)
	if err != nil {
		return nil, ArtifactRoot{}, fmt.Errorf("mlflow: resolve %s: %w", uri, err)
	}
	root, err := c.ResolveArtifactURI(src)
	if err != nil {
		return nil, ArtifactRoot{}, fmt.Errorf("mlflow: resolve %s: %w", uri, err)
	}
	return mv, root.Join(m.SubPath), nil
}

func (c *Client) latestVersion(ctx context.Context, name string) (*ModelVersion, error) {
	var best *ModelVersion
	bestN := int64(-1)
	token := ""
	for range 1000 {
		vs, next, err := c.SearchModelVersions(ctx, ModelVersionQuery{Filter: fmt.Sprintf("name='%s'", strings.ReplaceAll(name, "'", "\\'")), PageToken: token, MaxResults: 1000})
		if err != nil {
			return nil, err
		}
		for i := range vs {
			if n, _ := strconv.ParseInt(vs[i].Version, 10, 64); n > bestN {
				bestN, best = n, &vs[i]
			}
		}
		if token = next; token == "" {
			break
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: registered model %q has no versions", ErrNotFound, name)
	}
	return best, nil
}

// DownloadModel resolves a models:/ URI and downloads the version's files into dir.
func (c *Client) DownloadModel(ctx context.Context, uri, dir string) (*ModelVersion, []string, error) {
	mv, root, err := c.ResolveModelURI(ctx, uri)
	if err != nil {
		return nil, nil, err
	}
	files, err := c.DownloadDir(ctx, root, "", dir)
	return mv, files, err
}
