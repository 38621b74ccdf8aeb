package inference

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/imageprep"
)

// driftMonitor feeds the per-image features of every decoded image into a drift.Monitor, and
// each prediction's confidence and class into a second one when the profile records the
// validation split's predictions, and exports each comparison as Prometheus gauges. Only
// numbers are kept (the windows' float64 rings), never image bytes.
type driftMonitor struct {
	mon     *drift.Monitor
	pred    *drift.Monitor // nil when the profile has no predictions
	classes []string       // the prediction profile's classes: drift.ClassCode's codes
	size    int
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
}

// driftMetrics are the gauges of the live drift comparison. The feature label takes the
// profile's feature names (imageprep's 15 features) and the two prediction columns
// (drift.PredictionColumns): bounded.
type driftMetrics struct {
	score      *prometheus.GaugeVec // feature
	detected   *prometheus.GaugeVec // feature
	threshold  *prometheus.GaugeVec // feature, method
	share      prometheus.Gauge
	dataset    prometheus.Gauge
	window     prometheus.Gauge
	checks     *prometheus.CounterVec // result: compared, too_few, error
	lastCheck  prometheus.Gauge
	refRows    prometheus.Gauge
	driftShare prometheus.Gauge
	predShare  prometheus.Gauge
	predWindow prometheus.Gauge
	predChecks *prometheus.CounterVec // result: compared, too_few_rows, error
}

func newDriftMetrics(reg prometheus.Registerer) *driftMetrics {
	m := &driftMetrics{
		score: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "catdog_drift_score",
			Help: "Drift statistic of the last comparison of the live window with the training reference, per feature: a p-value (ks, z, chisquare; small means drift) or a distance (wasserstein, jensenshannon; large means drift), see catdog_drift_threshold.",
		}, []string{"feature"}),
		detected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "catdog_drift_detected",
			Help: "1 when the last comparison found drift in the feature, else 0.",
		}, []string{"feature"}),
		threshold: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "catdog_drift_threshold",
			Help: "Decision threshold of the feature's drift method (the method label) in the last comparison.",
		}, []string{"feature", "method"}),
		share: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catdog_drift_share",
			Help: "Share of features that drifted in the last comparison (0-1).",
		}),
		dataset: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catdog_drift_dataset_drift",
			Help: "1 when the share of drifted features reached the dataset drift share in the last comparison.",
		}),
		window: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catdog_drift_window_size",
			Help: "Feature rows in the live drift window at the last comparison.",
		}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catdog_drift_checks_total",
			Help: "Comparisons of the live window with the reference, by result (compared, too_few_rows, error).",
		}, []string{"result"}),
		lastCheck: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catdog_drift_last_check_timestamp_seconds",
			Help: "Unix time of the last comparison.",
		}),
		refRows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catdog_drift_reference_rows",
			Help: "Rows of the training reference profile.",
		}),
		driftShare: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catdog_drift_dataset_drift_share",
			Help: "Configured share of drifted features at which the dataset counts as drifted.",
		}),
		predShare: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catdog_drift_prediction_share",
			Help: "Share of the prediction columns (confidence, predicted_class) that drifted from the validation split's predictions in the last comparison (0-1); not part of catdog_drift_share.",
		}),
		predWindow: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catdog_drift_prediction_window_size",
			Help: "Predictions in the live prediction drift window at the last comparison.",
		}),
		predChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "catdog_drift_prediction_checks_total",
			Help: "Comparisons of the live prediction window with the validation split's predictions, by result (compared, too_few_rows, error).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.score, m.detected, m.threshold, m.share, m.dataset, m.window, m.checks, m.lastCheck, m.refRows, m.driftShare)
	for _, r := range []string{"compared", "too_few_rows", "error"} {
		m.checks.WithLabelValues(r)
	}
	return m
}

// registerPredictions adds the prediction window's gauges (only when the profile has
// predictions, so that a service without them exports no always-zero series).
func (m *driftMetrics) registerPredictions(reg prometheus.Registerer) {
	reg.MustRegister(m.predShare, m.predWindow, m.predChecks)
	for _, r := range []string{"compared", "too_few_rows", "error"} {
		m.predChecks.WithLabelValues(r)
	}
}

func (m *driftMetrics) set(st drift.Status, log *slog.Logger) {
	m.window.Set(float64(st.WindowRows))
	m.lastCheck.Set(float64(st.At.UnixNano()) / 1e9)
	switch {
	case st.Err != nil:
		m.checks.WithLabelValues("error").Inc()
		log.Warn("drift comparison failed", "error", st.Err.Error())
		return
	case st.Result == nil:
		m.checks.WithLabelValues("too_few_rows").Inc()
		return
	}
	m.checks.WithLabelValues("compared").Inc()
	r := st.Result
	m.setColumns(r)
	m.share.Set(r.Share)
	ds := 0.0
	if r.DatasetDrift {
		ds = 1
	}
	m.dataset.Set(ds)
	log.Debug("drift comparison", "window", st.WindowRows, "drifted", r.Drifted, "share", r.Share, "dataset_drift", r.DatasetDrift)
}

// setColumns exports each column's score, decision, threshold and method.
func (m *driftMetrics) setColumns(r *drift.Result) {
	for _, c := range r.Columns {
		m.score.WithLabelValues(c.Feature).Set(c.Score)
		d := 0.0
		if c.Drifted {
			d = 1
		}
		m.detected.WithLabelValues(c.Feature).Set(d)
		// The method can change between comparisons (distinct values, reference size): one
		// threshold series per feature.
		m.threshold.DeletePartialMatch(prometheus.Labels{"feature": c.Feature})
		m.threshold.WithLabelValues(c.Feature, string(c.Method)).Set(c.Threshold)
	}
}

// setPredictions exports a comparison of the prediction window. Its columns share the
// per-feature gauges; its share is catdog_drift_prediction_share, apart from the input share
// the CatdogInputDrift alert reads.
func (m *driftMetrics) setPredictions(st drift.Status, log *slog.Logger) {
	m.predWindow.Set(float64(st.WindowRows))
	switch {
	case st.Err != nil:
		m.predChecks.WithLabelValues("error").Inc()
		log.Warn("prediction drift comparison failed", "error", st.Err.Error())
		return
	case st.Result == nil:
		m.predChecks.WithLabelValues("too_few_rows").Inc()
		return
	}
	m.predChecks.WithLabelValues("compared").Inc()
	m.setColumns(st.Result)
	m.predShare.Set(st.Result.Share)
	log.Debug("prediction drift comparison", "window", st.WindowRows, "drifted", st.Result.Drifted, "share", st.Result.Share)
}

// newDriftMonitor starts the comparison goroutine; stop ends it.
func newDriftMonitor(p *drift.Profile, cfg drift.MonitorConfig, size int, reg prometheus.Registerer, log *slog.Logger) (*driftMonitor, error) {
	if p.InputSize != 0 && p.InputSize != size {
		return nil, fmt.Errorf("inference: drift profile made at input size %d, model input is %d", p.InputSize, size)
	}
	m := newDriftMetrics(reg)
	mon, err := drift.NewMonitor(p, imageprep.FeatureNames(), cfg, func(st drift.Status) { m.set(st, log) })
	if err != nil {
		return nil, err
	}
	m.refRows.Set(float64(p.Rows))
	eff := mon.Config()
	ds := eff.Options.DriftShare
	if ds == 0 {
		ds = 0.5
	}
	m.driftShare.Set(ds)
	d := &driftMonitor{mon: mon, size: size, done: make(chan struct{})}
	if pp := p.Predictions; pp != nil {
		ref, err := pp.Table()
		if err != nil {
			return nil, err
		}
		d.classes = pp.Classes()
		d.pred, err = drift.NewTableMonitor(ref, drift.PredictionColumns(), cfg, func(st drift.Status) { m.setPredictions(st, log) })
		if err != nil {
			return nil, fmt.Errorf("inference: prediction drift: %w", err)
		}
		m.registerPredictions(reg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() {
		defer close(d.done)
		var wg sync.WaitGroup
		if d.pred != nil {
			wg.Go(func() { _ = d.pred.Run(ctx) })
		}
		_ = mon.Run(ctx)
		wg.Wait()
	}()
	return d, nil
}

// observe computes one decoded image's features and adds them to the window; ok is false
// when they could not be computed.
func (d *driftMonitor) observe(rgb []byte, src imageprep.Source, fileBytes int) (imageprep.Features, bool) {
	f, err := imageprep.ImageFeatures(rgb, d.size, src, fileBytes)
	if err != nil {
		return f, false
	}
	d.mon.Observe(f[:])
	return f, true
}

// observePrediction adds one prediction's confidence and class to the prediction window.
func (d *driftMonitor) observePrediction(label string, confidence float64) {
	if d.pred != nil {
		d.pred.Observe([]float64{confidence, drift.ClassCode(d.classes, label)})
	}
}

func (d *driftMonitor) stop() {
	d.once.Do(func() {
		d.cancel()
		<-d.done
	})
}
