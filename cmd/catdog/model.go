package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

// modelCommand is `catdog model`: registered models in MLflow.
func modelCommand() *cli.Command {
	return &cli.Command{
		Name:  "model",
		Usage: "registered models in the MLflow model registry",
		Subcommands: []*cli.Command{{
			Name:      "pull",
			Usage:     "download a registered model version (models:/NAME@ALIAS or models:/NAME/VERSION) for serving",
			ArgsUsage: "models:/NAME@ALIAS",
			Flags: []cli.Flag{
				trackingURIFlag(),
				&cli.StringFlag{Name: "out", Value: "models", Usage: "directory to write the model files into", EnvVars: []string{"CATDOG_MODEL_DIR"}},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return cli.Exit("catdog model pull: expected one models:/ URI", 2)
				}
				cl, err := newMLflowClient(c)
				if err != nil {
					return cli.Exit(fmt.Sprintf("catdog model pull: %v", err), 2)
				}
				out := c.String("out")
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
				mv, files, err := cl.DownloadModel(c.Context, c.Args().First(), out)
				if err != nil {
					return fmt.Errorf("catdog model pull: %w", err)
				}
				for _, f := range files {
					fmt.Fprintf(c.App.ErrWriter, "  %s\n", filepath.Join(out, f))
				}
				fmt.Fprintf(c.App.Writer, "pulled %s version %s (run %s, aliases %v): %d files in %s\n", mv.Name, mv.Version, mv.RunID, mv.Aliases, len(files), out)
				return nil
			},
		}},
	}
}
