package turbojpeg

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/catdog-mlops/catdog/imageprep/internal/turbojpeg/jpegtest"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

func newDecoder(t testing.TB) *Decoder {
	t.Helper()
	d, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func encode(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func colourImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(128 + x*y%64), 255})
		}
	}
	return img
}

// smoothImage has gentle colour gradients: chroma subsampling loses little of it.
func smoothImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			b := 128 + 60*math.Sin(float64(x)/9)*math.Cos(float64(y)/7)
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8(b), 255})
		}
	}
	return img
}

// decodeResized decodes data at the scale ScaledSize picks.
func decodeResized(t *testing.T, d *Decoder, data []byte, size int) []byte {
	t.Helper()
	hd, err := d.Header(data)
	if err != nil {
		t.Fatal(err)
	}
	w, h := hd.ScaledSize(size, size)
	out := make([]byte, size*size*3)
	if err := d.DecodeResized(data, hd, w, h, size, out); err != nil {
		t.Fatalf("%dx%d at %dx%d to %d: %v", hd.Width, hd.Height, w, h, size, err)
	}
	return out
}

func TestDecoderHeader(t *testing.T) {
	d := newDecoder(t)
	tests := []struct {
		name string
		img  image.Image
		w, h int
		cs   Colorspace
	}{
		{"colour", colourImage(301, 199), 301, 199, YCbCr},
		{"gray", image.NewGray(image.Rect(0, 0, 17, 9)), 17, 9, Gray},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hd, err := d.Header(encode(t, tc.img))
			if err != nil {
				t.Fatal(err)
			}
			if hd.Width != tc.w || hd.Height != tc.h {
				t.Errorf("size %dx%d, want %dx%d", hd.Width, hd.Height, tc.w, tc.h)
			}
			if hd.Colorspace != tc.cs || !hd.Planar() {
				t.Errorf("colour space %d planar %v, want %d planar", hd.Colorspace, hd.Planar(), tc.cs)
			}
		})
	}
	for _, bad := range [][]byte{nil, []byte("not a jpeg"), {0xff, 0xd8, 0xff}} {
		var e *Error
		if _, err := d.Header(bad); !errors.As(err, &e) {
			t.Errorf("Header(%q) = %v, want *Error", bad, err)
		}
	}
}

func TestScaledSize(t *testing.T) {
	tests := []struct {
		w, h, min, wantW, wantH int
	}{
		{500, 375, 224, 500, 375},   // 1/2 would be 188 rows: full size
		{500, 375, 128, 250, 188},   // 1/2
		{2000, 1500, 224, 500, 375}, // 1/4: 1/8 would be 188 rows
		{4000, 3000, 224, 500, 375}, // 1/8
		{200, 150, 224, 200, 150},   // smaller than the target: full size
		{448, 448, 224, 224, 224},   // exactly 1/2
		{449, 300, 224, 449, 300},   // 3/4 would do, but has no SIMD inverse DCT
		{40, 30, 1, 10, 8},          // 1/4: 1/8 would be under 8 pixels
		{5, 3, 1, 5, 3},             // tiny: full size
	}
	for _, tc := range tests {
		hd := Header{Width: tc.w, Height: tc.h}
		if w, h := hd.ScaledSize(tc.min, tc.min); w != tc.wantW || h != tc.wantH {
			t.Errorf("%dx%d ≥ %d: got %dx%d, want %dx%d", tc.w, tc.h, tc.min, w, h, tc.wantW, tc.wantH)
		}
	}
}

// TestDecodeResizedSubsamplings decodes a photo-like image in every chroma subsampling, at
// sizes that shrink, keep and enlarge it, and checks the result against the source image
// resized the same way in floating point.
func TestDecodeResizedSubsamplings(t *testing.T) {
	d := newDecoder(t)
	src := smoothImage(160, 120)
	for _, s := range jpegtest.All() {
		data, err := jpegtest.Encode(src, s, 98)
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{64, 63, 17, 160, 200} {
			t.Run(fmt.Sprintf("%v/%d", s, size), func(t *testing.T) {
				got := decodeResized(t, d, data, size)
				want := triangleResize(src, size, s == jpegtest.Gray)
				var sum, worst float64
				for i := range got {
					diff := float64(got[i]) - want[i]
					if diff < 0 {
						diff = -diff
					}
					sum += diff
					worst = max(worst, diff)
				}
				mean := sum / float64(len(got))
				// JPEG at quality 98, chroma subsampling and 8-bit intermediate rows: about one
				// level on average (measured 0.3–0.9); tiny outputs of subsampled chroma more.
				t.Logf("mean abs diff %.2f, worst %.0f", mean, worst)
				limit := 1.0
				if size < 32 {
					limit = 3
				}
				if mean > limit {
					t.Errorf("mean abs diff %.2f (worst %.0f) from the source resized in floating point", mean, worst)
				}
			})
		}
	}
}

// triangleResize resizes img to size×size RGB (or its luma, repeated, for gray) with the
// triangle filter in float64: the reference DecodeResized approximates.
func triangleResize(img *image.RGBA, size int, gray bool) []float64 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	weights := func(in, out int) [][2][]float64 { // per output: indices and weights
		scale := float64(in) / float64(out)
		support := max(scale, 1)
		res := make([][2][]float64, out)
		for o := range res {
			c := (float64(o) + 0.5) * scale
			var sum float64
			for i := 0; i < in; i++ {
				v := 1 - abs(float64(i)+0.5-c)/support
				if v > 0 {
					res[o][0] = append(res[o][0], float64(i))
					res[o][1] = append(res[o][1], v)
					sum += v
				}
			}
			for k := range res[o][1] {
				res[o][1][k] /= sum
			}
		}
		return res
	}
	wx, wy := weights(w, size), weights(h, size)
	out := make([]float64, size*size*3)
	for oy := 0; oy < size; oy++ {
		for ox := 0; ox < size; ox++ {
			var px [3]float64
			for a, iy := range wy[oy][0] {
				for b2, ix := range wx[ox][0] {
					c := img.RGBAAt(int(ix), int(iy))
					wt := wy[oy][1][a] * wx[ox][1][b2]
					if gray {
						y := 0.299*float64(c.R) + 0.587*float64(c.G) + 0.114*float64(c.B)
						px[0], px[1], px[2] = px[0]+wt*y, px[1]+wt*y, px[2]+wt*y
						continue
					}
					px[0] += wt * float64(c.R)
					px[1] += wt * float64(c.G)
					px[2] += wt * float64(c.B)
				}
			}
			copy(out[3*(oy*size+ox):], px[:])
		}
	}
	return out
}

// TestSSE2MatchesScalar requires the SSE2 resampler and the portable loops to give the same
// bytes: every subsampling, odd, tiny and wide images (many taps), and real photos.
func TestSSE2MatchesScalar(t *testing.T) {
	type input struct {
		name string
		data []byte
	}
	var inputs []input
	for _, s := range jpegtest.All() {
		for _, sz := range [][2]int{{301, 199}, {5, 3}, {2000, 150}, {97, 1024}} {
			data, err := jpegtest.Encode(colourImage(sz[0], sz[1]), s, 90)
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, input{fmt.Sprintf("%v %dx%d", s, sz[0], sz[1]), data})
		}
	}
	photos := testPhotos(t, 50)
	for _, p := range photos {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, input{filepath.Base(p), data})
	}
	simd, scalar := newDecoder(t), newDecoder(t)
	scalar.setScalar(true)
	for _, in := range inputs {
		for _, size := range []int{224, 128, 63, 16, 1} {
			a, b := decodeResized(t, simd, in.data, size), decodeResized(t, scalar, in.data, size)
			if !bytes.Equal(a, b) {
				t.Errorf("%s at %d: SSE2 and scalar results differ", in.name, size)
			}
		}
	}
}

// TestDecoderReuse checks that a decoder's recycled memory and cached filter taps do not leak
// from one image into the next: one decoder, images of changing sizes, against fresh decoders.
func TestDecoderReuse(t *testing.T) {
	reused := newDecoder(t)
	photos := testPhotos(t, 200)
	for i, p := range photos {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		size := []int{224, 128, 224, 31}[i%4]
		if !bytes.Equal(decodeResized(t, reused, data, size), decodeResized(t, newDecoder(t), data, size)) {
			t.Errorf("%s at %d: a reused decoder gives other bytes than a new one", p, size)
		}
	}
}

func TestDecodeResizedErrors(t *testing.T) {
	d := newDecoder(t)
	data := encode(t, colourImage(256, 256))
	hd, err := d.Header(data)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 64*64*3)
	var e *Error
	if err := d.DecodeResized(data[:len(data)/2], hd, 256, 256, 64, out); !errors.As(err, &e) || !e.Warning {
		t.Errorf("truncated JPEG: %v, want a warning *Error", err)
	}
	if err := d.DecodeResized(data, hd, 257, 256, 64, out); err == nil {
		t.Error("accepted a scaled size larger than the image")
	}
	if err := d.DecodeResized(data, hd, 256, 256, 65, out); err == nil {
		t.Error("accepted a destination too small for the output")
	}
	// The decoder still works after failures.
	if err := d.DecodeResized(data, hd, 256, 256, 64, out); err != nil {
		t.Errorf("after failures: %v", err)
	}
	cmyk, err := os.ReadFile(filepath.Join(testenv.SharedData(t), "bad-inputs", "cmyk.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	chd, err := d.Header(cmyk)
	if err != nil {
		t.Fatal(err)
	}
	if chd.Planar() || (chd.Colorspace != CMYK && chd.Colorspace != YCCK) {
		t.Errorf("cmyk.jpg: colour space %d, planar %v", chd.Colorspace, chd.Planar())
	}
	if err := d.DecodeResized(cmyk, chd, chd.Width, chd.Height, 64, out); err == nil {
		t.Error("decoded a CMYK JPEG through YCbCr planes")
	}
}

// TestDecoderAfterFailure checks that a failure leaves nothing behind in a Decoder: after
// reading a broken or unusual file, the header and pixels of a good one are what a new Decoder
// gives. TurboJPEG 2.1 leaves a handle in the middle of a header after a fatal header error
// (truncated.jpg, or any file cut inside its header); the next header read on that handle then
// "succeeds" with a 0x0 size, which sent the next photo down the standard-library path.
func TestDecoderAfterFailure(t *testing.T) {
	bad := filepath.Join(testenv.SharedData(t), "bad-inputs")
	dirty := map[string][]byte{"garbage after SOI": {0xff, 0xd8, 0xff, 0x00, 0x01}}
	for _, name := range []string{"truncated.jpg", "cmyk.jpg", "grayscale.jpg", "fake.jpg", "alpha.png"} {
		data, err := os.ReadFile(filepath.Join(bad, name))
		if err != nil {
			t.Fatal(err)
		}
		dirty[name] = data
	}
	full := encode(t, colourImage(70, 50))
	for _, n := range []int{2, 20, 100, 200, 400, 600, len(full) / 2} { // cut in the header, in the scan
		dirty[fmt.Sprintf("cut at %d", n)] = full[:n]
	}
	const size = 24
	for _, s := range jpegtest.All() {
		img := smoothImage(61, 43)
		good, err := jpegtest.Encode(img, s, 90)
		if err != nil {
			t.Fatal(err)
		}
		fresh := newDecoder(t)
		wantHd, err := fresh.Header(good)
		if err != nil {
			t.Fatal(err)
		}
		want := decodeResized(t, fresh, good, size)
		for name, data := range dirty {
			d := newDecoder(t)
			if hd, err := d.Header(data); err == nil && hd.Planar() {
				w, h := hd.ScaledSize(size, size)
				_ = d.DecodeResized(data, hd, w, h, size, make([]byte, size*size*3)) // may fail
			}
			hd, err := d.Header(good)
			if err != nil || hd != wantHd {
				t.Errorf("%v after %s: header %+v, %v; a new decoder reads %+v", s, name, hd, err, wantHd)
				continue
			}
			if got := decodeResized(t, d, good, size); !bytes.Equal(got, want) {
				t.Errorf("%v after %s: other pixels than a new decoder gives", s, name)
			}
		}
	}
}

// testPhotos returns about n photos of the dev set, spread over both classes.
func testPhotos(t *testing.T, n int) []string {
	t.Helper()
	dev := filepath.Join(testenv.SharedData(t), "petimages-dev")
	var all []string
	for _, c := range []string{"Cat", "Dog"} {
		m, err := filepath.Glob(filepath.Join(dev, c, "*.jpg"))
		if err != nil || len(m) == 0 {
			t.Fatalf("no photos in %s/%s: %v", dev, c, err)
		}
		all = append(all, m...)
	}
	sort.Strings(all)
	step := max(len(all)/n, 1)
	var picked []string
	for i := 0; i < len(all); i += step {
		picked = append(picked, all[i])
	}
	return picked
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
