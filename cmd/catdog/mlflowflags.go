package main

import (
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/cmd/catdog/internal/tracking"
	"github.com/catdog-mlops/catdog/mlflowclient"
)

// trackingURIFlag and journalFlag are shared by train, mlflow sync and model pull.
func trackingURIFlag() cli.Flag {
	return &cli.StringFlag{Name: "tracking-uri", Usage: "MLflow tracking server (http[s]://host:port[/prefix]); empty: no tracking",
		EnvVars: []string{mlflowclient.EnvTrackingURI}}
}

// experimentFlag is shared by train, sweep and mlflow links.
func experimentFlag() cli.Flag {
	return &cli.StringFlag{Name: "experiment", Value: tracking.DefaultExperiment, Usage: "MLflow experiment name", EnvVars: []string{"MLFLOW_EXPERIMENT_NAME"}}
}

func journalFlag() cli.Flag {
	return &cli.StringFlag{Name: "mlflow-journal", Usage: "folder of the local MLflow spool (default $CATDOG_CACHE/mlflow-journal)",
		EnvVars: []string{"CATDOG_MLFLOW_JOURNAL"}}
}

func journalDir(c *cli.Context) string {
	if d := c.String("mlflow-journal"); d != "" {
		return d
	}
	return filepath.Join(defaultCacheDir(), "mlflow-journal")
}

func newMLflowClient(c *cli.Context, opts ...mlflowclient.Option) (*mlflowclient.Client, error) {
	return mlflowclient.NewFromEnv(c.String("tracking-uri"), opts...)
}
