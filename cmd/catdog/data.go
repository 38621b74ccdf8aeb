package main

import (
	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/dvcfmt/datacli"
)

// dataCommand is `catdog data ...`: DVC-compatible data versioning (dvcfmt/datacli).
func dataCommand() *cli.Command { return datacli.Command() }

// reproCommand is `catdog repro`: run the stale stages of dvc.yaml (dvcfmt/datacli).
func reproCommand() *cli.Command { return datacli.ReproCommand() }
