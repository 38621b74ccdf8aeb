package train

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/model"
)

// EvalOptions select what EvaluateModel scores.
type EvalOptions struct {
	// Data is a folder of photos labelled by layout (Cat/ Dog/, cat.N.jpg), or a folder written
	// by `catdog prepare` (recognised by its prepared.json).
	Data string
	// Split picks the split of a prepared folder (default "test").
	Split string
	// BatchSize is the number of images per forward pass (default 32).
	BatchSize int
	// Limits bound what is decoded.
	Limits imageprep.Limits
}

// Skipped is a photo that could not be scored, with the reason.
type Skipped struct {
	Path   string
	Reason imageprep.Reason
	Detail string
}

// EvalResult is an evaluation plus the files that were skipped.
type EvalResult struct {
	Evaluation Evaluation
	Skipped    []Skipped
	Paths      []string
	Probs      [][]float32
}

// EvaluateModel scores a loaded model. Photos go through imageprep's Preprocess, exactly as in
// `catdog serve`; a prepared folder's cached pixels go through Normalize, which is the same
// path after the resize that prepare already did.
func EvaluateModel(ctx context.Context, m *model.Model, o EvalOptions) (*EvalResult, error) {
	if o.BatchSize <= 0 {
		o.BatchSize = 32
	}
	if o.Split == "" {
		o.Split = "test"
	}
	info := m.Info()
	spec := m.Spec()
	if _, err := os.Stat(filepath.Join(o.Data, imageprep.PreparedFile)); err == nil {
		ds, err := imageprep.LoadSplit(o.Data, o.Split)
		if err != nil {
			return nil, err
		}
		if ds.Size != spec.Size {
			return nil, fmt.Errorf("train: %s was prepared at %d pixels, the model takes %d", o.Data, ds.Size, spec.Size)
		}
		res := &EvalResult{Paths: ds.Paths}
		plane := 3 * spec.Size * spec.Size
		for lo := 0; lo < ds.N; lo += o.BatchSize {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			hi := min(lo+o.BatchSize, ds.N)
			x := make([]float32, (hi-lo)*plane)
			for i := lo; i < hi; i++ {
				spec.Normalize(ds.Image(i), x[(i-lo)*plane:(i-lo+1)*plane])
			}
			p, err := m.Predict(x, hi-lo)
			if err != nil {
				return nil, err
			}
			res.Probs = append(res.Probs, p...)
		}
		ev, err := Evaluate(info.Classes, ds.Labels, res.Probs)
		res.Evaluation = ev
		return res, err
	}

	var files []string
	var labels []int
	res := &EvalResult{}
	err := filepath.WalkDir(o.Data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name()[0] == '.' {
			return nil
		}
		rel, _ := filepath.Rel(o.Data, path)
		l, ok, why := imageprep.LabelOf(filepath.ToSlash(rel))
		if !ok {
			res.Skipped = append(res.Skipped, Skipped{Path: rel, Reason: "unlabelled", Detail: why})
			return nil
		}
		files = append(files, path)
		labels = append(labels, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	sort.Sort(byPath{files, labels})
	var kept []int
	plane := 3 * spec.Size * spec.Size
	for lo := 0; lo < len(files); lo += o.BatchSize {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+o.BatchSize, len(files))
		x := make([]float32, 0, (hi-lo)*plane)
		n := 0
		for i := lo; i < hi; i++ {
			v, err := preprocessFile(files[i], spec, o.Limits)
			if err != nil {
				res.Skipped = append(res.Skipped, skippedFrom(files[i], err))
				continue
			}
			x = append(x, v...)
			kept = append(kept, labels[i])
			res.Paths = append(res.Paths, files[i])
			n++
		}
		if n == 0 {
			continue
		}
		p, err := m.Predict(x, n)
		if err != nil {
			return nil, err
		}
		res.Probs = append(res.Probs, p...)
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("train: no labelled, readable photos in %s", o.Data)
	}
	ev, err := Evaluate(info.Classes, kept, res.Probs)
	res.Evaluation = ev
	return res, err
}

// PreprocessFile reads one photo through imageprep's shared path.
func preprocessFile(path string, spec imageprep.Spec, lim imageprep.Limits) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return spec.Preprocess(f, lim)
}

func skippedFrom(path string, err error) Skipped {
	var de *imageprep.DecodeError
	if errors.As(err, &de) {
		return Skipped{Path: path, Reason: de.Reason, Detail: err.Error()}
	}
	return Skipped{Path: path, Reason: "unreadable", Detail: err.Error()}
}

type byPath struct {
	files  []string
	labels []int
}

func (b byPath) Len() int           { return len(b.files) }
func (b byPath) Less(i, j int) bool { return b.files[i] < b.files[j] }
func (b byPath) Swap(i, j int) {
	b.files[i], b.files[j] = b.files[j], b.files[i]
	b.labels[i], b.labels[j] = b.labels[j], b.labels[i]
}
