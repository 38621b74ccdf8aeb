//go:build !catdog_light

package main

import "github.com/urfave/cli/v2"

// threadsFlag is --threads: libtorch's intra-op threads.
func threadsFlag() cli.Flag {
	return &cli.IntFlag{Name: "threads", Usage: "libtorch intra-op threads (0: one per core; train: overrides params.yaml)",
		EnvVars: []string{"CATDOG_THREADS"}}
}
