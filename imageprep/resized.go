package imageprep

import (
	"sync"

	"github.com/catdog-mlops/catdog/imageprep/internal/turbojpeg"
)

// decoders recycles libjpeg-turbo decoders (a handle and working memory each) between
// decodeResizedJPEG calls, like fmt's printer cache; a dropped decoder frees its C memory.
var decoders = sync.Pool{New: func() any {
	d, err := turbojpeg.NewDecoder()
	if err != nil {
		return nil
	}
	return d
}}

// Source describes the image DecodeResized decoded.
type Source struct {
	Format        string // "jpeg" or "png"
	Width, Height int
}

// DecodeResized is the one preprocessing path of `catdog prepare`, evaluation and serving: it
// checks data against lim (size, format, pixel count from the header), decodes it and squashes
// it to size×size, returning size*size*3 packed RGB bytes (HWC) in dst (grown if needed).
// Every failure is a *DecodeError.
//
// Colour and grayscale JPEGs — nearly every photo — take one C call (internal/turbojpeg):
// libjpeg-turbo decodes them into Y, Cb and Cr planes, in the DCT domain at the smallest of the
// scales 1/8, 1/4, 1/2 and 1 that still covers size×size; every plane is resized to size×size
// with an anti-aliased bilinear filter (SSE2 on x86-64); and libjpeg-turbo converts the result
// to RGB. PNGs, CMYK JPEGs and JPEGs libjpeg-turbo reports as damaged go through the standard
// library decoders, ToRGB and Resize, so a damaged file is rejected (or accepted) with the
// same reason as before.
func DecodeResized(data []byte, size int, lim Limits, dst []byte) ([]byte, Source, error) {
	d, _ := decoders.Get().(*turbojpeg.Decoder)
	if d != nil {
		defer decoders.Put(d)
	}
	return decodeResized(d, data, size, lim, dst)
}

// decodeResized is DecodeResized with the libjpeg-turbo decoder d (nil: none could be had, so
// every JPEG takes the standard path). Its result depends only on its arguments, not on what
// d decoded before (tests compare it against a new decoder's).
func decodeResized(d *turbojpeg.Decoder, data []byte, size int, lim Limits, dst []byte) ([]byte, Source, error) {
	cfg, format, err := DecodeConfigBytes(data, lim)
	src := Source{Format: format, Width: cfg.Width, Height: cfg.Height}
	if err != nil {
		return nil, src, err
	}
	if format == "jpeg" && d != nil {
		if out, ok := decodeResizedJPEG(d, data, src, size, dst); ok {
			return out, src, nil
		}
	}
	img, _, err := DecodeBytes(data, lim)
	if err != nil {
		return nil, src, err
	}
	return packRGB(Resize(img, size), dst), src, nil
}

// decodeResizedJPEG is the libjpeg-turbo path; ok is false when the standard decoder must
// decide instead (an unusual colour space, a header the two decoders disagree on, damage).
func decodeResizedJPEG(d *turbojpeg.Decoder, data []byte, src Source, size int, dst []byte) ([]byte, bool) {
	hd, err := d.Header(data)
	if err != nil || !hd.Planar() || hd.Width != src.Width || hd.Height != src.Height {
		return nil, false
	}
	if cap(dst) < 3*size*size {
		dst = make([]byte, 3*size*size)
	}
	dst = dst[:3*size*size]
	w, h := hd.ScaledSize(size, size)
	if err := d.DecodeResized(data, hd, w, h, size, dst); err != nil {
		return nil, false
	}
	return dst, true
}
