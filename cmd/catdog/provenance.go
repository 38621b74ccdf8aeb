package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/catdog-mlops/catdog/internal/atomicfile"
	"github.com/catdog-mlops/catdog/mlflowclient"
	"github.com/catdog-mlops/catdog/model/modeldir"
)

// addedAfterDigests reports the files written into a registered model after SHA256SUMS (the
// MLmodel descriptor of the upload) or by the pull itself.
func addedAfterDigests(name string) bool {
	return name == modeldir.Digests || name == modeldir.MLmodel || name == modeldir.Provenance
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// modelFiles lists the regular files below dir (slash-separated, sorted).
func modelFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// writeDigests writes dir/SHA256SUMS for every file of dir.
func writeDigests(dir string) error {
	files, err := modelFiles(dir)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, f := range files {
		if addedAfterDigests(f) {
			continue
		}
		sum, err := sha256File(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, f)
	}
	return atomicfile.WriteFile(filepath.Join(dir, modeldir.Digests), b.Bytes(), 0o644)
}

// DigestError lists the files of a pulled model that do not match its SHA256SUMS.
type DigestError struct {
	Mismatch, Missing, Unexpected []string
}

func (e *DigestError) Error() string {
	var parts []string
	for _, p := range []struct {
		what  string
		files []string
	}{{"digest mismatch", e.Mismatch}, {"missing", e.Missing}, {"not in " + modeldir.Digests, e.Unexpected}} {
		if len(p.files) > 0 {
			parts = append(parts, p.what+": "+strings.Join(p.files, ", "))
		}
	}
	return "model files do not match " + modeldir.Digests + " (" + strings.Join(parts, "; ") + ")"
}

// ErrNoDigests is returned for a model directory without SHA256SUMS (registered by an older
// catdog or by another tool): its files cannot be checked.
var ErrNoDigests = errors.New("the model version has no " + modeldir.Digests + "; its files cannot be verified")

// verifyDigests checks that dir holds exactly the files SHA256SUMS lists, with those digests
// (plus the files written after it: MLmodel, the provenance record).
func verifyDigests(dir string) (int, error) {
	f, err := os.Open(filepath.Join(dir, modeldir.Digests))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ErrNoDigests
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 || name == "" {
			return 0, fmt.Errorf("%s: malformed line %q", modeldir.Digests, sc.Text())
		}
		want[name] = sum
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	files, err := modelFiles(dir)
	if err != nil {
		return 0, err
	}
	var de DigestError
	have := map[string]bool{}
	for _, name := range files {
		have[name] = true
		sum, ok := want[name]
		switch {
		case addedAfterDigests(name):
		case !ok:
			de.Unexpected = append(de.Unexpected, name)
		default:
			got, err := sha256File(filepath.Join(dir, filepath.FromSlash(name)))
			if err != nil {
				return 0, err
			}
			if got != sum {
				de.Mismatch = append(de.Mismatch, name)
			}
		}
	}
	for name := range want {
		if !have[name] {
			de.Missing = append(de.Missing, name)
		}
	}
	sort.Strings(de.Missing)
	if len(de.Mismatch)+len(de.Missing)+len(de.Unexpected) > 0 {
		return 0, &de
	}
	return len(want), nil
}

// provenance is registered_model.json: which registered version a model directory is.
type provenance struct {
	Name    string             `json:"name"`
	Version string             `json:"version"`
	RunID   string             `json:"run_id"`
	Source  string             `json:"source"`
	URI     string             `json:"uri"` // the models:/ URI it was pulled as
	Aliases []string           `json:"aliases,omitempty"`
	Metrics map[string]float64 `json:"metrics,omitempty"` // the source run's test_* metrics
}

func writeProvenance(dir, uri string, mv *mlflowclient.ModelVersion, run *mlflowclient.Run) error {
	p := provenance{Name: mv.Name, Version: mv.Version, RunID: mv.RunID, Source: mv.Source, URI: uri, Aliases: mv.Aliases}
	if run != nil {
		p.Metrics = map[string]float64{}
		for _, m := range run.Data.Metrics {
			if strings.HasPrefix(m.Key, "test_") {
				p.Metrics[m.Key] = float64(m.Value)
			}
		}
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, modeldir.Provenance), append(b, '\n'), 0o644)
}

// Image labels from a pulled model's provenance.
const (
	LabelModelName    = "io.catdog.model.name"
	LabelModelVersion = "io.catdog.model.version"
	LabelModelRunID   = "io.catdog.model.run_id"
	LabelModelURI     = "io.catdog.model.uri"
	LabelMetricPrefix = "io.catdog.model.metric."
)

// provenanceLabels returns the image labels for a model directory with registered_model.json
// (none for a directory that was not pulled from the registry).
func provenanceLabels(dir string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, modeldir.Provenance))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p provenance
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", modeldir.Provenance, err)
	}
	labels := map[string]string{LabelModelName: p.Name, LabelModelVersion: p.Version, LabelModelRunID: p.RunID, LabelModelURI: p.URI}
	for k, v := range p.Metrics {
		labels[LabelMetricPrefix+k] = fmt.Sprintf("%.6g", v)
	}
	return labels, nil
}
