// Command mlflow-bench times catdog's MLflow client logging a training run (20 params, then
// 100 epochs of 8 metrics) against a real tracking server, and prints one JSON line of
// per-repetition wall times. bench/mlflow/run.sh runs it next to the Python client.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/catdog-mlops/catdog/mlflowclient"
)

func main() {
	uri := flag.String("uri", "", "tracking URI")
	reps := flag.Int("reps", 5, "repetitions")
	epochs := flag.Int("epochs", 100, "epochs")
	nMetrics := flag.Int("metrics", 8, "metrics per epoch")
	nParams := flag.Int("params", 20, "params")
	flag.Parse()
	ctx := context.Background()
	c, err := mlflowclient.New(*uri)
	if err != nil {
		log.Fatal(err)
	}
	exp, err := c.GetOrCreateExperiment(ctx, "bench-catdog", false)
	if err != nil {
		log.Fatal(err)
	}
	out := map[string][]float64{}
	for range *reps {
		// per epoch: one log-batch of the epoch's metrics (what `catdog train` does)
		t, err := timeRun(ctx, c, exp.ID, *epochs, *nMetrics, *nParams, false)
		if err != nil {
			log.Fatal(err)
		}
		out["catdog_batch_per_epoch"] = append(out["catdog_batch_per_epoch"], t)
		// everything in one LogBatch call (split into server-sized requests by the client)
		t, err = timeRun(ctx, c, exp.ID, *epochs, *nMetrics, *nParams, true)
		if err != nil {
			log.Fatal(err)
		}
		out["catdog_batch_all"] = append(out["catdog_batch_all"], t)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		log.Fatal(err)
	}
}

// timeRun creates a run, logs params and metrics and terminates it; the run creation and
// termination are inside the timing, as they are for the Python variants.
func timeRun(ctx context.Context, c *mlflowclient.Client, expID string, epochs, nMetrics, nParams int, all bool) (float64, error) {
	start := time.Now()
	run, err := c.CreateRun(ctx, mlflowclient.CreateRunRequest{ExperimentID: expID})
	if err != nil {
		return 0, err
	}
	id := run.Info.RunID
	var params []mlflowclient.Param
	for i := range nParams {
		params = append(params, mlflowclient.Param{Key: fmt.Sprintf("param_%02d", i), Value: fmt.Sprint(i)})
	}
	if err := c.LogBatch(ctx, id, mlflowclient.Batch{Params: params}); err != nil {
		return 0, err
	}
	var pending []mlflowclient.Metric
	for ep := range epochs {
		ts := time.Now().UnixMilli()
		for m := range nMetrics {
			pending = append(pending, mlflowclient.Metric{Key: fmt.Sprintf("metric_%d", m), Value: mlflowclient.Float(float64(ep*m) / 1000), Timestamp: ts, Step: int64(ep)})
		}
		if !all {
			if err := c.LogBatch(ctx, id, mlflowclient.Batch{Metrics: pending}); err != nil {
				return 0, err
			}
			pending = pending[:0]
		}
	}
	if all {
		if err := c.LogBatch(ctx, id, mlflowclient.Batch{Metrics: pending}); err != nil {
			return 0, err
		}
	}
	if err := c.TerminateRun(ctx, id, mlflowclient.StatusFinished); err != nil {
		return 0, err
	}
	elapsed := time.Since(start).Seconds()
	// sanity (outside the timing, as in bench.py): every point arrived
	h, err := c.GetMetricHistory(ctx, id, "metric_0")
	if err != nil || len(h) != epochs {
		return 0, fmt.Errorf("metric_0 has %d points (%v), want %d", len(h), err, epochs)
	}
	return elapsed, nil
}
