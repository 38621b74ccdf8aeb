package imageprep

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/errgroup"
)

// parallel runs fn(0..n-1) on at most workers goroutines and calls done with the number
// finished so far after each (one call at a time, k increasing). It stops starting work when
// ctx is cancelled and returns ctx's error then.
func parallel(ctx context.Context, n, workers int, fn func(i int), done func(k int)) error {
	var g errgroup.Group
	g.SetLimit(max(workers, 1))
	var mu sync.Mutex
	finished := 0
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			fn(i)
			if done != nil {
				mu.Lock()
				finished++
				done(finished)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	return ctx.Err()
}

// result is the outcome of one file.
type result struct {
	sample   Sample
	rejected *Rejected
}

// decodeAll decodes, resizes and packs every file, writing accepted images to row i of pixels.
func decodeAll(ctx context.Context, o PrepareOptions, paths []string, sums []fileSum, pixels *os.File) ([]result, error) {
	rowBytes := o.Size * o.Size * 3
	results := make([]result, len(paths))
	bufs := sync.Pool{New: func() any { b := make([]byte, rowBytes); return &b }}
	var (
		mu     sync.Mutex
		ioErr  error
		report = func(i int, r Reason, detail string) {
			results[i].rejected = &Rejected{Path: paths[i], Reason: r, Detail: oneLine(detail)}
		}
	)
	err := parallel(ctx, len(paths), o.Workers, func(i int) {
		rel := paths[i]
		if sums[i].err != nil {
			report(i, ReasonUnreadable, sums[i].err.Error())
			return
		}
		if sums[i].size > o.Limits.MaxBytes {
			report(i, ReasonTooManyBytes, fmt.Sprintf("more than %d bytes", o.Limits.MaxBytes))
			return
		}
		data, err := os.ReadFile(filepath.Join(o.Source, filepath.FromSlash(rel)))
		if err != nil {
			report(i, ReasonUnreadable, err.Error())
			return
		}
		if sum := md5.Sum(data); hex.EncodeToString(sum[:]) != sums[i].md5 {
			report(i, ReasonUnreadable, "file changed while preparing")
			return
		}
		bp := bufs.Get().(*[]byte)
		defer bufs.Put(bp)
		rgb, src, err := DecodeResized(data, o.Size, o.Limits, *bp)
		if err != nil {
			var de *DecodeError
			if errors.As(err, &de) {
				detail := ""
				if de.Err != nil {
					detail = de.Err.Error()
				}
				report(i, de.Reason, detail)
			} else {
				report(i, ReasonCorrupt, err.Error())
			}
			return
		}
		// A file that is not an image is reported as such even without a label; a good image
		// without a label is reported as unlabelled.
		label, ok, why := LabelOf(rel)
		if !ok {
			report(i, ReasonUnlabelled, why)
			return
		}
		*bp = rgb
		if _, err := pixels.WriteAt(rgb, int64(i)*int64(rowBytes)); err != nil {
			mu.Lock()
			ioErr = err
			mu.Unlock()
			return
		}
		results[i].sample = Sample{Path: rel, Label: label, MD5: sums[i].md5, Width: src.Width, Height: src.Height}
	}, func(k int) {
		if o.Progress != nil {
			o.Progress(k, len(paths))
		}
	})
	if err != nil {
		return nil, err
	}
	if ioErr != nil {
		return nil, fmt.Errorf("imageprep: writing pixel cache: %w", ioErr)
	}
	return results, nil
}
