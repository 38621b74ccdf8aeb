//go:build catdog_light

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"
)

// EnvTorchBinary overrides where the light catdog finds catdog-torch.
const EnvTorchBinary = "CATDOG_TORCH"

// torchBinaryName is the file name of the libtorch build, installed next to catdog.
const torchBinaryName = "catdog-torch"

func trainCommand() *cli.Command    { return delegated("train", trainUsage) }
func evaluateCommand() *cli.Command { return delegated("evaluate", evaluateUsage) }
func predictCommand() *cli.Command  { return delegated("predict", predictUsage) }
func serveCommand() *cli.Command    { return delegated("serve", serveUsage) }
func sweepCommand() *cli.Command    { return delegated("sweep", sweepUsage) }

// delegated is a command of the light build that replaces the process with catdog-torch
// running the same command line (flags, --help and exit status are catdog-torch's).
func delegated(name, usage string) *cli.Command {
	return &cli.Command{
		Name:            name,
		Usage:           usage,
		Description:     "Runs " + torchBinaryName + " " + name + " (the libtorch build of catdog); see `catdog " + name + " --help`.",
		SkipFlagParsing: true,
		HideHelp:        true,
		Action: func(c *cli.Context) error {
			bin, err := torchBinary()
			if err != nil {
				return err
			}
			argv := append([]string{"catdog", name}, c.Args().Slice()...)
			if err := syscall.Exec(bin, argv, os.Environ()); err != nil {
				return fmt.Errorf("catdog %s: running %s: %w", name, bin, err)
			}
			return nil // not reached
		},
	}
}

// torchBinary finds catdog-torch: $CATDOG_TORCH, then next to this executable, then in PATH.
func torchBinary() (string, error) {
	if p := os.Getenv(EnvTorchBinary); p != "" {
		if err := isExecutable(p); err != nil {
			return "", fmt.Errorf("$%s: %w", EnvTorchBinary, err)
		}
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), torchBinaryName)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(torchBinaryName); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s (the libtorch build of catdog, needed by train, evaluate, predict, serve and image build) "+
		"is neither next to this executable nor in PATH; build it with `make build` or set $%s", torchBinaryName, EnvTorchBinary)
}

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return &fs.PathError{Op: "exec", Path: p, Err: errors.New("not an executable file")}
	}
	return nil
}
