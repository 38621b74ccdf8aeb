package mlflowclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

const maxExperimentName = 500

// GetExperiment returns the experiment with the given ID.
func (c *Client) GetExperiment(ctx context.Context, id string) (*Experiment, error) {
	var out struct {
		Experiment Experiment `json:"experiment"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: api("/experiments/get"),
		query: url.Values{"experiment_id": {id}}, out: &out, idempotent: true})
	if err != nil {
		return nil, err
	}
	return &out.Experiment, nil
}

// GetExperimentByName returns the experiment holding name (an active one is preferred; a
// deleted one is returned too, with LifecycleStage "deleted"). Missing: ErrNotFound.
func (c *Client) GetExperimentByName(ctx context.Context, name string) (*Experiment, error) {
	var out struct {
		Experiment Experiment `json:"experiment"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: api("/experiments/get-by-name"),
		query: url.Values{"experiment_name": {name}}, out: &out, idempotent: true})
	if err != nil {
		return nil, err
	}
	return &out.Experiment, nil
}

// CreateExperiment creates an experiment and returns its ID. A name already in use (also by a
// deleted experiment) gives an error matching ErrAlreadyExists.
func (c *Client) CreateExperiment(ctx context.Context, name string, tags ...Tag) (string, error) {
	if name == "" || len(name) > maxExperimentName {
		return "", &ValidationError{Field: "experiment name", Value: trunc(name), Reason: "must be 1-500 characters"}
	}
	var out struct {
		ID string `json:"experiment_id"`
	}
	// a retried create that went through answers RESOURCE_ALREADY_EXISTS, which
	// GetOrCreateExperiment resolves, so the call is safe to retry
	err := c.do(ctx, request{method: http.MethodPost, path: api("/experiments/create"),
		body: map[string]any{"name": name, "tags": tags}, out: &out, idempotent: true})
	return out.ID, err
}

// DeleteExperiment marks an experiment deleted.
func (c *Client) DeleteExperiment(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodPost, path: api("/experiments/delete"),
		body: map[string]any{"experiment_id": id}, idempotent: true})
}

// restoreExperiment restores a deleted experiment.
func (c *Client) restoreExperiment(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodPost, path: api("/experiments/restore"),
		body: map[string]any{"experiment_id": id}, idempotent: true})
}

// GetOrCreateExperiment returns the active experiment called name, creating it when missing.
// Concurrent callers get the same experiment. When a deleted experiment holds the name it is
// restored if restoreDeleted is true; otherwise the error matches ErrExperimentDeleted.
func (c *Client) GetOrCreateExperiment(ctx context.Context, name string, restoreDeleted bool) (*Experiment, error) {
	for range 3 {
		exp, err := c.GetExperimentByName(ctx, name)
		switch {
		case err == nil && exp.LifecycleStage == "deleted":
			if !restoreDeleted {
				return nil, fmt.Errorf("%w: experiment %q (id %s) is deleted; restore it (mlflow experiments restore) or use another name",
					ErrExperimentDeleted, name, exp.ID)
			}
			if err := c.restoreExperiment(ctx, exp.ID); err != nil {
				return nil, fmt.Errorf("mlflow: restore experiment %q: %w", name, err)
			}
			exp.LifecycleStage = "active"
			return exp, nil
		case err == nil:
			return exp, nil
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
		id, err := c.CreateExperiment(ctx, name)
		if err == nil {
			return c.GetExperiment(ctx, id)
		}
		if !errors.Is(err, ErrAlreadyExists) {
			return nil, err
		}
		// lost a race with another creator: look it up again
	}
	return nil, fmt.Errorf("mlflow: experiment %q: could not get or create it", name)
}

// View types for searches.
const (
	ViewActiveOnly  = "ACTIVE_ONLY"
	ViewDeletedOnly = "DELETED_ONLY"
	ViewAll         = "ALL"
)

// ExperimentQuery selects experiments; zero values use the server defaults.
type ExperimentQuery struct {
	Filter     string   // e.g. "name = 'catdog'"
	OrderBy    []string // e.g. "name ASC"
	MaxResults int
	PageToken  string
	ViewType   string
}

// searchExperiments returns one page of experiments and the token of the next page ("" at the end).
func (c *Client) searchExperiments(ctx context.Context, q ExperimentQuery) ([]Experiment, string, error) {
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
	if q.ViewType != "" {
		v.Set("view_type", q.ViewType)
	}
	var out struct {
		Experiments   []Experiment `json:"experiments"`
		NextPageToken string       `json:"next_page_token"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: api("/experiments/search"), query: v, out: &out, idempotent: true})
	return out.Experiments, out.NextPageToken, err
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// setExperimentTag sets a tag on an experiment.
func (c *Client) setExperimentTag(ctx context.Context, experimentID, key, value string) error {
	if err := validateKey("tag", key); err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodPost, path: api("/experiments/set-experiment-tag"),
		body: map[string]any{"experiment_id": experimentID, "key": key, "value": value}, idempotent: true})
}

// EnsureExperimentTags sets the tags exp lacks (a tag it already has, whatever its value, is
// left alone) and records them in exp.Tags.
func (c *Client) EnsureExperimentTags(ctx context.Context, exp *Experiment, tags []Tag) error {
	for _, t := range tags {
		if _, ok := exp.Tag(t.Key); ok {
			continue
		}
		if err := c.setExperimentTag(ctx, exp.ID, t.Key, t.Value); err != nil {
			return fmt.Errorf("mlflow: experiment %q: %w", exp.Name, err)
		}
		exp.Tags = append(exp.Tags, t)
	}
	return nil
}
