package inference

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/imageprep"
)

// config is what the options set; defaults() documents every default.
type config struct {
	model          ModelInfo
	limits         imageprep.Limits
	maxBody        int64
	workers        int
	queue          int
	maxBatch       int
	maxWait        time.Duration
	maxFiles       int
	predictTimeout time.Duration
	gatherer       prometheus.Gatherer
	driftProfile   *drift.Profile
	driftConfig    drift.MonitorConfig
}

func defaults() config {
	return config{
		model:          ModelInfo{Name: "catdog", Version: "unknown", Classes: []string{"cat", "dog"}},
		limits:         imageprep.DefaultLimits(),
		maxBody:        10 << 20,
		workers:        1,
		queue:          64,
		maxBatch:       1,
		maxWait:        0,
		maxFiles:       16,
		predictTimeout: 10 * time.Second,
	}
}

func (c config) validate() error {
	switch {
	case len(c.model.Classes) < 2:
		return errors.New("inference: need at least two class names")
	case c.maxBody <= 0:
		return fmt.Errorf("inference: body limit %d must be positive", c.maxBody)
	case c.workers < 1 || c.workers > 64:
		return fmt.Errorf("inference: workers %d out of [1,64]", c.workers)
	case c.queue < 1 || c.queue > 1<<16:
		return fmt.Errorf("inference: queue size %d out of [1,65536]", c.queue)
	case c.maxBatch < 1 || c.maxBatch > 256:
		return fmt.Errorf("inference: max batch %d out of [1,256]", c.maxBatch)
	case c.maxWait < 0:
		return fmt.Errorf("inference: negative max wait %v", c.maxWait)
	case c.maxFiles < 1 || c.maxFiles > 256:
		return fmt.Errorf("inference: max files %d out of [1,256]", c.maxFiles)
	case c.predictTimeout <= 0:
		return fmt.Errorf("inference: predict timeout %v must be positive", c.predictTimeout)
	}
	return nil
}

// Option configures New.
type Option func(*config)

// WithModelInfo names the model served (reported by /version, in responses as model_version
// and by catdog_model_info) and its class names, in output order. The default is name
// "catdog", version "unknown", classes cat and dog.
func WithModelInfo(mi ModelInfo) Option {
	return func(c *config) {
		if len(mi.Classes) == 0 {
			mi.Classes = c.model.Classes
		}
		c.model = mi
	}
}

// WithLimits bounds each decoded image (bytes, and pixels checked from the header before the
// full decode). The default is imageprep.DefaultLimits(): 10 MiB and 40e6 pixels.
func WithLimits(l imageprep.Limits) Option { return func(c *config) { c.limits = l } }

// WithMaxBodyBytes bounds the request body of the predict endpoints; larger bodies get 413.
// The default is 10 MiB.
func WithMaxBodyBytes(n int64) Option { return func(c *config) { c.maxBody = n } }

// WithWorkers sets the number of OS-thread-locked model workers. The default is 1: libtorch
// already spreads one forward pass over its intra-op threads.
func WithWorkers(n int) Option { return func(c *config) { c.workers = n } }

// WithQueueSize bounds the requests waiting for a worker; when it is full the service answers
// 503 with Retry-After. The default is 64.
func WithQueueSize(n int) Option { return func(c *config) { c.queue = n } }

// WithBatching enables dynamic micro-batching: a worker that takes a request also takes the
// requests already queued, and those arriving within maxWait, until maxBatch images. A batch
// request's images always run together, so a pass can exceed maxBatch by such a request. The
// default is maxBatch 1 (off).
func WithBatching(maxBatch int, maxWait time.Duration) Option {
	return func(c *config) { c.maxBatch, c.maxWait = maxBatch, maxWait }
}

// WithMaxBatchFiles bounds the files in one POST /predict/batch. The default is 16.
func WithMaxBatchFiles(n int) Option { return func(c *config) { c.maxFiles = n } }

// WithPredictTimeout bounds the time a request waits for a worker and its forward pass; on
// expiry the service answers 503. The default is 10 s.
func WithPredictTimeout(d time.Duration) Option { return func(c *config) { c.predictTimeout = d } }

// WithGatherer sets what /metrics serves. The default is the Registerer given to New, which
// must then also be a Gatherer. No caller in this repository needs it (catdog serve passes a
// prometheus.Registry, which is both); it stays exported because New's error for a Registerer
// that is not a Gatherer (a wrapped or prefixed one) names it as the way out.
func WithGatherer(g prometheus.Gatherer) Option { return func(c *config) { c.gatherer = g } }

// WithDrift monitors input drift: the features of every decoded image go into a sliding
// window that is compared with the training reference p every cfg.EveryRequests images or
// cfg.Every, and each comparison is exported as catdog_drift_* metrics. The default is off.
func WithDrift(p *drift.Profile, cfg drift.MonitorConfig) Option {
	return func(c *config) { c.driftProfile, c.driftConfig = p, cfg }
}
