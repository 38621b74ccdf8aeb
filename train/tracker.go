package train

import "context"

// Tracker receives what a training run produces: parameters, per-epoch metrics, tags and
// artifact folders. Training reports to it but never depends on it: an error returned by a
// Tracker is logged and training goes on (implementations that must not lose data spool it
// themselves, see cmd/catdog's MLflow adapter).
type Tracker interface {
	// LogParams records hyper-parameters and dataset identifiers (string values).
	LogParams(ctx context.Context, params map[string]string) error
	// LogMetrics records metrics for one step (the epoch number, or the final step).
	LogMetrics(ctx context.Context, step int64, metrics map[string]float64) error
	// SetTags records run tags.
	SetTags(ctx context.Context, tags map[string]string) error
	// LogArtifacts uploads every file below localDir under artifactPath ("" = artifact root).
	LogArtifacts(ctx context.Context, localDir, artifactPath string) error
}

// NopTracker is a Tracker that records nothing.
type NopTracker struct{}

// LogParams implements Tracker.
func (NopTracker) LogParams(context.Context, map[string]string) error { return nil }

// LogMetrics implements Tracker.
func (NopTracker) LogMetrics(context.Context, int64, map[string]float64) error { return nil }

// SetTags implements Tracker.
func (NopTracker) SetTags(context.Context, map[string]string) error { return nil }

// LogArtifacts implements Tracker.
func (NopTracker) LogArtifacts(context.Context, string, string) error { return nil }

var _ Tracker = NopTracker{}
