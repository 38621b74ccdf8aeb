// Package drifttest derives drifted photos from real ones for drift tests and benchmarks:
// darkened, grayscale, downscaled and heavily re-compressed copies, written into a folder the
// test owns.
package drifttest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"

	"golang.org/x/image/draw"

	"github.com/catdog-mlops/catdog/imageprep"
)

// Transform names a way of deriving a photo.
type Transform string

// Transforms.
const (
	Darken     Transform = "darken"     // every channel × 0.4, re-encoded at quality 75
	Grayscale  Transform = "grayscale"  // Rec. 601 luma as a one-channel JPEG, quality 75
	Downscale  Transform = "downscale"  // a quarter of the width and height (Catmull-Rom), quality 75
	Recompress Transform = "recompress" // the same pixels re-encoded at JPEG quality 5
)

// Transforms lists every transform.
func Transforms() []Transform { return []Transform{Darken, Grayscale, Downscale, Recompress} }

// Derive decodes a JPEG or PNG and returns the transformed copy as a JPEG.
func Derive(data []byte, tr Transform) ([]byte, error) {
	img, _, err := imageprep.DecodeBytes(data, imageprep.Limits{})
	if err != nil {
		return nil, err
	}
	rgb := imageprep.ToRGB(img)
	b := rgb.Bounds()
	var out image.Image
	quality := 75
	switch tr {
	case Darken:
		d := image.NewRGBA(b)
		for i := 0; i < len(rgb.Pix); i += 4 {
			d.Pix[i], d.Pix[i+1], d.Pix[i+2], d.Pix[i+3] = uint8(float64(rgb.Pix[i])*0.4+0.5), uint8(float64(rgb.Pix[i+1])*0.4+0.5), uint8(float64(rgb.Pix[i+2])*0.4+0.5), 255
		}
		out = d
	case Grayscale:
		g := image.NewGray(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				g.Set(x, y, color.GrayModel.Convert(rgb.RGBAAt(x, y)))
			}
		}
		out = g
	case Downscale:
		w, h := max(1, b.Dx()/4), max(1, b.Dy()/4)
		s := image.NewRGBA(image.Rect(0, 0, w, h))
		draw.CatmullRom.Scale(s, s.Bounds(), rgb, b, draw.Src, nil)
		out = s
	case Recompress:
		out, quality = rgb, 5
	default:
		return nil, fmt.Errorf("drifttest: unknown transform %q", tr)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, out, &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteDerived writes the transformed copy of every file in paths into dir (flat, same base
// names) and returns the paths written.
func WriteDerived(paths []string, tr Transform, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		d, err := Derive(data, tr)
		if err != nil {
			return nil, fmt.Errorf("drifttest: %s: %w", p, err)
		}
		name := filepath.Join(dir, filepath.Base(p))
		if err := os.WriteFile(name, d, 0o644); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, nil
}
