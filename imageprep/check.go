package imageprep

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// FileCheck is the outcome of validating one file with Check.
type FileCheck struct {
	Path          string // relative to the folder, forward slashes
	Format        string // "jpeg" or "png" when recognised
	Width, Height int
	Model         string       // decoded colour model, e.g. "YCbCr", "Gray", "CMYK", "NRGBA"
	Err           *DecodeError // nil when the file is usable
}

// Check decodes every file under dir (bounded by lim, on workers goroutines; 0 = all cores) and
// reports each one, usable or not, sorted by path. Unlike Prepare it needs no labels and writes
// nothing: it answers "which of these files would be accepted, and why not".
func Check(ctx context.Context, dir string, lim Limits, workers int) ([]FileCheck, error) {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	lim = lim.withDefaults()
	paths, err := ListFiles(dir, 1_000_000, nil)
	if err != nil {
		return nil, err
	}
	out := make([]FileCheck, len(paths))
	err = parallel(ctx, len(paths), workers, func(i int) {
		out[i].Path = paths[i]
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(paths[i])))
		if err != nil {
			out[i].Err = &DecodeError{Reason: ReasonUnreadable, Err: err}
			return
		}
		defer f.Close()
		img, format, err := Decode(f, lim)
		out[i].Format = format
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				de = &DecodeError{Reason: ReasonCorrupt, Err: err}
			}
			out[i].Err = de
			return
		}
		b := img.Bounds()
		out[i].Width, out[i].Height, out[i].Model = b.Dx(), b.Dy(), modelName(img)
	}, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// modelName names the decoded image's colour model by its concrete type ("*image.NRGBA" → "NRGBA").
func modelName(img any) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", img), "*image.")
}
