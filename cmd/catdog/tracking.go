//go:build !catdog_light

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/ci/gha"
	"github.com/catdog-mlops/catdog/cmd/catdog/internal/tracking"
	"github.com/catdog-mlops/catdog/internal/buildinfo"
	"github.com/catdog-mlops/catdog/mlflowclient"
	"github.com/catdog-mlops/catdog/train"
)

// trackingFlags are the MLflow flags of `catdog train`.
func trackingFlags() []cli.Flag {
	return []cli.Flag{
		trackingURIFlag(),
		experimentFlag(),
		&cli.StringFlag{Name: "run-name", Usage: "MLflow run name (default: chosen by the server)", EnvVars: []string{"MLFLOW_RUN_NAME"}},
		&cli.StringFlag{Name: "registered-model", Value: "catdog", Usage: "registered model to add a version to (empty: do not register)", EnvVars: []string{"CATDOG_REGISTERED_MODEL"}},
		&cli.StringFlag{Name: "champion-alias", Value: tracking.DefaultAlias, Usage: "alias `catdog model promote` moves to the new version when it beats the champion", EnvVars: []string{"CATDOG_CHAMPION_ALIAS"}},
		&cli.StringFlag{Name: "challenger-alias", Value: "challenger", Usage: "alias set on the new version when it does not beat the champion"},
		&cli.BoolFlag{Name: "no-promote", Usage: "register the version but do not run the promotion gate (run `catdog model promote` later)", EnvVars: []string{"CATDOG_NO_PROMOTE"}},
		journalFlag(),
	}
}

// trackingSession is a tracking.Session (MLflow through a local journal), which implements
// train.Tracker, whose Finish also writes the model's digests and reports the outcome on the
// command's error stream.
type trackingSession struct {
	*tracking.Session
	c   *cli.Context
	cl  *mlflowclient.Client
	sum tracking.Summary // set by Finish
}

var _ train.Tracker = (*trackingSession)(nil)

// startTracking starts an MLflow run when a tracking URI is configured (nil, nil otherwise).
// An unreachable server is not an error: the run is spooled and synced later.
func startTracking(c *cli.Context) (*trackingSession, error) {
	if c.String("tracking-uri") == "" {
		return nil, nil
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
	// short retries: a dead server must not hold training up; the journal keeps everything
	cl, err := newMLflowClient(c, mlflowclient.WithRetry(mlflowclient.RetryPolicy{MaxRetries: 2, BaseDelay: 250 * time.Millisecond, MaxDelay: 2 * time.Second, Jitter: 100 * time.Millisecond}),
		mlflowclient.WithTimeout(30*time.Second), mlflowclient.WithLogger(log))
	if err != nil {
		return nil, err
	}
	ctx := c.Context
	s, err := tracking.Start(ctx, tracking.Config{
		Client: cl, JournalDir: journalDir(c), Experiment: c.String("experiment"), RunName: c.String("run-name"),
		RegisteredModel: c.String("registered-model"), Alias: c.String("champion-alias"), RegisterOnly: true,
		GitCommit: mlflowclient.GitCommit(ctx, "."),
		Tags:      map[string]string{"catdog.version": buildinfo.Version()},
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("mlflow: %w", err)
	}
	if id := s.RunID(); id != "" {
		fmt.Fprintf(c.App.ErrWriter, "mlflow: run %s: %s\n", id, cl.RunURL(s.ExperimentID(), id))
	}
	return &trackingSession{Session: s, c: c, cl: cl}, nil
}

// WriteLinks writes the UI addresses of the finished run, its experiment's runs and its
// model (nothing while the run exists only in the journal).
func (t *trackingSession) WriteLinks(w io.Writer) {
	sum := t.sum
	if sum.RunID == "" || sum.ExperimentID == "" {
		return
	}
	fmt.Fprintf(w, "MLflow run:        %s\n", t.cl.RunURL(sum.ExperimentID, sum.RunID))
	if sum.ModelID != "" {
		fmt.Fprintf(w, "MLflow model:      %s\n", t.cl.LoggedModelURL(sum.ExperimentID, sum.ModelID))
	}
	fmt.Fprintf(w, "MLflow experiment: %s\n", t.cl.ExperimentURL(sum.ExperimentID))
}

// Finish uploads the model, registers it and ends the run (FINISHED, FAILED on runErr,
// KILLED when ctx was cancelled); the promotion gate runs afterwards (promoteAfterTraining).
func (t *trackingSession) Finish(ctx context.Context, modelDir string, testAccuracy float64, runErr error) error {
	if runErr == nil && modelDir != "" {
		// uploaded with the model, so that `catdog model pull` can verify what it downloads
		if err := writeDigests(modelDir); err != nil {
			return fmt.Errorf("model digests: %w", err)
		}
	}
	sum, err := t.Session.Finish(ctx, modelDir, testAccuracy, runErr)
	t.sum = sum
	w := t.c.App.ErrWriter
	switch {
	case sum.Spooled > 0:
		fmt.Fprintf(w, "mlflow: server unavailable; %d operations kept in %s — run `catdog mlflow sync` when it is back\n", sum.Spooled, sum.Journal)
	case sum.Version != "":
		fmt.Fprintf(w, "mlflow: run %s %s; registered %s version %s\n", sum.RunID, sum.Status, t.c.String("registered-model"), sum.Version)
		// In GitHub Actions the step (train.yml's `catdog repro`) learns which version this run
		// registered, so that the gate judges exactly that one (`catdog model promote --run-id`).
		if a := gha.New(w, gha.FromEnv(os.Getenv)); a.Enabled() && err == nil {
			for _, o := range [][2]string{{"run_id", sum.RunID}, {"registered_version", sum.Version}} {
				if oerr := a.SetOutput(o[0], o[1]); oerr != nil {
					return fmt.Errorf("mlflow: %w", oerr)
				}
			}
		}
	default:
		fmt.Fprintf(w, "mlflow: run %s %s\n", sum.RunID, sum.Status)
	}
	return err
}

// promoteAfterTraining runs `catdog model promote` for the version Finish registered, on the
// split the model was trained and evaluated on. A run still in the journal (server down) is
// promoted later: `catdog mlflow sync`, then `catdog model promote --run-id`.
func (t *trackingSession) promoteAfterTraining(ctx context.Context, dataDir string) error {
	c, sum := t.c, t.sum
	if c.Bool("no-promote") {
		return nil
	}
	if sum.Version == "" || sum.Spooled > 0 {
		if sum.Spooled > 0 {
			fmt.Fprintf(c.App.ErrWriter, "mlflow: not promoted yet; after `catdog mlflow sync` run `catdog model promote --run-id %s`\n", sum.RunID)
		}
		return nil
	}
	cl, err := newMLflowClient(c)
	if err != nil {
		return err
	}
	d, err := promoteVersion(ctx, promoteRequest{client: cl, model: c.String("registered-model"), version: sum.Version,
		champion: c.String("champion-alias"), challenger: c.String("challenger-alias"),
		params: c.String("params"), data: dataDir, split: "test", stderr: c.App.ErrWriter})
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	printDecision(c.App.ErrWriter, d)
	return nil
}
