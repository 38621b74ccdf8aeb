package imageprep

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gonum.org/v1/gonum/stat"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

// fill returns size×size RGB bytes with pixel (x, y) = f(x, y).
func fill(size int, f func(x, y int) (r, g, b uint8)) []byte {
	out := make([]byte, 3*size*size)
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			i := 3 * (y*size + x)
			out[i], out[i+1], out[i+2] = f(x, y)
		}
	}
	return out
}

func TestImageFeaturesKnownImages(t *testing.T) {
	const size = 16
	src := Source{Format: "jpeg", Width: 400, Height: 300}
	tests := []struct {
		name string
		rgb  []byte
		want map[string]float64
	}{
		{"uniform gray", fill(size, func(int, int) (uint8, uint8, uint8) { return 100, 100, 100 }), map[string]float64{
			FeatureWidth: 400, FeatureHeight: 300, FeatureAspect: 4.0 / 3, FeatureFileSize: 1234,
			FeatureMeanR: 100, FeatureMeanG: 100, FeatureMeanB: 100, FeatureStdR: 0, FeatureStdG: 0, FeatureStdB: 0,
			FeatureBrightness: 100, FeatureContrast: 0, FeatureSaturation: 0, FeatureSharpness: 0, FeatureGrayscale: 1,
		}},
		{"pure red", fill(size, func(int, int) (uint8, uint8, uint8) { return 255, 0, 0 }), map[string]float64{
			FeatureMeanR: 255, FeatureMeanG: 0, FeatureBrightness: 0.299 * 255, FeatureSaturation: 1,
			FeatureSharpness: 0, FeatureGrayscale: 0,
		}},
		{"black", fill(size, func(int, int) (uint8, uint8, uint8) { return 0, 0, 0 }), map[string]float64{
			FeatureSaturation: 0, FeatureBrightness: 0, FeatureGrayscale: 1,
		}},
		// A one-pixel checkerboard of 0 and 200: every interior Laplacian is ±800, variance 640,000.
		{"checkerboard", fill(size, func(x, y int) (uint8, uint8, uint8) {
			if (x+y)%2 == 0 {
				return 200, 200, 200
			}
			return 0, 0, 0
		}), map[string]float64{
			FeatureMeanR: 100, FeatureStdR: 100, FeatureBrightness: 100, FeatureContrast: 100,
			FeatureSharpness: 640000, FeatureGrayscale: 1,
		}},
		// Left half black, right half white: only the two columns at the edge have a Laplacian
		// (±255), so the variance is 2/(size-2)·255² (the mean is 0).
		{"edge", fill(size, func(x, _ int) (uint8, uint8, uint8) {
			if x < size/2 {
				return 0, 0, 0
			}
			return 255, 255, 255
		}), map[string]float64{
			FeatureSharpness: 2.0 / (size - 2) * 255 * 255, FeatureContrast: 127.5,
		}},
		// A faint colour cast (R one above G and B) is still a grayscale photo.
		{"near gray", fill(size, func(int, int) (uint8, uint8, uint8) { return 101, 100, 100 }), map[string]float64{
			FeatureGrayscale: 1,
		}},
		{"coloured", fill(size, func(int, int) (uint8, uint8, uint8) { return 110, 100, 100 }), map[string]float64{
			FeatureGrayscale: 0, FeatureSaturation: 10.0 / 110,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ImageFeatures(tt.rgb, size, src, 1234)
			if err != nil {
				t.Fatal(err)
			}
			got := f.Map()
			for k, want := range tt.want {
				if math.Abs(got[k]-want) > 1e-9*math.Max(1, math.Abs(want)) {
					t.Errorf("%s = %v, want %v", k, got[k], want)
				}
			}
		})
	}
}

// TestImageFeaturesMatchReference recomputes the features of a real photo with gonum's stat
// package, from float pixels, and requires the integer fast path to agree.
func TestImageFeaturesMatchReference(t *testing.T) {
	data := devPhoto(t, "Cat/cat.1.jpg")
	for _, size := range []int{64, 128, 224} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { checkReference(t, data, size) })
	}
}

// checkReference recomputes the features on the featureStep grid in floating point with gonum.
func checkReference(t *testing.T, data []byte, size int) {
	rgb, src, err := DecodeResized(data, size, Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ImageFeatures(rgb, size, src, len(data))
	if err != nil {
		t.Fatal(err)
	}
	ff, err := FileFeatures(data, size, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if ff != f {
		t.Errorf("FileFeatures = %v, ImageFeatures = %v", ff, f)
	}
	step := featureStep(size)
	if want := (size + 63) / 64; step != want {
		t.Fatalf("featureStep(%d) = %d", size, step)
	}
	lumaAt := func(x, y int) float64 {
		i := 3 * (y*size + x)
		return 0.299*float64(rgb[i]) + 0.587*float64(rgb[i+1]) + 0.114*float64(rgb[i+2])
	}
	var ch [3][]float64
	var luma, lap []float64
	for y := 0; y < size; y += step {
		for x := 0; x < size; x += step {
			i := 3 * (y*size + x)
			for c := 0; c < 3; c++ {
				ch[c] = append(ch[c], float64(rgb[i+c]))
			}
			luma = append(luma, lumaAt(x, y))
			if x > 0 && y > 0 && x < size-1 && y < size-1 {
				lap = append(lap, lumaAt(x, y-1)+lumaAt(x, y+1)+lumaAt(x-1, y)+lumaAt(x+1, y)-4*lumaAt(x, y))
			}
		}
	}
	got := f.Map()
	check := func(name string, want float64) {
		t.Helper()
		if math.Abs(got[name]-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %.9g, reference %.9g", name, got[name], want)
		}
	}
	for c, names := range [3][2]string{{FeatureMeanR, FeatureStdR}, {FeatureMeanG, FeatureStdG}, {FeatureMeanB, FeatureStdB}} {
		m, s := stat.PopMeanStdDev(ch[c], nil)
		check(names[0], m)
		check(names[1], s)
	}
	m, s := stat.PopMeanStdDev(luma, nil)
	check(FeatureBrightness, m)
	check(FeatureContrast, s)
	check(FeatureSharpness, stat.PopVariance(lap, nil))
	check(FeatureWidth, float64(src.Width))
	check(FeatureFileSize, float64(len(data)))
	if got[FeatureGrayscale] != 0 {
		t.Errorf("a colour photo has grayscale = %v", got[FeatureGrayscale])
	}
}

// TestFileFeaturesGrayscaleAndDarkening checks the features move the way a person expects on
// a real photo: a grayscale copy is flagged and has no saturation, a darkened copy is darker,
// a downscaled copy is smaller and less sharp.
func TestFileFeaturesGrayscaleAndDarkening(t *testing.T) {
	data := devPhoto(t, "Dog/dog.2.jpg")
	img, _, err := DecodeBytes(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rgb := ToRGB(img)
	b := rgb.Bounds()
	gray := image.NewGray(b)
	dark := image.NewRGBA(b)
	small := Resize(img, b.Dx()/4)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := rgb.RGBAAt(x, y)
			gray.Set(x, y, c)
			dark.SetRGBA(x, y, color.RGBA{c.R / 3, c.G / 3, c.B / 3, 255})
		}
	}
	enc := func(m image.Image) []byte {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	const size = 128
	orig, err := FileFeatures(data, size, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	feat := func(m image.Image) map[string]float64 {
		f, err := FileFeatures(enc(m), size, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return f.Map()
	}
	o := orig.Map()
	g, d, s := feat(gray), feat(dark), feat(small)
	if g[FeatureGrayscale] != 1 || g[FeatureSaturation] > 0.01 || o[FeatureGrayscale] != 0 {
		t.Errorf("grayscale copy: flag %v saturation %v (original flag %v)", g[FeatureGrayscale], g[FeatureSaturation], o[FeatureGrayscale])
	}
	if d[FeatureBrightness] > o[FeatureBrightness]/2 || d[FeatureContrast] > o[FeatureContrast]/2 {
		t.Errorf("darkened copy: brightness %v contrast %v, original %v %v", d[FeatureBrightness], d[FeatureContrast], o[FeatureBrightness], o[FeatureContrast])
	}
	if s[FeatureWidth] != float64(small.Bounds().Dx()) || s[FeatureSharpness] >= o[FeatureSharpness] {
		t.Errorf("downscaled copy: width %v sharpness %v, original sharpness %v", s[FeatureWidth], s[FeatureSharpness], o[FeatureSharpness])
	}
}

func TestImageFeaturesRejectsBadInput(t *testing.T) {
	good := Source{Width: 10, Height: 10}
	for _, tt := range []struct {
		name string
		rgb  []byte
		size int
		src  Source
	}{
		{"short buffer", make([]byte, 10), 4, good},
		{"zero size", nil, 0, good},
		{"no source size", make([]byte, 48), 4, Source{}},
	} {
		if _, err := ImageFeatures(tt.rgb, tt.size, tt.src, 1); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	if _, err := FileFeatures([]byte("not an image"), 8, Limits{}); err == nil {
		t.Error("FileFeatures accepted text")
	}
}

func BenchmarkImageFeatures(b *testing.B) {
	for _, size := range []int{128, 224} {
		rgb := fill(size, func(x, y int) (uint8, uint8, uint8) { return uint8(x * y), uint8(x + y), uint8(x ^ y) })
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			for b.Loop() {
				if _, err := ImageFeatures(rgb, size, Source{Width: 500, Height: 375}, 30000); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func devPhoto(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.SharedData(t), "petimages-dev", rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
