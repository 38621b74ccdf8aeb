package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/catdog-mlops/catdog/imageprep"
)

// photo is a deterministic 300x200 test picture with some structure (gradients and a disc).
func photo(t *testing.T, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 300, 200))
	for y := 0; y < 200; y++ {
		for x := 0; x < 300; x++ {
			c := color.RGBA{uint8(x + seed*40), uint8(y * 255 / 200), uint8((x * y) % 256), 255}
			if (x-150)*(x-150)+(y-100)*(y-100) < 60*60 {
				c = color.RGBA{uint8(200 - seed*30), 40, 90, 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestShiftsAreDeterministicAndChangeThePhoto(t *testing.T) {
	src := photo(t, 1)
	wantSize := map[string]image.Point{
		"jpeg-q30":       {300, 200},
		"square180-q75":  {180, 180},
		"square100-q90":  {100, 100},
		"crop70-q85":     {250, 167},
		"half-q60":       {150, 100},
		"upscale150-q95": {450, 300},
	}
	var names []string
	for _, s := range shifts() {
		names = append(names, s.Name)
		t.Run(s.Name, func(t *testing.T) {
			a, err := encodeShift(src, "Cat/cat.1.jpg", s)
			if err != nil {
				t.Fatal(err)
			}
			b, err := encodeShift(src, "Cat/cat.1.jpg", s)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Error("the same photo shifted twice gives different bytes")
			}
			if bytes.Equal(a, src) {
				t.Error("the shift returned the original bytes")
			}
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(a))
			if err != nil {
				t.Fatalf("shifted photo is not a JPEG: %v", err)
			}
			if got := (image.Point{cfg.Width, cfg.Height}); got != wantSize[s.Name] {
				t.Errorf("size %v, want %v", got, wantSize[s.Name])
			}
			// The serving path reads it.
			if _, err := imageprep.DefaultSpec().Preprocess(bytes.NewReader(a), imageprep.DefaultLimits()); err != nil {
				t.Errorf("Preprocess: %v", err)
			}
		})
	}
	if len(wantSize) != len(names) {
		t.Errorf("shifts %v, test expects %d", names, len(wantSize))
	}
}

func TestCropPositionDependsOnThePhoto(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 300, 200))
	seen := map[image.Point]bool{}
	for i := range 8 {
		r := cropFraction(img, 0.7, pathKey(fmt.Sprintf("Dog/dog.%d.jpg", i))).Bounds()
		if r.Dx() != 250 || r.Dy() != 167 || !r.In(img.Rect) {
			t.Fatalf("crop %v of %v", r, img.Rect)
		}
		seen[r.Min] = true
	}
	if len(seen) < 4 {
		t.Errorf("8 photos got only %d crop positions", len(seen))
	}
}

// TestBuildShiftedUsesOnlyTheSplit prepares a small labelled folder and checks that the shifted
// set holds exactly the test split's photos, under every shift, with their labels.
func TestBuildShiftedUsesOnlyTheSplit(t *testing.T) {
	src := t.TempDir()
	for _, c := range []string{"Cat", "Dog"} {
		if err := os.MkdirAll(filepath.Join(src, c), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			name := filepath.Join(src, c, fmt.Sprintf("%s.%d.jpg", c, i))
			if err := os.WriteFile(name, photo(t, i%5), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	prepared := filepath.Join(t.TempDir(), "prepared")
	ctx := context.Background()
	if _, err := imageprep.Prepare(ctx, imageprep.PrepareOptions{Source: src, Out: prepared, Size: 32, Seed: 7, Fractions: [3]float64{0.6, 0.2, 0.2}}); err != nil {
		t.Fatal(err)
	}
	prep, err := imageprep.ReadPrepared(prepared)
	if err != nil {
		t.Fatal(err)
	}
	test := prep.Splits["test"]
	var want []string
	for i, p := range test.Paths {
		want = append(want, prep.Classes[test.Labels[i]]+"/"+filepath.Base(p))
	}
	slices.Sort(want)

	out := t.TempDir()
	n, err := buildShifted(ctx, prepared, "test", out, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(test.Paths) || n == 0 {
		t.Fatalf("%d photos shifted, the test split has %d", n, len(test.Paths))
	}
	for _, s := range shifts() {
		var got []string
		for _, c := range prep.Classes {
			files, _ := filepath.Glob(filepath.Join(out, s.Name, c, "*.jpg"))
			for _, f := range files {
				got = append(got, c+"/"+filepath.Base(f))
				if l, ok, _ := imageprep.LabelOf(filepath.ToSlash(mustRel(t, out, f))); !ok || prep.Classes[l] != c {
					t.Errorf("%s: label %v %v", f, l, ok)
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want the test split %v", s.Name, got, want)
		}
	}
	if _, err := buildShifted(ctx, prepared, "nope", out, 2); err == nil {
		t.Error("an unknown split was accepted")
	}
}

func mustRel(t *testing.T, base, p string) string {
	t.Helper()
	r, err := filepath.Rel(base, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
