package imageprep

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	stddraw "image/draw"
	"io"

	"golang.org/x/image/draw"
)

// ToRGB converts any decoded image (YCbCr, gray, CMYK, paletted, with or without alpha) to an
// opaque RGB image whose bounds start at (0,0). Transparent pixels are composited over white, so
// a cut-out animal sits on a white background instead of black.
func ToRGB(img image.Image) *image.RGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	switch src := img.(type) {
	case *image.YCbCr:
		// image/draw has an exact fast path for YCbCr → RGBA (same formula as color.YCbCrToRGB).
		stddraw.Draw(dst, dst.Rect, src, b.Min, stddraw.Src)
	case *image.Gray:
		for y := 0; y < h; y++ {
			o := src.PixOffset(b.Min.X, b.Min.Y+y)
			s := src.Pix[o : o+w]
			d := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
			for x, v := range s {
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = v, v, v, 0xff
			}
		}
	case *image.CMYK:
		for y := 0; y < h; y++ {
			o := src.PixOffset(b.Min.X, b.Min.Y+y)
			s := src.Pix[o : o+4*w]
			d := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
			for x := 0; x < w; x++ {
				r, g, bb := color.CMYKToRGB(s[4*x], s[4*x+1], s[4*x+2], s[4*x+3])
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = r, g, bb, 0xff
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			o := src.PixOffset(b.Min.X, b.Min.Y+y)
			s := src.Pix[o : o+4*w]
			d := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
			for x := 0; x < w; x++ {
				a := uint32(s[4*x+3])
				for c := 0; c < 3; c++ {
					// straight alpha over white: c*a + 255*(1-a), rounded
					d[4*x+c] = uint8((uint32(s[4*x+c])*a + 255*(255-a) + 127) / 255)
				}
				d[4*x+3] = 0xff
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			o := src.PixOffset(b.Min.X, b.Min.Y+y)
			s := src.Pix[o : o+4*w]
			d := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
			for x := 0; x < w; x++ {
				// premultiplied alpha over white: c + 255 - a (saturated, in case c > a)
				add := 255 - uint32(s[4*x+3])
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = sat8(uint32(s[4*x])+add), sat8(uint32(s[4*x+1])+add), sat8(uint32(s[4*x+2])+add), 0xff
			}
		}
	default:
		for y := 0; y < h; y++ {
			d := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
			for x := 0; x < w; x++ {
				r, g, bb, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA() // 16-bit premultiplied
				add := 0xffff - a
				d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = sat8((r+add)>>8), sat8((g+add)>>8), sat8((bb+add)>>8), 0xff
			}
		}
	}
	return dst
}

func sat8(v uint32) uint8 {
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// kernel is the one fixed resampling kernel: bilinear whose support widens when shrinking, so
// downscaling is anti-aliased like Pillow's (and torchvision's) BILINEAR resize.
var kernel = draw.BiLinear

// Resize squashes img to size×size (aspect ratio not kept) with golang.org/x/image/draw's
// BiLinear kernel, after converting it with ToRGB. Resize(ToRGB(img)) == Resize(img).
func Resize(img image.Image, size int) *image.RGBA {
	return resize(img, size, kernel)
}

func resize(img image.Image, size int, scaler draw.Scaler) *image.RGBA {
	src, ok := img.(*image.RGBA)
	if !ok || !opaqueOrigin(src) {
		src = ToRGB(img)
	}
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	scaler.Scale(dst, dst.Rect, src, src.Rect, draw.Src, nil)
	return dst
}

// opaqueOrigin reports whether m is already what ToRGB returns: origin at (0,0), every alpha 255.
func opaqueOrigin(m *image.RGBA) bool {
	if m.Rect.Min != (image.Point{}) {
		return false
	}
	w := m.Rect.Dx()
	for y := 0; y < m.Rect.Dy(); y++ {
		row := m.Pix[y*m.Stride : y*m.Stride+4*w]
		for i := 3; i < len(row); i += 4 {
			if row[i] != 0xff {
				return false
			}
		}
	}
	return true
}

// packRGB writes the pixels of an opaque RGBA image as tightly packed HWC RGB bytes (the layout of
// the cached .u8 files and of Spec.Normalize's input) into dst, growing it if needed, and returns it.
func packRGB(img *image.RGBA, dst []byte) []byte {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	n := w * h * 3
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	for y := 0; y < h; y++ {
		s := img.Pix[y*img.Stride : y*img.Stride+4*w]
		d := dst[y*w*3 : (y+1)*w*3]
		for x := 0; x < w; x++ {
			d[3*x], d[3*x+1], d[3*x+2] = s[4*x], s[4*x+1], s[4*x+2]
		}
	}
	return dst
}

// Spec is the model input: a Size×Size RGB image normalised per channel as (v/255 - Mean)/Std.
type Spec struct {
	Size int
	Mean [3]float32
	Std  [3]float32
}

// DefaultSpec returns size 224 with the ImageNet mean and standard deviation.
func DefaultSpec() Spec {
	return Spec{
		Size: 224,
		Mean: [3]float32{0.485, 0.456, 0.406},
		Std:  [3]float32{0.229, 0.224, 0.225},
	}
}

// ErrBadSpec is returned by Preprocess for a Spec with a non-positive size or standard deviation.
var ErrBadSpec = errors.New("imageprep: invalid spec")

func (s Spec) validate() error {
	if s.Size <= 0 || s.Size > 4096 {
		return fmt.Errorf("%w: size %d (want 1..4096)", ErrBadSpec, s.Size)
	}
	for c, v := range s.Std {
		if !(v > 0) {
			return fmt.Errorf("%w: std[%d] = %v", ErrBadSpec, c, v)
		}
	}
	return nil
}

// lut returns, per channel, the normalised value of every byte value.
func (s Spec) lut() *[3][256]float32 {
	var t [3][256]float32
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			t[c][v] = (float32(v)/255 - s.Mean[c]) / s.Std[c]
		}
	}
	return &t
}

// Normalize converts rgb (S*S*3 bytes, HWC) into dst (3*S*S floats, CHW), each value becoming
// (v/255 - Mean[c]) / Std[c]. The pixel count is len(rgb)/3; dst must hold 3 times that.
func (s Spec) Normalize(rgb []byte, dst []float32) {
	n := len(rgb) / 3
	if len(dst) < 3*n {
		panic(fmt.Sprintf("imageprep: Normalize: dst holds %d floats, need %d", len(dst), 3*n))
	}
	t := s.lut()
	r, g, b := dst[:n], dst[n:2*n], dst[2*n:3*n]
	for i := 0; i < n; i++ {
		p := rgb[3*i : 3*i+3 : 3*i+3]
		r[i] = t[0][p[0]]
		g[i] = t[1][p[1]]
		b[i] = t[2][p[2]]
	}
}

// Preprocess is THE path shared by evaluation and serving (and, through DecodeResized, by
// Prepare): read at most lim.MaxBytes+1 bytes, DecodeResized to s.Size, Normalize. It returns
// 3*Size*Size floats in CHW order. Bad inputs return a *DecodeError.
func (s Spec) Preprocess(r io.Reader, lim Limits) ([]float32, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	lim = lim.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, &DecodeError{Reason: ReasonUnreadable, Err: err}
	}
	rgb, _, err := DecodeResized(data, s.Size, lim, nil)
	if err != nil {
		return nil, err
	}
	out := make([]float32, 3*s.Size*s.Size)
	s.Normalize(rgb, out)
	return out, nil
}
