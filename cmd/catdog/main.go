// Command catdog carries a cats-vs-dogs classifier through data versioning, training,
// tracking, packaging, CI and serving. This package only wires the library packages together:
// each command lives in its own file, binds its flags and calls into a package.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/internal/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp()
	if err := app.RunContext(ctx, os.Args); err != nil {
		fmt.Fprintf(app.ErrWriter, "catdog: %v\n", err)
		os.Exit(exitCode(err))
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:                 "catdog",
		Usage:                "cats-vs-dogs classifier through the whole MLOps lifecycle",
		Version:              buildinfo.Version(),
		EnableBashCompletion: true,
		Writer:               os.Stdout,
		ErrWriter:            os.Stderr,
		Commands:             commands(),
	}
}

// commands lists every top-level command; each is defined in its own file.
func commands() []*cli.Command {
	return []*cli.Command{
		// one line per command file; keep sorted by workflow order
		dataCommand(),
		prepareCommand(),
		reproCommand(),
		trainCommand(),
		evaluateCommand(),
		predictCommand(),
		mlflowCommand(),
		modelCommand(),
		serveCommand(),
		driftCommand(),
		alertRelayCommand(),
		imageCommand(),
		k8sCommand(),
		ghaCommand(),
	}
}

// exitCode maps an error to the process exit status: 130 after an interrupt, 1 otherwise.
func exitCode(err error) int {
	var ec cli.ExitCoder
	switch {
	case errors.As(err, &ec):
		return ec.ExitCode()
	case errors.Is(err, context.Canceled):
		return 130
	default:
		return 1
	}
}
