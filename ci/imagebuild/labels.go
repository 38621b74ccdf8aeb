package imagebuild

import (
	"debug/elf"
	"errors"
	"fmt"
	"strings"
)

// DefaultSource is the org.opencontainers.image.source label when neither a source nor the
// GitHub repository is known.
const DefaultSource = "https://github.com/catdog-mlops/catdog"

// LabelInputs are what the image's labels are made of.
type LabelInputs struct {
	Source   string            // org.opencontainers.image.source ("" = DefaultSource)
	Revision string            // commit SHA ("" = no revision label)
	Version  string            // version from the git ref ("" = no version label)
	Model    map[string]string // labels describing the model (a registered model's name, version, run, metrics)
	Extra    []string          // KEY=VALUE labels given by the user; they override the others
}

// ErrBadLabel is returned by Labels for an Extra entry that is not KEY=VALUE.
var ErrBadLabel = errors.New("imagebuild: label is not KEY=VALUE")

// Labels returns the image labels for in (without the creation time and title, which Build
// sets). Extra labels come last and override the others.
func Labels(in LabelInputs) (map[string]string, error) {
	source := in.Source
	if source == "" {
		source = DefaultSource
	}
	labels := map[string]string{LabelSource: source}
	if in.Revision != "" {
		labels[LabelRevision] = in.Revision
	}
	if in.Version != "" {
		labels[LabelVersion] = in.Version
	}
	for k, v := range in.Model {
		labels[k] = v
	}
	for _, kv := range in.Extra {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %q", ErrBadLabel, kv)
		}
		labels[k] = v
	}
	return labels, nil
}

// ErrCannotServe is returned by CheckServes for a binary that does not link libtorch.
var ErrCannotServe = errors.New("does not link libtorch, so it cannot serve")

// CheckServes refuses a binary that cannot run `catdog serve`: the image's entrypoint needs
// the libtorch build (catdog-torch, which lists libtorch_cpu.so as needed), not the light
// catdog that only executes it.
func CheckServes(binary string) error {
	if binary == "" {
		return errors.New("imagebuild: no binary given")
	}
	f, err := elf.Open(binary)
	if err != nil {
		return fmt.Errorf("imagebuild: %s: %w", binary, err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("imagebuild: %s: %w", binary, err)
	}
	for _, l := range libs {
		if strings.HasPrefix(l, "libtorch_cpu.so") {
			return nil
		}
	}
	return fmt.Errorf("imagebuild: %s %w; pass the libtorch build (bin/catdog-torch)", binary, ErrCannotServe)
}
