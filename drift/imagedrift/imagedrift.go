// Package imagedrift connects imageprep's per-image features to the drift package: feature
// rows become drift tables, and folders of photos become feature tables. It is shared by
// training (the reference profile), serving (the live window) and `catdog drift report`.
package imagedrift

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/imageprep"
)

// Kinds returns the drift kind of every feature, in imageprep.FeatureNames order.
func Kinds() []drift.Kind {
	var k []drift.Kind
	for _, n := range imageprep.FeatureNames() {
		if imageprep.CategoricalFeature(n) {
			k = append(k, drift.Categorical)
		} else {
			k = append(k, drift.Numerical)
		}
	}
	return k
}

// Table turns feature rows into a drift table (columns in imageprep.FeatureNames order).
func Table(rows []imageprep.Features) drift.Table {
	t := drift.Table{Names: imageprep.FeatureNames(), Kinds: Kinds(), Columns: make([][]float64, imageprep.NumFeatures)}
	for c := range t.Columns {
		t.Columns[c] = make([]float64, len(rows))
		for r := range rows {
			t.Columns[c][r] = rows[r][c]
		}
	}
	return t
}

// Skipped is a file that gave no features.
type Skipped struct {
	Path   string
	Reason imageprep.Reason
	Err    error
}

// FilesOptions configure Files.
type FilesOptions struct {
	Size     int              // the side the image is resized to (the model's input size)
	Limits   imageprep.Limits // per-file bounds (zero fields: imageprep defaults)
	Workers  int              // decoding goroutines (default GOMAXPROCS)
	MaxFiles int              // most files read (default 1,000,000)
	// Progress, when set, is called after each file with the files done and the total.
	Progress func(done, total int)
}

// ListImages returns the .jpg, .jpeg and .png files below dir (imageprep.ListFiles: dot
// directories skipped), sorted; more than maxFiles (default 1,000,000) is an error.
func ListImages(dir string, maxFiles int) ([]string, error) {
	if maxFiles <= 0 {
		maxFiles = 1_000_000
	}
	rels, err := imageprep.ListFiles(dir, maxFiles, func(rel string) bool {
		switch strings.ToLower(path.Ext(rel)) {
		case ".jpg", ".jpeg", ".png":
			return true
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("imagedrift: %w", err)
	}
	out := make([]string, len(rels))
	for i, r := range rels {
		out[i] = filepath.Join(dir, filepath.FromSlash(r))
	}
	return out, nil
}

// Files computes the features of every file in paths, in parallel; files that cannot be
// decoded are skipped and listed (never fatal). The rows are in paths order, without the
// skipped ones.
func Files(ctx context.Context, paths []string, o FilesOptions) ([]imageprep.Features, []Skipped, error) {
	if o.Size < 1 {
		return nil, nil, errors.New("imagedrift: size must be positive")
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	rows := make([]imageprep.Features, len(paths))
	errs := make([]error, len(paths))
	var g errgroup.Group
	g.SetLimit(o.Workers)
	var mu sync.Mutex // progress calls one at a time, done increasing
	done := 0
	for i := range paths {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			rows[i], errs[i] = fileFeatures(paths[i], o) // a bad file is skipped, never fatal
			if o.Progress != nil {
				mu.Lock()
				done++
				o.Progress(done, len(paths))
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait() // no task returns an error: per-file errors are in errs
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	var out []imageprep.Features
	var skipped []Skipped
	for i, err := range errs {
		if err != nil {
			s := Skipped{Path: paths[i], Reason: imageprep.ReasonUnreadable, Err: err}
			var de *imageprep.DecodeError
			if errors.As(err, &de) {
				s.Reason = de.Reason
			}
			skipped = append(skipped, s)
			continue
		}
		out = append(out, rows[i])
	}
	return out, skipped, nil
}

func fileFeatures(path string, o FilesOptions) (imageprep.Features, error) {
	lim := o.Limits
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = imageprep.DefaultLimits().MaxBytes
	}
	f, err := os.Open(path)
	if err != nil {
		return imageprep.Features{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, lim.MaxBytes+1))
	if err != nil {
		return imageprep.Features{}, err
	}
	return imageprep.FileFeatures(data, o.Size, lim) // more than MaxBytes: ReasonTooManyBytes
}
