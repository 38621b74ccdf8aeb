// Package buildinfo reports catdog's version and the git commit it was built from.
package buildinfo

import "runtime/debug"

// version is set at link time: -ldflags "-X github.com/catdog-mlops/catdog/internal/buildinfo.version=v1.2.3".
var version = "dev"

// Version returns the catdog version ("dev" for an unstamped build).
func Version() string { return version }

// Commit returns the VCS revision recorded by the Go toolchain, or "" when unknown.
func Commit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}
