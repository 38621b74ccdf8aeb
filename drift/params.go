package drift

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// DecodeParams reads the `drift:` section of a params.yaml document (other top-level keys
// are ignored; unknown keys inside the section are errors) and returns it with the defaults
// filled in and validated. A document without the section gives the defaults. `catdog serve
// --params` and `catdog drift report --params` both read it, so that the batch report and the
// live monitor use the same methods and thresholds; training's params reader decodes the same
// section into the same type.
func DecodeParams(r io.Reader) (MonitorConfig, error) {
	var doc map[string]yaml.Node
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return MonitorConfig{}, fmt.Errorf("drift: params: %w", err)
	}
	var cfg MonitorConfig
	if sec, ok := doc["drift"]; ok {
		// Node.Decode cannot reject unknown keys: decode the section's own text strictly.
		b, err := yaml.Marshal(&sec)
		if err != nil {
			return MonitorConfig{}, fmt.Errorf("drift: params: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return MonitorConfig{}, fmt.Errorf("drift: params: drift: %w", err)
		}
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return MonitorConfig{}, fmt.Errorf("drift: params: %w", err)
	}
	return cfg, nil
}
