package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/dvcfmt/repo"
)

// reproCommand is `catdog repro`: run the stale stages of dvc.yaml in order and write dvc.lock
// as `dvc repro` does.
func reproCommand() *cli.Command {
	return &cli.Command{
		Name:  "repro",
		Usage: "run the stale stages of dvc.yaml in order and record them in dvc.lock (like `dvc repro`)",
		Description: "A stage is stale when it has no dvc.lock entry, or its command, a dependency's hash, a\n" +
			"param it reads or an output (missing, modified, not in the cache) differs from dvc.lock.\n" +
			"Outputs are committed to the DVC cache and dvc.lock is rewritten atomically after each\n" +
			"stage, so the real `dvc status` and `dvc repro` agree with the result. With --dry, the\n" +
			"stale stages and why are printed (like `dvc status`) and nothing runs.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cwd", Aliases: []string{"C"}, Usage: "run as if started in `DIR`"},
			&cli.BoolFlag{Name: "dry", Usage: "only print the stale stages and why"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "run every stage, stale or not"},
			quietFlag(),
		},
		Action: runRepro,
	}
}

func runRepro(c *cli.Context) error {
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	w := c.App.Writer
	opts := repo.ReproOptions{Stdout: w, Stderr: c.App.ErrWriter, Force: c.Bool("force"), DryRun: c.Bool("dry"),
		OnEvent: func(ev repo.StageEvent) { printStageEvent(w, ev, c.Bool("dry")) }}
	res, err := r.Repro(c.Context, opts)
	if err != nil {
		return err
	}
	switch {
	case len(res.Ran) == 0:
		fmt.Fprintln(w, "Data and pipelines are up to date.")
	case c.Bool("dry"):
		fmt.Fprintf(w, "%d stage(s) would run: %s\n", len(res.Ran), strings.Join(res.Ran, ", "))
	default:
		fmt.Fprintf(w, "ran %d stage(s): %s; dvc.lock updated\n", len(res.Ran), strings.Join(res.Ran, ", "))
	}
	return nil
}

func printStageEvent(w io.Writer, ev repo.StageEvent, dry bool) {
	switch ev.Phase {
	case repo.PhaseSkipped:
		fmt.Fprintf(w, "Stage '%s' didn't change, skipping\n", ev.Stage)
	case repo.PhaseRunning:
		if dry {
			fmt.Fprintf(w, "%s:\n", ev.Stage)
			for _, ch := range ev.Reasons {
				fmt.Fprintf(w, "\t%s\n", describeChange(ch))
			}
			return
		}
		fmt.Fprintf(w, "Running stage '%s':\n", ev.Stage)
	case repo.PhaseCommand:
		fmt.Fprintf(w, "> %s\n", ev.Command)
	}
}

func describeChange(ch repo.StageChange) string {
	switch {
	case ch.Param != "":
		return fmt.Sprintf("%s: %s %s: %s", ch.Kind, ch.Path, ch.State, ch.Param)
	case ch.Path != "":
		return fmt.Sprintf("%s: %s %s", ch.Kind, ch.State, ch.Path)
	}
	return ch.Kind
}
