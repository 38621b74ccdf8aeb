package mlflowclient

import (
	"bytes"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// MLmodel is the descriptor that makes an artifact folder a self-describing MLflow model
// directory (the file named "MLmodel"). Keys are written sorted, as yaml.safe_dump does.
type MLmodel struct {
	ArtifactPath   string                    `yaml:"artifact_path,omitempty"`
	Flavors        map[string]map[string]any `yaml:"flavors"`
	MLflowVersion  string                    `yaml:"mlflow_version,omitempty"`
	ModelID        string                    `yaml:"model_id,omitempty"` // the LoggedModel (MLflow 3)
	ModelSizeBytes int64                     `yaml:"model_size_bytes,omitempty"`
	ModelUUID      string                    `yaml:"model_uuid"`
	RunID          string                    `yaml:"run_id,omitempty"`
	UTCTimeCreated string                    `yaml:"utc_time_created"`
	Metadata       map[string]any            `yaml:"metadata,omitempty"`
}

// MLmodelTime formats t as MLflow's utc_time_created ("YYYY-MM-DD HH:MM:SS.ffffff", naive UTC).
func MLmodelTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000") }

// Marshal encodes the descriptor as YAML.
func (m MLmodel) Marshal() ([]byte, error) {
	if len(m.Flavors) == 0 {
		return nil, fmt.Errorf("mlflow: MLmodel needs at least one flavor")
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2) // as yaml.safe_dump writes it
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("mlflow: MLmodel: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseMLmodel decodes an MLmodel file.
func ParseMLmodel(b []byte) (*MLmodel, error) {
	var m MLmodel
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("mlflow: MLmodel: %w", err)
	}
	return &m, nil
}
