package imageprep

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Sample is one accepted image of a prepared dataset.
type Sample struct {
	Path          string // relative to the data folder, forward slashes
	Label         int    // index into Classes()
	MD5           string // hex md5 of the file bytes
	Split         string // "train", "val" or "test"
	Width, Height int    // original size
}

// Rejected is one file Prepare skipped, with the reason.
type Rejected struct {
	Path   string
	Reason Reason
	Detail string
}

// Prepared is prepared.json: the settings and the index of the cached split files.
type Prepared struct {
	Size        int                   `json:"size"`
	Classes     []string              `json:"classes"`
	Seed        int64                 `json:"seed"`
	Fractions   [3]float64            `json:"fractions"`
	ManifestMD5 string                `json:"manifest_md5"`
	Source      string                `json:"source"`
	Splits      map[string]SplitIndex `json:"splits"`
	// InputsMD5 fingerprints the input files (paths and md5s) and every setting that changes the
	// cached bytes; Prepare reuses the cache only when it matches.
	InputsMD5 string `json:"inputs_md5"`
	Pipeline  string `json:"pipeline"`
	Limits    Limits `json:"limits"`
	Rejected  int    `json:"rejected"`
}

// SplitIndex describes one cached split file: Count images of Size×Size×3 bytes, in the order
// of Labels and Paths.
type SplitIndex struct {
	File   string   `json:"file"`
	Count  int      `json:"count"`
	Labels []int    `json:"labels"`
	Paths  []string `json:"paths"`
}

// ReadPrepared reads dir/prepared.json.
func ReadPrepared(dir string) (*Prepared, error) {
	b, err := os.ReadFile(filepath.Join(dir, PreparedFile))
	if err != nil {
		return nil, fmt.Errorf("imageprep: %w", err)
	}
	var p Prepared
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("imageprep: %s: %w", PreparedFile, err)
	}
	if p.Size <= 0 || len(p.Classes) == 0 {
		return nil, fmt.Errorf("imageprep: %s: no size or classes", PreparedFile)
	}
	return &p, nil
}

var manifestHeader = []string{"path", "md5", "label", "split", "width", "height"}

// encodeManifest renders manifest.csv (header, then one row per sample; label is the class name).
func encodeManifest(samples []Sample) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(manifestHeader)
	for _, s := range samples {
		_ = w.Write([]string{s.Path, s.MD5, classes[s.Label], s.Split, strconv.Itoa(s.Width), strconv.Itoa(s.Height)})
	}
	w.Flush()
	return b.Bytes()
}

// ReadManifest parses manifest.csv as written by Prepare.
func ReadManifest(r io.Reader) ([]Sample, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("imageprep: manifest: %w", err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(manifestHeader, ",") {
		return nil, fmt.Errorf("imageprep: manifest: header is not %v", manifestHeader)
	}
	samples := make([]Sample, 0, len(rows)-1)
	for n, row := range rows[1:] {
		label := classIndex(row[2])
		w, err1 := strconv.Atoi(row[4])
		h, err2 := strconv.Atoi(row[5])
		if label < 0 || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("imageprep: manifest line %d: bad label or size %v", n+2, row)
		}
		samples = append(samples, Sample{Path: row[0], MD5: row[1], Label: label, Split: row[3], Width: w, Height: h})
	}
	return samples, nil
}

func encodeRejected(rj []Rejected) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"path", "reason", "detail"})
	for _, r := range rj {
		_ = w.Write([]string{r.Path, string(r.Reason), r.Detail})
	}
	w.Flush()
	return b.Bytes()
}

func readRejectedFile(name string) ([]Rejected, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("imageprep: %s: %v", RejectedFile, err)
	}
	var out []Rejected
	for _, row := range rows[1:] {
		out = append(out, Rejected{Path: row[0], Reason: Reason(row[1]), Detail: row[2]})
	}
	return out, nil
}
