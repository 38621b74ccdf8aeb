// Command catdog-data is `catdog data` alone, without libtorch: the same command tree
// (dvcfmt/datacli), for benchmarks and for machines that only version data.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/dvcfmt/datacli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := &cli.App{
		Name:      "catdog-data",
		Usage:     "DVC-compatible data versioning (catdog data without the rest of catdog)",
		Writer:    os.Stdout,
		ErrWriter: os.Stderr,
		Commands:  []*cli.Command{datacli.Command()},
	}
	if err := app.RunContext(ctx, os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "catdog-data: %v\n", err)
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}
