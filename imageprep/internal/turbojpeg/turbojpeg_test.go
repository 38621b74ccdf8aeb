package turbojpeg

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

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
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	return img
}

func TestDecodeHeader(t *testing.T) {
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
			hd, err := DecodeHeader(encode(t, tc.img))
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
		if _, err := DecodeHeader(bad); !errors.As(err, &e) {
			t.Errorf("DecodeHeader(%q) = %v, want *Error", bad, err)
		}
	}
}

func TestScaledSize(t *testing.T) {
	tests := []struct {
		w, h, min, wantW, wantH int
	}{
		{500, 375, 224, 313, 235},   // 5/8
		{500, 375, 128, 188, 141},   // 3/8
		{2000, 1500, 224, 500, 375}, // 2/8: 1/8 would be 188 rows
		{200, 150, 224, 200, 150},   // smaller than the target: full size
		{448, 448, 224, 224, 224},   // exactly 1/2
		{449, 300, 224, 337, 225},   // 6/8
	}
	for _, tc := range tests {
		hd := Header{Width: tc.w, Height: tc.h}
		if w, h := hd.ScaledSize(tc.min, tc.min); w != tc.wantW || h != tc.wantH {
			t.Errorf("%dx%d ≥ %d: got %dx%d, want %dx%d", tc.w, tc.h, tc.min, w, h, tc.wantW, tc.wantH)
		}
	}
}

func TestDecodePlanesAndToRGB(t *testing.T) {
	src := colourImage(64, 48)
	data := encode(t, src)
	hd, err := DecodeHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodePlanes(data, hd, 64, 48, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Width != 64 || p.Height != 48 || p.HSub != 2 || p.VSub != 2 || p.Cb == nil || len(p.Buf()) < len(p.Y) {
		t.Fatalf("planes %+v", p)
	}
	// Reusing the buffer gives the same planes.
	p2, err := DecodePlanes(data, hd, 64, 48, p.Buf())
	if err != nil || !bytes.Equal(p2.Y, p.Y) {
		t.Fatalf("reuse: %v", err)
	}
	rgb := make([]byte, 64*48*3)
	if err := p.Subsampling.ToRGB(rgb, 64, 48, p.Y, p.YStride, p.Cb, p.Cr, p.CStride); err != nil {
		t.Fatal(err)
	}
	// The round trip through JPEG is close to the source.
	var worst int
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			c := src.RGBAAt(x, y)
			o := 3 * (y*64 + x)
			for i, v := range []uint8{c.R, c.G, c.B} {
				worst = max(worst, abs(int(rgb[o+i])-int(v)))
			}
		}
	}
	if worst > 12 {
		t.Errorf("round trip differs by up to %d", worst)
	}
	if err := p.Subsampling.ToRGB(rgb[:10], 64, 48, p.Y, p.YStride, p.Cb, p.Cr, p.CStride); err == nil {
		t.Error("ToRGB accepted a short destination")
	}
	if _, err := DecodePlanes(data, hd, 65, 48, nil); err == nil {
		t.Error("DecodePlanes accepted a size larger than the image")
	}
}

func TestDecodePlanesDamage(t *testing.T) {
	data := encode(t, colourImage(256, 256))
	hd, err := DecodeHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	_, err = DecodePlanes(data[:len(data)/2], hd, 256, 256, nil)
	if !errors.As(err, &e) || !e.Warning {
		t.Fatalf("truncated JPEG: %v, want a warning *Error", err)
	}
	cmyk, err := os.ReadFile(filepath.Join(testenv.SharedData(t), "bad-inputs", "cmyk.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	chd, err := DecodeHeader(cmyk)
	if err != nil {
		t.Fatal(err)
	}
	if chd.Planar() || (chd.Colorspace != CMYK && chd.Colorspace != YCCK) {
		t.Errorf("cmyk.jpg: colour space %d, planar %v", chd.Colorspace, chd.Planar())
	}
	if _, err := DecodePlanes(cmyk, chd, chd.Width, chd.Height, nil); err == nil {
		t.Error("DecodePlanes decoded a CMYK JPEG to YCbCr planes")
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
