// Package turbojpeg decodes JPEG images with libjpeg-turbo's TurboJPEG API and resizes them,
// in one C call per image. It links the static library of the Debian package
// libturbojpeg0-dev, so binaries need no extra shared library at run time.
//
// A Decoder decodes a JPEG into Y, Cb and Cr planes — skipping libjpeg's chroma upsampling
// and colour conversion — directly at a reduced DCT scale (Header.ScaledSize: the smallest of
// 1/8, 1/4 and 1/2 that still covers the output), resizes every plane to the output size with
// an anti-aliased bilinear (triangle) filter in fixed point (SSE2 on x86-64, resize.c), and
// lets libjpeg-turbo's SIMD code convert the result to RGB.
//
// libjpeg-turbo is the decoder Pillow, browsers and most image pipelines run on untrusted
// input; it is continuously fuzzed by OSS-Fuzz. Callers still bound the input size and check
// the header's pixel count before decoding.
package turbojpeg

/*
#cgo LDFLAGS: -l:libturbojpeg.a -lm
#include <stdlib.h>
#include <turbojpeg.h>
#include "resize.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Colorspace is the colour space of a JPEG's pixels.
type Colorspace int

// The colour spaces a JPEG can hold (TJCS_*).
const (
	RGB   Colorspace = C.TJCS_RGB
	YCbCr Colorspace = C.TJCS_YCbCr
	Gray  Colorspace = C.TJCS_GRAY
	CMYK  Colorspace = C.TJCS_CMYK
	YCCK  Colorspace = C.TJCS_YCCK
)

// Header is what a JPEG's header says about the image.
type Header struct {
	Width, Height int
	Colorspace    Colorspace
	subsamp       C.int
}

// Error is a failure reported by libjpeg-turbo. Warning is true for damage the library could
// decode past (a truncated file, a corrupt entropy segment).
type Error struct {
	Msg     string
	Warning bool
}

func (e *Error) Error() string {
	if e.Warning {
		return "libjpeg-turbo warning: " + e.Msg
	}
	return "libjpeg-turbo: " + e.Msg
}

// Decoder decodes and resizes JPEGs. It holds a TurboJPEG handle and working memory that
// grow to the largest image seen and are reused (a call that fails replaces the handle, so a
// damaged file cannot change how the next one decodes); a Decoder is not safe for concurrent use
// (keep one per goroutine, or in a sync.Pool). Its C memory is freed by Close, or by a
// cleanup when the Decoder becomes unreachable; every method keeps d alive (runtime.KeepAlive)
// until its C call returns.
type Decoder struct {
	c       *C.cd_decoder
	cleanup runtime.Cleanup
}

// NewDecoder returns a Decoder, or an error when libjpeg-turbo cannot allocate one.
func NewDecoder() (*Decoder, error) {
	c := C.cd_new()
	if c == nil {
		return nil, &Error{Msg: "cannot create a decoder (out of memory)"}
	}
	d := &Decoder{c: c}
	d.cleanup = runtime.AddCleanup(d, func(c *C.cd_decoder) { C.cd_free(c) }, c)
	return d, nil
}

// Close frees the decoder's C memory; the Decoder must not be used afterwards.
func (d *Decoder) Close() {
	if d.c != nil {
		d.cleanup.Stop()
		C.cd_free(d.c)
		d.c = nil
	}
}

// setScalar makes d resample with the portable loops instead of SSE2 (for tests).
func (d *Decoder) setScalar(on bool) {
	v := C.int(0)
	if on {
		v = 1
	}
	C.cd_set_scalar(d.c, v)
	runtime.KeepAlive(d)
}

// err is the *Error for the failure code rc of the last call.
func (d *Decoder) err(rc C.int) error {
	return &Error{Msg: C.GoString(C.cd_message(d.c)), Warning: rc == C.CD_WARNING}
}

// Header reads the dimensions, colour space and chroma subsampling from a JPEG's header.
func (d *Decoder) Header(jpeg []byte) (Header, error) {
	defer runtime.KeepAlive(d) // the cleanup must not free d.c during the C call
	if len(jpeg) == 0 {
		return Header{}, &Error{Msg: "empty input"}
	}
	var w, h, subsamp, cs C.int
	rc := C.cd_header(d.c, (*C.uchar)(unsafe.Pointer(&jpeg[0])), C.ulong(len(jpeg)), &w, &h, &subsamp, &cs)
	if rc != C.CD_OK {
		return Header{}, d.err(rc)
	}
	if w <= 0 || h <= 0 {
		return Header{}, &Error{Msg: fmt.Sprintf("header gives no image size (%dx%d)", w, h)}
	}
	if subsamp < 0 || subsamp >= C.TJ_NUMSAMP {
		return Header{}, &Error{Msg: fmt.Sprintf("unknown chroma subsampling %d", subsamp)}
	}
	return Header{Width: int(w), Height: int(h), Colorspace: Colorspace(cs), subsamp: subsamp}, nil
}

// DecodeResized decodes jpeg, whose header is hd, at the DCT-scaled size w×h (from
// hd.ScaledSize), resizes it to size×size and writes size*size*3 packed RGB bytes (HWC) to
// dst. A damaged file libjpeg-turbo decoded past gives an *Error with Warning set, and dst is
// not written (callers decide with the standard decoder).
func (d *Decoder) DecodeResized(jpeg []byte, hd Header, w, h, size int, dst []byte) error {
	defer runtime.KeepAlive(d) // the cleanup must not free d.c during the C call
	if len(jpeg) == 0 {
		return &Error{Msg: "empty input"}
	}
	if !hd.Planar() {
		return fmt.Errorf("turbojpeg: colour space %d cannot be decoded to YCbCr planes", hd.Colorspace)
	}
	if w <= 0 || h <= 0 || w > hd.Width || h > hd.Height {
		return fmt.Errorf("turbojpeg: cannot decode a %dx%d JPEG at %dx%d", hd.Width, hd.Height, w, h)
	}
	if size <= 0 || len(dst) < size*size*3 {
		return fmt.Errorf("turbojpeg: destination of %d bytes is too small for %dx%d RGB", len(dst), size, size)
	}
	rc := C.cd_decode_resized(d.c, (*C.uchar)(unsafe.Pointer(&jpeg[0])), C.ulong(len(jpeg)), C.int(w), C.int(h), C.int(size), (*C.uchar)(unsafe.Pointer(&dst[0])))
	if rc != C.CD_OK {
		return d.err(rc)
	}
	return nil
}

// Planar reports whether a Decoder can decode this JPEG: YCbCr or grayscale pixels (not
// CMYK, YCCK or RGB-encoded JPEGs).
func (h Header) Planar() bool {
	return h.Colorspace == YCbCr || h.Colorspace == Gray
}

// ScaledSize returns the size to decode at: the smallest of the DCT scales 1/8, 1/4 and 1/2
// of the image that is still at least minW×minH, or the full size. These are the scales
// libjpeg-turbo has SIMD inverse DCTs for; the scales in between (3/8, 5/8, …) run plain C
// that costs more than resizing the larger image, and resizing from more pixels is also
// closer to resizing the full image. Scaled sizes under 8 pixels are never chosen:
// libjpeg-turbo 2.1 reads a byte past a buffer decoding a 4:1:1 JPEG to a 1-pixel-wide plane
// (found with go test -asan), and a photo that small gains nothing from scaling.
func (h Header) ScaledSize(minW, minH int) (int, int) {
	for _, m := range []int{1, 2, 4} {
		sw, sh := (h.Width*m+7)/8, (h.Height*m+7)/8
		if sw >= minW && sh >= minH && sw >= 8 && sh >= 8 {
			return sw, sh
		}
	}
	return h.Width, h.Height
}
