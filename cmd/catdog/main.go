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
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/internal/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp()
	if err := app.RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(app.ErrWriter, errorLine(err))
		stop()
		os.Exit(exitCode(err))
	}
}

// newApp builds the CLI. Errors always come back from RunContext (ExitErrHandler does not
// print or exit inside urfave/cli), so tests and the binary take the same path: main prints
// the error once (errorLine) and exits with exitCode. Every command's Action is wrapped once
// here (prefixErrors), so a command's errors name it ("catdog data add: …") whatever package
// they come from.
func newApp() *cli.App {
	app := &cli.App{
		Name:                 "catdog",
		Usage:                "cats-vs-dogs classifier through the whole MLOps lifecycle",
		Version:              buildinfo.Version(),
		EnableBashCompletion: true,
		Writer:               os.Stdout,
		ErrWriter:            os.Stderr,
		Commands:             commands(),
		ExitErrHandler:       func(*cli.Context, error) {},
		OnUsageError:         usageError("catdog"),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cli.Exit(fmt.Sprintf("catdog: unknown command %q (see catdog --help)", c.Args().First()), exitUsage)
			}
			return cli.ShowAppHelp(c)
		},
	}
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := prefix + " " + c.Name
			if c.OnUsageError == nil {
				c.OnUsageError = usageError(name)
			}
			if c.Action != nil {
				c.Action = prefixErrors(name, c.Action)
			}
			walk(name, c.Subcommands)
		}
	}
	walk(app.Name, app.Commands)
	bindEnv(app)
	return app
}

// usageError turns a flag-parsing error of the command named name into exit status 2.
func usageError(name string) cli.OnUsageErrorFunc {
	return func(_ *cli.Context, err error, _ bool) error {
		return cli.Exit(fmt.Sprintf("%s: %v (see %s --help)", name, err, name), exitUsage)
	}
}

// commandError is an error of the command named name (the full path, "catdog data add").
// It unwraps to the command's error, so exitCode still finds a cli.ExitCoder or
// context.Canceled inside it.
type commandError struct {
	name string
	err  error
}

func (e *commandError) Error() string { return e.name + ": " + e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// prefixErrors wraps the Action of the command named name so that its error starts with that
// name, once: an error that already names a command ("catdog …") is returned as it is.
func prefixErrors(name string, action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		err := action(c)
		if err == nil || namesCommand(err.Error()) {
			return err
		}
		return &commandError{name: name, err: err}
	}
}

// namesCommand reports whether msg already starts with the program's or a command's name.
func namesCommand(msg string) bool {
	return strings.HasPrefix(msg, "catdog ") || strings.HasPrefix(msg, "catdog:")
}

// errorLine is the one line printed for a failed run: errors of a command already start with
// its full name ("catdog image build: …"); anything else gets the program's name.
func errorLine(err error) string {
	msg := err.Error()
	if namesCommand(msg) {
		return msg
	}
	return "catdog: " + msg
}

// commands lists every top-level command; each is defined in its own file.
func commands() []*cli.Command {
	return []*cli.Command{
		// one line per command file; keep sorted by workflow order
		dataCommand(),
		prepareCommand(),
		reproCommand(),
		trainCommand(),
		sweepCommand(),
		evaluateCommand(),
		predictCommand(),
		mlflowCommand(),
		modelCommand(),
		serveCommand(),
		driftCommand(),
		alertRelayCommand(),
		imageCommand(),
		k8sCommand(),
		deployCommand(),
		healthCommand(),
		ghaCommand(),
	}
}

// Exit statuses (README "Exit status"): 0 success; 1 the work failed (bad data, a peer
// refused, a rollout failed); 2 the command line or an input named on it is wrong (unknown
// flag, missing argument, a path that is not what the flag needs); 130 interrupted.
const (
	exitFailure = 1
	exitUsage   = 2
	exitSignal  = 130
)

// exitCode maps an error to the process exit status.
func exitCode(err error) int {
	var ec cli.ExitCoder
	switch {
	case strings.HasPrefix(err.Error(), "Required flag"):
		// urfave/cli's missing-required-flag error (its type is unexported)
		return exitUsage
	case errors.As(err, &ec):
		return ec.ExitCode()
	case errors.Is(err, context.Canceled):
		return exitSignal
	default:
		return exitFailure
	}
}
