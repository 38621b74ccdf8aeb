package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/mlflowclient"
	"github.com/catdog-mlops/catdog/model/modeldir"
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
				uri, out, trackingURI, err := pullArgs(c)
				if err != nil {
					return cli.Exit("catdog model pull: "+err.Error(), 2)
				}
				cl, err := mlflowclient.NewFromEnv(trackingURI)
				if err != nil {
					return cli.Exit(fmt.Sprintf("catdog model pull: %v", err), 2)
				}
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
				mv, files, err := pullModel(c.Context, cl, uri, out, c.App.ErrWriter)
				if err != nil {
					return fmt.Errorf("catdog model pull: %w", err)
				}
				for _, f := range files {
					fmt.Fprintf(c.App.ErrWriter, "  %s\n", filepath.Join(out, f))
				}
				var run *mlflowclient.Run
				if mv.RunID != "" {
					if run, err = cl.GetRun(c.Context, mv.RunID); err != nil {
						return fmt.Errorf("catdog model pull: source run: %w", err)
					}
				}
				if err := writeProvenance(out, uri, mv, run); err != nil {
					return fmt.Errorf("catdog model pull: %w", err)
				}
				fmt.Fprintf(c.App.Writer, "pulled %s version %s (run %s, aliases %v): %d files in %s\n", mv.Name, mv.Version, mv.RunID, mv.Aliases, len(files), out)
				return nil
			},
		}, promoteCommand()},
	}
}

// pullArgs accepts the flags after the URI too (`catdog model pull models:/m@champion --out
// DIR`), which the flag parser stops at.
func pullArgs(c *cli.Context) (uri, out, trackingURI string, err error) {
	out, trackingURI = c.String("out"), c.String("tracking-uri")
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case !strings.HasPrefix(a, "-"):
			if uri != "" {
				return "", "", "", fmt.Errorf("expected one models:/ URI, got %q and %q", uri, a)
			}
			uri = a
		case name == "out" || name == "tracking-uri":
			if !hasVal {
				if i+1 >= len(args) {
					return "", "", "", fmt.Errorf("flag %s needs a value", a)
				}
				i++
				val = args[i]
			}
			if name == "out" {
				out = val
			} else {
				trackingURI = val
			}
		default:
			return "", "", "", fmt.Errorf("unknown flag %s", a)
		}
	}
	if uri == "" {
		return "", "", "", fmt.Errorf("expected a models:/NAME@ALIAS or models:/NAME/VERSION URI")
	}
	return uri, out, trackingURI, nil
}

// pullModel downloads a registered version into dir and checks its files against the
// version's SHA256SUMS (a *DigestError when they differ). A version registered without
// SHA256SUMS (an older catdog, another tool) is accepted with a warning on w, as before.
// `catdog model pull` and the promotion gate's re-evaluation both download through it.
func pullModel(ctx context.Context, cl *mlflowclient.Client, uri, dir string, w io.Writer) (*mlflowclient.ModelVersion, []string, error) {
	mv, files, err := cl.DownloadModel(ctx, uri, dir)
	if err != nil {
		return nil, nil, err
	}
	n, err := verifyDigests(dir)
	switch {
	case errors.Is(err, ErrNoDigests):
		fmt.Fprintf(w, "warning: %s: %v\n", uri, err)
	case err != nil:
		return nil, nil, fmt.Errorf("%s: %w", uri, err)
	default:
		fmt.Fprintf(w, "verified %d files against %s\n", n, modeldir.Digests)
	}
	return mv, files, nil
}
