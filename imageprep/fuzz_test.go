package imageprep

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzDecode from corpusShapes")

const corpusDir = "testdata/fuzz/FuzzDecode"

// corpusShapes are small synthetic inputs with the shapes of the shared bad inputs and of the
// colour models we accept. They are generated (no photo bytes are committed).
func corpusShapes(t testing.TB) map[string][]byte {
	gray := image.NewGray(image.Rect(0, 0, 9, 7))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 7)
	}
	alpha := synthImage(10, 8, 2)
	for i := 3; i < len(alpha.Pix); i += 8 {
		alpha.Pix[i] = 0
	}
	pal := image.NewPaletted(image.Rect(0, 0, 5, 5), color.Palette{color.NRGBA{}, color.NRGBA{R: 255, A: 255}})
	pal.SetColorIndex(2, 2, 1)
	g16 := image.NewRGBA64(image.Rect(0, 0, 4, 3))
	g16.SetRGBA64(1, 1, color.RGBA64{R: 0xffff, A: 0x8000})
	rgb := encodeJPEG(t, synthImage(17, 13, 1))
	return map[string][]byte{
		"empty":            {},
		"fake-text":        []byte("This is not a picture, just some text with a .jpg name.\n"),
		"jpeg-rgb":         rgb,
		"jpeg-truncated":   rgb[:len(rgb)/2],
		"jpeg-header-only": rgb[:min(len(rgb), 300)],
		"jpeg-gray":        encodeJPEG(t, gray),
		"jpeg-bomb":        jpegBomb(60_000, 60_000),
		"png-alpha":        encodePNG(t, alpha),
		"png-paletted":     encodePNG(t, pal),
		"png-rgba64":       encodePNG(t, g16),
		"png-bomb":         pngBomb(100_000, 100_000),
		"png-ihdr-only":    pngBomb(10, 10),
		"gif":              []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
	}
}

func TestFuzzCorpus(t *testing.T) {
	shapes := corpusShapes(t)
	if *updateCorpus {
		if err := os.MkdirAll(corpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range shapes {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			if err := os.WriteFile(filepath.Join(corpusDir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name := range shapes {
		if _, err := os.Stat(filepath.Join(corpusDir, name)); err != nil {
			t.Errorf("seed %s missing from %s (run go test -run TestFuzzCorpus -update-corpus): %v", name, corpusDir, err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes through both decode paths — the standard library's (Decode →
// ToRGB → Resize) and the shared preprocessing path (DecodeResized: libjpeg-turbo for JPEGs) —:
// neither may panic, every failure must be a *DecodeError with a known reason, and the two must
// agree on whether the input is an image within the limits.
func FuzzDecode(f *testing.F) {
	// The shared bad inputs themselves are seeds too (read at run time, not committed), cut to
	// their first 4 KiB: the headers are what matters, and large seeds slow the mutator to a crawl.
	bad := filepath.Join(testenv.SharedData(f), "bad-inputs")
	entries, err := os.ReadDir(bad)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(bad, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 4096)])
	}
	known := map[Reason]bool{ReasonEmpty: true, ReasonUnknownFormat: true, ReasonTruncated: true, ReasonCorrupt: true,
		ReasonTooManyBytes: true, ReasonTooManyPixels: true, ReasonUnsupportedFormat: true}
	lim := Limits{MaxBytes: 1 << 16, MaxPixels: 1 << 16} // small bounds keep every exec fast
	f.Fuzz(func(t *testing.T, data []byte) {
		rgb, _, rerr := DecodeResized(data, 8, lim, nil)
		if rerr != nil {
			var de *DecodeError
			if !errors.As(rerr, &de) || !known[de.Reason] {
				t.Fatalf("DecodeResized error %v is not a *DecodeError with a known reason", rerr)
			}
		} else if len(rgb) != 3*8*8 {
			t.Fatalf("DecodeResized gave %d bytes", len(rgb))
		}
		img, format, err := Decode(bytes.NewReader(data), lim)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || !known[de.Reason] {
				t.Fatalf("Decode error %v is not a *DecodeError with a known reason", err)
			}
			return
		}
		if rerr != nil {
			t.Fatalf("the standard decoder accepts the input, DecodeResized rejects it: %v", rerr)
		}
		if format != "jpeg" && format != "png" {
			t.Fatalf("format %q", format)
		}
		b := img.Bounds()
		if b.Empty() || int64(b.Dx())*int64(b.Dy()) > lim.MaxPixels {
			t.Fatalf("decoded bounds %v outside the limits", b)
		}
		if out := packRGB(Resize(img, 8), nil); len(out) != 3*8*8 {
			t.Fatalf("Resize gave %d bytes", len(out))
		}
	})
}
