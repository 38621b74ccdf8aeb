//go:build !catdog_light

package main

import "os"

// torchBinary is the catdog build that runs models: this one.
func torchBinary() (string, error) { return os.Executable() }
