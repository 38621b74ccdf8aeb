package imageprep

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

// pngBomb is a PNG signature and a valid IHDR claiming w×h RGBA pixels, with no pixel data.
func pngBomb(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk := append([]byte("IHDR"), ihdr...)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	b.Write(chunk)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// jpegBomb is SOI, JFIF APP0 and a baseline SOF0 frame header claiming w×h pixels with 3 components, and no scan.
func jpegBomb(w, h uint16) []byte {
	b := []byte{0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0} // SOI, APP0 JFIF
	b = append(b, 0xff, 0xc0, 0x00, 0x11, 0x08)
	b = binary.BigEndian.AppendUint16(b, h)
	b = binary.BigEndian.AppendUint16(b, w)
	return append(b, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x00, 0x03, 0x11, 0x00)
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecodeBadInputs(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "bad-inputs")
	tests := []struct {
		file   string
		reason Reason // "" = accepted
		format string
		model  color.Model
	}{
		{"empty.jpg", ReasonEmpty, "", nil},
		{"truncated.jpg", ReasonTruncated, "jpeg", nil},
		{"fake.jpg", ReasonUnknownFormat, "", nil},
		{"alpha.png", "", "png", color.NRGBAModel},
		{"grayscale.jpg", "", "jpeg", color.GrayModel},
		{"cmyk.jpg", "", "jpeg", color.CMYKModel},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, format, err := Decode(f, DefaultLimits())
			if tt.reason != "" {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("Decode(%s) error = %v, want *DecodeError", tt.file, err)
				}
				if de.Reason != tt.reason {
					t.Errorf("Decode(%s) reason = %q, want %q (%v)", tt.file, de.Reason, tt.reason, err)
				}
				if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), string(tt.reason)+": ") {
					t.Errorf("Decode(%s) message %q is not one line starting with the reason", tt.file, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%s) = %v, want success", tt.file, err)
			}
			if format != tt.format {
				t.Errorf("format = %q, want %q", format, tt.format)
			}
			if img.ColorModel() != tt.model {
				t.Errorf("colour model = %v, want %v", img.ColorModel(), tt.model)
			}
			rgb := ToRGB(img)
			if rgb.Rect.Min != (image.Point{}) || rgb.Rect.Size() != img.Bounds().Size() {
				t.Errorf("ToRGB bounds = %v, want origin and size %v", rgb.Rect, img.Bounds().Size())
			}
			if !opaqueOrigin(rgb) {
				t.Errorf("ToRGB(%s) is not opaque", tt.file)
			}
		})
	}
}

func TestToRGBColourModels(t *testing.T) {
	const w, h = 3, 2
	gray := image.NewGray(image.Rect(0, 0, w, h))
	gray.SetGray(1, 0, color.Gray{Y: 200})
	cmyk := image.NewCMYK(image.Rect(0, 0, w, h))
	cmyk.SetCMYK(1, 0, color.CMYK{C: 255}) // pure cyan
	nrgba := image.NewNRGBA(image.Rect(0, 0, w, h))
	nrgba.SetNRGBA(1, 0, color.NRGBA{R: 255, A: 255})           // opaque red
	nrgba.SetNRGBA(2, 0, color.NRGBA{R: 0, G: 0, B: 0, A: 128}) // half-transparent black
	rgba := image.NewRGBA(image.Rect(10, 10, 10+w, 10+h))       // offset bounds, transparent = white
	rgba.SetRGBA(11, 10, color.RGBA{G: 100, A: 100})            // premultiplied green at 100/255 alpha
	bad := image.NewRGBA(image.Rect(0, 0, w, h))                // invalid premultiplied value (R > A) saturates
	bad.SetRGBA(1, 0, color.RGBA{R: 200, A: 100})
	pal := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.NRGBA{}, color.NRGBA{B: 255, A: 255}})
	pal.SetColorIndex(1, 0, 1)
	g16 := image.NewGray16(image.Rect(0, 0, w, h))
	g16.SetGray16(1, 0, color.Gray16{Y: 0x8080})

	tests := []struct {
		name      string
		img       image.Image
		at0, at10 color.RGBA // pixel (0,0) and (1,0) relative to the origin
	}{
		{"gray", gray, color.RGBA{0, 0, 0, 255}, color.RGBA{200, 200, 200, 255}},
		{"cmyk", cmyk, color.RGBA{255, 255, 255, 255}, color.RGBA{0, 255, 255, 255}},
		{"nrgba transparent is white", nrgba, color.RGBA{255, 255, 255, 255}, color.RGBA{255, 0, 0, 255}},
		{"rgba offset bounds", rgba, color.RGBA{255, 255, 255, 255}, color.RGBA{155, 255, 155, 255}},
		{"rgba invalid premultiplied", bad, color.RGBA{255, 255, 255, 255}, color.RGBA{255, 155, 155, 255}},
		{"paletted transparent", pal, color.RGBA{255, 255, 255, 255}, color.RGBA{0, 0, 255, 255}},
		{"gray16 generic path", g16, color.RGBA{0, 0, 0, 255}, color.RGBA{128, 128, 128, 255}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ToRGB(tt.img)
			if got.Rect != image.Rect(0, 0, w, h) {
				t.Fatalf("bounds = %v", got.Rect)
			}
			if c := got.RGBAAt(0, 0); c != tt.at0 {
				t.Errorf("(0,0) = %v, want %v", c, tt.at0)
			}
			if c := got.RGBAAt(1, 0); c != tt.at10 {
				t.Errorf("(1,0) = %v, want %v", c, tt.at10)
			}
		})
	}
	// half-transparent black over white is mid grey
	if c := ToRGB(nrgba).RGBAAt(2, 0); c != (color.RGBA{127, 127, 127, 255}) {
		t.Errorf("half-transparent black = %v, want 127 grey", c)
	}
}

func TestDecodeLimits(t *testing.T) {
	small := image.NewRGBA(image.Rect(0, 0, 40, 30))
	tests := []struct {
		name   string
		data   []byte
		lim    Limits
		reason Reason
	}{
		{"png pixel bomb", pngBomb(100_000, 100_000), DefaultLimits(), ReasonTooManyPixels},
		{"jpeg pixel bomb", jpegBomb(60_000, 60_000), DefaultLimits(), ReasonTooManyPixels},
		{"png just over a small pixel limit", encodePNG(t, small), Limits{MaxPixels: 40*30 - 1}, ReasonTooManyPixels},
		{"png at the pixel limit", encodePNG(t, small), Limits{MaxPixels: 40 * 30}, ""},
		{"byte limit", encodeJPEG(t, small), Limits{MaxBytes: 100}, ReasonTooManyBytes},
		{"zero-size png header", pngBomb(0, 10), DefaultLimits(), ReasonCorrupt},
		{"png header only (truncated)", pngBomb(10, 10), DefaultLimits(), ReasonTruncated},
		{"gif is unsupported", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), DefaultLimits(), ReasonUnsupportedFormat},
		{"bmp is unsupported", append([]byte("BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00"), make([]byte, 40)...), DefaultLimits(), ReasonUnsupportedFormat},
		{"text", []byte("BMW is a car, not a bitmap"), DefaultLimits(), ReasonUnknownFormat},
		{"jpeg garbage after SOI", []byte{0xff, 0xd8, 0x00, 0x01, 0x02, 0x03}, DefaultLimits(), ReasonTruncated},
		{"jpeg bad DQT length", []byte{0xff, 0xd8, 0xff, 0xdb, 0x00, 0x02, 0xff, 0xd9}, DefaultLimits(), ReasonCorrupt},
		{"jpeg 12-bit precision", []byte{0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x0c, 0x00, 0x10, 0x00, 0x10, 0x03, 1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0, 0xff, 0xd9}, DefaultLimits(), ReasonUnsupportedFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := Decode(bytes.NewReader(tt.data), tt.lim)
			runtime.ReadMemStats(&after)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Decode = %v, want success", err)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason != tt.reason {
				t.Fatalf("Decode error = %v, want reason %q", err, tt.reason)
			}
			// A bomb must be refused from its header: no pixel buffer may be allocated.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
				t.Errorf("Decode allocated %d bytes for a rejected input", alloc)
			}
		})
	}
}

// TestPreprocessSharedPath holds the guarantee that serving (Preprocess) and training (the
// DecodeResized bytes Prepare caches, normalised) compute the same tensor, and that the standard
// library path (Resize accepts any decoded image and converts it with ToRGB) is consistent.
func TestPreprocessSharedPath(t *testing.T) {
	shared := testenv.SharedData(t)
	files := []string{
		"petimages-dev/Cat/cat.835.jpg", // largest
		"petimages-dev/Dog/dog.630.jpg", // smallest
		"petimages-dev/Dog/dog.1.jpg",
		"bad-inputs/alpha.png",
		"bad-inputs/cmyk.jpg",
		"bad-inputs/grayscale.jpg",
	}
	for _, spec := range []Spec{DefaultSpec(), {Size: 64, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}} {
		for _, name := range files {
			data, err := os.ReadFile(filepath.Join(shared, name))
			if err != nil {
				t.Fatal(err)
			}
			got, err := spec.Preprocess(bytes.NewReader(data), DefaultLimits())
			if err != nil {
				t.Fatalf("Preprocess(%s): %v", name, err)
			}
			img, _, err := Decode(bytes.NewReader(data), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			cached, _, err := DecodeResized(data, spec.Size, DefaultLimits(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(cached) != spec.Size*spec.Size*3 {
				t.Fatalf("cached bytes = %d", len(cached))
			}
			want := make([]float32, 3*spec.Size*spec.Size)
			spec.Normalize(cached, want)
			if len(got) != len(want) {
				t.Fatalf("Preprocess(%s) len %d, want %d", name, len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("Preprocess(%s)[%d] = %v, want %v (size %d)", name, i, got[i], want[i], spec.Size)
				}
			}
			// Resize accepts the decoded image directly and gives the same bytes.
			if direct := packRGB(Resize(img, spec.Size), nil); !bytes.Equal(direct, packRGB(Resize(ToRGB(img), spec.Size), nil)) {
				t.Errorf("Resize(%s) != Resize(ToRGB(...))", name)
			}
		}
	}
}

func TestNormalize(t *testing.T) {
	s := DefaultSpec()
	rgb := []byte{0, 128, 255, 255, 0, 10} // two pixels HWC
	dst := make([]float32, 6)
	s.Normalize(rgb, dst)
	want := []float32{
		(0 - 0.485) / 0.229, (1 - 0.485) / 0.229, // R plane
		(128.0/255 - 0.456) / 0.224, (0 - 0.456) / 0.224, // G plane
		(1 - 0.406) / 0.225, (10.0/255 - 0.406) / 0.225, // B plane
	}
	for i := range want {
		if d := dst[i] - want[i]; d > 1e-6 || d < -1e-6 {
			t.Errorf("dst[%d] = %v, want %v", i, dst[i], want[i])
		}
	}
}

func TestPreprocessBadSpec(t *testing.T) {
	for _, s := range []Spec{{}, {Size: 8}, {Size: -1, Std: [3]float32{1, 1, 1}}} {
		if _, err := s.Preprocess(strings.NewReader("x"), DefaultLimits()); !errors.Is(err, ErrBadSpec) {
			t.Errorf("Preprocess with %+v = %v, want ErrBadSpec", s, err)
		}
	}
}
