package imageprep

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

// meanAbsDiff is the mean absolute difference of two equally long byte slices.
func meanAbsDiff(a, b []byte) float64 {
	var d float64
	for i := range a {
		d += math.Abs(float64(a[i]) - float64(b[i]))
	}
	return d / float64(len(a))
}

// TestDecodeResizedCloseToStandardPath bounds how far the libjpeg-turbo path (DCT-scaled decode,
// planar resize) is from decoding with image/jpeg and resizing RGB with x/image/draw, on real
// photos: the two are different filters, not different pictures.
func TestDecodeResizedCloseToStandardPath(t *testing.T) {
	dev := filepath.Join(testenv.SharedData(t), "petimages-dev")
	var files []string
	for _, c := range []string{"Cat", "Dog"} {
		m, err := filepath.Glob(filepath.Join(dev, c, "*.jpg"))
		if err != nil || len(m) == 0 {
			t.Fatalf("no photos in %s/%s: %v", dev, c, err)
		}
		sort.Strings(m)
		for i := 0; i < len(m); i += 40 {
			files = append(files, m[i])
		}
	}
	for _, size := range []int{224, 128, 63} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			var diffs []float64
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				got, src, err := DecodeResized(data, size, DefaultLimits(), nil)
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				img, _, err := DecodeBytes(data, DefaultLimits())
				if err != nil {
					t.Fatal(err)
				}
				if b := img.Bounds(); src.Width != b.Dx() || src.Height != b.Dy() || src.Format != "jpeg" {
					t.Fatalf("%s: source %+v, decoded %v", f, src, b)
				}
				diffs = append(diffs, meanAbsDiff(got, packRGB(Resize(img, size), nil)))
			}
			sort.Float64s(diffs)
			var mean float64
			for _, d := range diffs {
				mean += d
			}
			mean /= float64(len(diffs))
			worst := diffs[len(diffs)-1]
			t.Logf("%d photos at %d: mean abs diff %.2f, worst photo %.2f (of 255)", len(diffs), size, mean, worst)
			if mean > 3 || worst > 6 {
				t.Errorf("mean abs diff %.2f (limit 3), worst %.2f (limit 6)", mean, worst)
			}
		})
	}
}

// TestDecodeResizedColoursAndGeometry checks solid colours, grayscale JPEGs, odd and tiny sizes
// (upscaling), and that a left-dark/right-light edge stays in the middle (no shift).
func TestDecodeResizedColoursAndGeometry(t *testing.T) {
	solid := func(w, h int, c color.Color) image.Image {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				img.Set(x, y, c)
			}
		}
		return img
	}
	cases := []struct {
		name    string
		img     image.Image
		size    int
		r, g, b byte
	}{
		{"red 640x480", solid(640, 480, color.RGBA{200, 30, 40, 255}), 224, 200, 30, 40},
		{"green 301x199 odd", solid(301, 199, color.RGBA{20, 180, 60, 255}), 64, 20, 180, 60},
		{"blue 5x3 upscaled", solid(5, 3, color.RGBA{40, 50, 220, 255}), 32, 40, 50, 220},
		{"large 2000x1500 at 1/8", solid(2000, 1500, color.RGBA{120, 90, 30, 255}), 224, 120, 90, 30},
		{"gray jpeg", grayImage(300, 200, 77), 224, 77, 77, 77},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := encodeJPEG(t, c.img)
			got, _, err := DecodeResized(data, c.size, DefaultLimits(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3*c.size*c.size {
				t.Fatalf("%d bytes, want %d", len(got), 3*c.size*c.size)
			}
			want := [3]byte{c.r, c.g, c.b}
			for i, v := range got {
				if d := int(v) - int(want[i%3]); d < -4 || d > 4 {
					t.Fatalf("pixel %d channel %d = %d, want %d±4", i/3, i%3, v, want[i%3])
				}
			}
		})
	}
	t.Run("edge stays centred", func(t *testing.T) {
		img := image.NewGray(image.Rect(0, 0, 800, 600))
		for y := 0; y < 600; y++ {
			for x := 400; x < 800; x++ {
				img.Pix[y*800+x] = 255
			}
		}
		got, _, err := DecodeResized(encodeJPEG(t, img), 64, DefaultLimits(), nil)
		if err != nil {
			t.Fatal(err)
		}
		row := got[32*64*3 : 33*64*3]
		for x := 0; x < 64; x++ {
			v := row[3*x]
			switch {
			case x < 30 && v > 10, x > 33 && v < 245:
				t.Fatalf("column %d = %d: the edge moved (row %v)", x, v, row)
			}
		}
		if mid := int(row[3*31]) + int(row[3*32]); mid < 200 || mid > 310 {
			t.Errorf("columns 31+32 = %d, want about 255 (the edge between them)", mid)
		}
	})
}

func grayImage(w, h int, v byte) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = v
	}
	return g
}

// TestDecodeResizedFallbacksAndBadInputs: PNGs and CMYK JPEGs take the standard path byte for
// byte, and every bad input is rejected with the reason Decode gives.
func TestDecodeResizedFallbacksAndBadInputs(t *testing.T) {
	bad := filepath.Join(testenv.SharedData(t), "bad-inputs")
	ents, err := os.ReadDir(bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(bad, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got, _, gotErr := DecodeResized(data, 48, DefaultLimits(), nil)
		img, format, wantErr := Decode(bytes.NewReader(data), DefaultLimits())
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%s: DecodeResized error %v, Decode error %v", e.Name(), gotErr, wantErr)
		}
		if wantErr != nil {
			var g, w *DecodeError
			if !errors.As(gotErr, &g) || !errors.As(wantErr, &w) || g.Reason != w.Reason {
				t.Fatalf("%s: reasons differ: %v vs %v", e.Name(), gotErr, wantErr)
			}
			continue
		}
		if _, isCMYK := img.(*image.CMYK); isCMYK || format == "png" {
			if want := packRGB(Resize(img, 48), nil); !bytes.Equal(got, want) {
				t.Errorf("%s (%s, %T): not the standard path's bytes", e.Name(), format, img)
			}
		}
	}
}

func BenchmarkDecodeResized(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(testenv.SharedData(b), "petimages-dev", "Cat", "cat.835.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	var dst []byte
	for range b.N {
		if dst, _, err = DecodeResized(data, 224, DefaultLimits(), dst); err != nil {
			b.Fatal(err)
		}
	}
}
