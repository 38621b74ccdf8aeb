package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/mlflowclient"
	"github.com/catdog-mlops/catdog/mlflowclient/journal"
)

// mlflowCommand is `catdog mlflow`: maintenance of the MLflow tracking spool.
func mlflowCommand() *cli.Command {
	return &cli.Command{
		Name:  "mlflow",
		Usage: "MLflow tracking helpers",
		Subcommands: []*cli.Command{mlflowLinksCommand(), {
			Name:  "sync",
			Usage: "replay runs spooled while the tracking server was unreachable (in order, idempotently)",
			Flags: []cli.Flag{trackingURIFlag(), journalFlag()},
			Action: func(c *cli.Context) error {
				cl, err := newMLflowClient(c)
				if err != nil {
					return cli.Exit(fmt.Sprintf("catdog mlflow sync: %v", err), 2)
				}
				dir := journalDir(c)
				res, err := journal.Sync(c.Context, cl, dir)
				if err != nil {
					return err
				}
				w := c.App.Writer
				if len(res) == 0 {
					fmt.Fprintf(w, "nothing to sync in %s\n", dir)
				}
				var failed error
				for _, r := range res {
					switch {
					case errors.Is(r.Err, journal.ErrLocked):
						fmt.Fprintf(w, "%s: in use by a running process, skipped\n", r.Path)
					case r.Err != nil:
						fmt.Fprintf(w, "%s: %d applied, %d pending: %v\n", r.Path, r.Result.Applied, r.Result.Pending, r.Err)
						failed = r.Err
					default:
						state := "kept (run still open)"
						if r.Removed {
							state = "complete, removed"
						}
						fmt.Fprintf(w, "%s: run %s, %d operations applied, %s\n", r.Path, r.RunID, r.Result.Applied, state)
					}
					for _, s := range r.Result.Skipped {
						fmt.Fprintf(w, "  rejected by the server, skipped: entry %d (%s): %s\n", s.Seq, s.Op, s.Error)
					}
				}
				if failed != nil {
					return fmt.Errorf("catdog mlflow sync: %w", failed)
				}
				return nil
			},
		}},
	}
}

// mlflowLinksCommand is `catdog mlflow links`: the UI addresses of an experiment's runs and of
// its latest run (what `make run` prints at the end).
func mlflowLinksCommand() *cli.Command {
	return &cli.Command{
		Name:  "links",
		Usage: "print the MLflow UI addresses of an experiment's training runs and of its latest run",
		Flags: []cli.Flag{trackingURIFlag(), experimentFlag()},
		Action: func(c *cli.Context) error {
			cl, err := newMLflowClient(c)
			if err != nil {
				return cli.Exit(fmt.Sprintf("catdog mlflow links: %v", err), 2)
			}
			ctx := c.Context
			exp, err := cl.GetExperimentByName(ctx, c.String("experiment"))
			if err != nil {
				return fmt.Errorf("catdog mlflow links: experiment %q: %w", c.String("experiment"), err)
			}
			w := c.App.Writer
			runs, _, err := cl.SearchRuns(ctx, mlflowclient.RunQuery{ExperimentIDs: []string{exp.ID}, OrderBy: []string{"attributes.start_time DESC"}, MaxResults: 1})
			if err != nil {
				return fmt.Errorf("catdog mlflow links: %w", err)
			}
			if len(runs) > 0 {
				r := runs[0].Info
				fmt.Fprintf(w, "MLflow latest run: %s (%s, %s)\n", cl.RunURL(exp.ID, r.RunID), r.RunName, r.Status)
			}
			fmt.Fprintf(w, "MLflow experiment: %s\n", cl.ExperimentURL(exp.ID))
			return nil
		},
	}
}
