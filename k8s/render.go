package k8s

import (
	"encoding/json"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"
)

// Render writes objects (apply configurations) as multi-document YAML that `kubectl apply -f`
// accepts, each document after a "---" line, with header as leading comment lines.
func Render(w io.Writer, header []string, objects ...any) error {
	for _, h := range header {
		if _, err := fmt.Fprintf(w, "# %s\n", h); err != nil {
			return err
		}
	}
	for _, o := range objects {
		j, err := json.Marshal(o)
		if err != nil {
			return fmt.Errorf("k8s: render %T: %w", o, err)
		}
		y, err := yaml.JSONToYAML(j)
		if err != nil {
			return fmt.Errorf("k8s: render %T: %w", o, err)
		}
		if _, err := fmt.Fprintf(w, "---\n%s", y); err != nil {
			return err
		}
	}
	return nil
}
