package main

import (
	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/dvcfmt/datacli"
)

// dataCommand is `catdog data ...`: DVC-compatible data versioning (dvcfmt/datacli).
func dataCommand() *cli.Command { return datacli.Command() }
