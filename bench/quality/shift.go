package main

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"

	"golang.org/x/image/draw"
	"golang.org/x/sync/errgroup"

	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/internal/atomicfile"
)

// A shift turns one decoded photo into the photo "another source" would have sent: other
// sizes, other crops, another JPEG encoder (Go's image/jpeg, not the libjpeg that wrote the
// Kaggle files) at other qualities. Every shift is deterministic: the only randomness (a crop's
// position) comes from a hash of the photo's path.
type shift struct {
	// Name is the folder the shifted photos go to.
	Name string
	// Why says which real-world source it imitates.
	Why string
	// Apply returns the shifted image; key seeds the crop position.
	Apply func(img *image.RGBA, key uint64) image.Image
	// Quality is the JPEG quality the result is encoded at.
	Quality int
}

// shifts are the variants of the shifted test set, each applied to every photo of the split.
func shifts() []shift {
	return []shift{
		{Name: "jpeg-q30", Why: "heavy re-compression (messaging apps, thumbnails)", Quality: 30,
			Apply: func(img *image.RGBA, _ uint64) image.Image { return img }},
		{Name: "square180-q75", Why: "the data set's 180x180 re-encoded copies (squashed)", Quality: 75,
			Apply: func(img *image.RGBA, _ uint64) image.Image { return scaleTo(img, 180, 180) }},
		{Name: "square100-q90", Why: "the data set's 100x100 copies (squashed, small)", Quality: 90,
			Apply: func(img *image.RGBA, _ uint64) image.Image { return scaleTo(img, 100, 100) }},
		{Name: "crop70-q85", Why: "another framing: a window of 70% of the area at a hashed position", Quality: 85,
			Apply: func(img *image.RGBA, key uint64) image.Image { return cropFraction(img, 0.7, key) }},
		{Name: "half-q60", Why: "a phone's half-size share, medium quality", Quality: 60,
			Apply: func(img *image.RGBA, _ uint64) image.Image {
				b := img.Bounds()
				return scaleTo(img, max(1, b.Dx()/2), max(1, b.Dy()/2))
			}},
		{Name: "upscale150-q95", Why: "an upscaled copy (larger than the original, near-lossless)", Quality: 95,
			Apply: func(img *image.RGBA, _ uint64) image.Image {
				b := img.Bounds()
				return scaleTo(img, b.Dx()*3/2, b.Dy()*3/2)
			}},
	}
}

// scaleTo resizes with Catmull-Rom, a different resampler from the bilinear one of `catdog
// prepare`, so the model sees another pipeline's pixels.
func scaleTo(img *image.RGBA, w, h int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Rect, img, img.Bounds(), draw.Src, nil)
	return dst
}

// cropFraction cuts a window of frac of the area (same aspect ratio) at a position chosen by key.
func cropFraction(img *image.RGBA, frac float64, key uint64) image.Image {
	b := img.Bounds()
	w, h := int(float64(b.Dx())*math.Sqrt(frac)), int(float64(b.Dy())*math.Sqrt(frac))
	w, h = max(1, w), max(1, h)
	x0 := int(key % uint64(b.Dx()-w+1))
	y0 := int((key >> 32) % uint64(b.Dy()-h+1))
	return img.SubImage(image.Rect(b.Min.X+x0, b.Min.Y+y0, b.Min.X+x0+w, b.Min.Y+y0+h))
}

// pathKey is the deterministic seed of one photo's shifts.
func pathKey(rel string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(rel))
	return h.Sum64()
}

// encodeShift decodes one photo, applies s and returns the JPEG bytes.
func encodeShift(data []byte, rel string, s shift) ([]byte, error) {
	img, _, err := imageprep.DecodeBytes(data, imageprep.DefaultLimits())
	if err != nil {
		return nil, err
	}
	out := s.Apply(imageprep.ToRGB(img), pathKey(rel))
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, out, &jpeg.Options{Quality: s.Quality}); err != nil {
		return nil, fmt.Errorf("encode %s: %w", rel, err)
	}
	return buf.Bytes(), nil
}

// buildShifted writes OUT/<shift>/<Class>/<file>.jpg for every photo of split in the prepared
// folder data: only that split's photos are read, so the shifted set is as unseen as the split.
// It returns the number of photos per shift.
func buildShifted(ctx context.Context, data, split, out string, workers int) (int, error) {
	prep, err := imageprep.ReadPrepared(data)
	if err != nil {
		return 0, err
	}
	idx, ok := prep.Splits[split]
	if !ok || len(idx.Paths) == 0 || len(idx.Paths) != len(idx.Labels) {
		return 0, fmt.Errorf("%s has no split %q with photo paths", data, split)
	}
	ss := shifts()
	for _, s := range ss {
		for _, c := range prep.Classes {
			if err := os.MkdirAll(filepath.Join(out, s.Name, c), 0o755); err != nil {
				return 0, fmt.Errorf("shift: %w", err)
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, workers))
	for i, rel := range idx.Paths {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			src := rel
			if !filepath.IsAbs(src) {
				src = filepath.Join(prep.Source, rel)
			}
			data, err := os.ReadFile(src)
			if err != nil {
				return fmt.Errorf("shift: %w", err)
			}
			base := filepath.Base(rel)
			base = base[:len(base)-len(filepath.Ext(base))] + ".jpg"
			for _, s := range ss {
				b, err := encodeShift(data, rel, s)
				if err != nil {
					return fmt.Errorf("shift %s: %s: %w", s.Name, rel, err)
				}
				dst := filepath.Join(out, s.Name, prep.Classes[idx.Labels[i]], base)
				if err := atomicfile.WriteFile(dst, b, 0o644); err != nil {
					return fmt.Errorf("shift: %w", err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return len(idx.Paths), nil
}
