// Package turbojpeg decodes JPEG images with libjpeg-turbo's TurboJPEG API into Y, Cb and Cr
// planes and converts planes back to RGB. It links the static library of the Debian package
// libturbojpeg0-dev, so binaries need no extra shared library at run time.
//
// Decoding to planes skips libjpeg's chroma upsampling and colour conversion, and a photo
// larger than the size it will be resized to is decoded directly at a reduced scale M/8 (the
// smallest that is still at least that size), which leaves the resampler far fewer pixels.
// After resizing, Subsampling.ToRGB upsamples the chroma and converts to RGB with
// libjpeg-turbo's SIMD code.
//
// libjpeg-turbo is the decoder Pillow, browsers and most image pipelines run on untrusted
// input; it is continuously fuzzed by OSS-Fuzz. Callers still bound the input size and check
// the header's pixel count before decoding.
package turbojpeg

/*
#cgo LDFLAGS: -l:libturbojpeg.a
#include <stdio.h>
#include <stdlib.h>
#include <turbojpeg.h>

static int decode_header(const unsigned char *buf, unsigned long size, int *w, int *h, int *subsamp, int *cs, char *msg, int msglen) {
	tjhandle hd = tjInitDecompress();
	if (hd == NULL) {
		snprintf(msg, msglen, "%s", tjGetErrorStr2(NULL));
		return -1;
	}
	int rc = tjDecompressHeader3(hd, buf, size, w, h, subsamp, cs);
	if (rc != 0) {
		snprintf(msg, msglen, "%s", tjGetErrorStr2(hd));
	}
	tjDestroy(hd);
	return rc;
}

// decode_planes decompresses buf at the scaled size w×h into planes y, cb, cr (cb and cr are
// unused for grayscale). It returns 0 on success, 1 when libjpeg-turbo warned (damaged data
// it decoded past, e.g. a truncated file) and -1 for a fatal error; msg gets the text.
static int decode_planes(const unsigned char *buf, unsigned long size, unsigned char *y, unsigned char *cb, unsigned char *cr, int w, int h, char *msg, int msglen) {
	tjhandle hd = tjInitDecompress();
	if (hd == NULL) {
		snprintf(msg, msglen, "%s", tjGetErrorStr2(NULL));
		return -1;
	}
	unsigned char *planes[3] = {y, cb, cr};
	int rc = tjDecompressToYUVPlanes(hd, buf, size, planes, w, NULL, h, 0);
	if (rc != 0) {
		snprintf(msg, msglen, "%s", tjGetErrorStr2(hd));
		rc = tjGetErrorCode(hd) == TJERR_WARNING ? 1 : -1;
	}
	tjDestroy(hd);
	return rc;
}

// planes_to_rgb converts planes (strides ys, cs) with subsampling subsamp to packed RGB w×h.
static int planes_to_rgb(const unsigned char *y, const unsigned char *cb, const unsigned char *cr, int ys, int cs, int subsamp, unsigned char *dst, int w, int h, char *msg, int msglen) {
	tjhandle hd = tjInitDecompress();
	if (hd == NULL) {
		snprintf(msg, msglen, "%s", tjGetErrorStr2(NULL));
		return -1;
	}
	const unsigned char *planes[3] = {y, cb, cr};
	int strides[3] = {ys, cs, cs};
	int rc = tjDecodeYUVPlanes(hd, planes, strides, subsamp, dst, w, w * 3, h, TJPF_RGB, 0);
	if (rc != 0) {
		snprintf(msg, msglen, "%s", tjGetErrorStr2(hd));
	}
	tjDestroy(hd);
	return rc;
}

static int mcu_width(int subsamp) { return tjMCUWidth[subsamp]; }
static int mcu_height(int subsamp) { return tjMCUHeight[subsamp]; }
*/
import "C"

import (
	"fmt"
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

const msgLen = 256

// DecodeHeader reads the dimensions, colour space and chroma subsampling from a JPEG's header.
func DecodeHeader(jpeg []byte) (Header, error) {
	if len(jpeg) == 0 {
		return Header{}, &Error{Msg: "empty input"}
	}
	var w, h, subsamp, cs C.int
	msg := (*C.char)(C.malloc(msgLen))
	defer C.free(unsafe.Pointer(msg))
	if C.decode_header((*C.uchar)(unsafe.Pointer(&jpeg[0])), C.ulong(len(jpeg)), &w, &h, &subsamp, &cs, msg, msgLen) != 0 {
		return Header{}, &Error{Msg: C.GoString(msg)}
	}
	if w <= 0 || h <= 0 {
		return Header{}, &Error{Msg: fmt.Sprintf("header gives no image size (%dx%d)", w, h)}
	}
	if subsamp < 0 || subsamp >= C.TJ_NUMSAMP {
		return Header{}, &Error{Msg: fmt.Sprintf("unknown chroma subsampling %d", subsamp)}
	}
	return Header{Width: int(w), Height: int(h), Colorspace: Colorspace(cs), subsamp: subsamp}, nil
}

// Planar reports whether DecodePlanes can decode this JPEG: YCbCr or grayscale pixels (not
// CMYK, YCCK or RGB-encoded JPEGs).
func (h Header) Planar() bool {
	return h.Colorspace == YCbCr || h.Colorspace == Gray
}

// ScaledSize returns the smallest size among libjpeg-turbo's DCT scaling factors M/8
// (M = 1..8) of the image that is still at least minW×minH, or the full size.
func (h Header) ScaledSize(minW, minH int) (int, int) {
	for m := 1; m < 8; m++ {
		sw, sh := (h.Width*m+7)/8, (h.Height*m+7)/8
		if sw >= minW && sh >= minH {
			return sw, sh
		}
	}
	return h.Width, h.Height
}

// Planes is a decoded image: full-resolution luma and (for colour images) subsampled chroma.
type Planes struct {
	Width, Height int    // the image size (the luma plane may be padded beyond it)
	Y             []byte // luma, YStride bytes per row
	YStride       int
	Cb, Cr        []byte // chroma, CStride bytes per row; nil for a grayscale image
	CStride       int
	CHeight       int // chroma rows
	HSub, VSub    int // chroma subsampling factors: one chroma sample per HSub×VSub luma pixels
	Subsampling   Subsampling
	buf           []byte
}

// Subsampling is a JPEG chroma subsampling (TJSAMP_*).
type Subsampling struct{ v C.int }

// PlaneSize returns the width and height TurboJPEG gives plane component (0 = Y, 1 and 2 =
// chroma) of a w×h image with subsampling s (the luma plane is padded to whole chroma samples).
func (s Subsampling) PlaneSize(component, w, h int) (int, int) {
	return int(C.tjPlaneWidth(C.int(component), C.int(w), s.v)), int(C.tjPlaneHeight(C.int(component), C.int(h), s.v))
}

// ToRGB converts w×h planes with this subsampling — y (stride ys) and cb, cr (stride cs, nil
// for grayscale) sized as PlaneSize says — to packed RGB in dst (w*h*3 bytes), with
// libjpeg-turbo's SIMD chroma upsampling and colour conversion.
func (s Subsampling) ToRGB(dst []byte, w, h int, y []byte, ys int, cb, cr []byte, cs int) error {
	pw, ph := s.PlaneSize(0, w, h)
	if len(dst) < w*h*3 || len(y) < (ph-1)*ys+pw || ys < pw {
		return fmt.Errorf("turbojpeg: ToRGB: buffers too small for %dx%d", w, h)
	}
	var pcb, pcr *C.uchar
	if s.v != C.TJSAMP_GRAY {
		cw, ch := s.PlaneSize(1, w, h)
		if cs < cw || len(cb) < (ch-1)*cs+cw || len(cr) < (ch-1)*cs+cw {
			return fmt.Errorf("turbojpeg: ToRGB: chroma planes too small for %dx%d", w, h)
		}
		pcb, pcr = (*C.uchar)(unsafe.Pointer(&cb[0])), (*C.uchar)(unsafe.Pointer(&cr[0]))
	}
	msg := (*C.char)(C.malloc(msgLen))
	defer C.free(unsafe.Pointer(msg))
	if C.planes_to_rgb((*C.uchar)(unsafe.Pointer(&y[0])), pcb, pcr, C.int(ys), C.int(cs), s.v, (*C.uchar)(unsafe.Pointer(&dst[0])), C.int(w), C.int(h), msg, msgLen) != 0 {
		return &Error{Msg: C.GoString(msg)}
	}
	return nil
}

// Buf returns the memory the planes live in, for the next DecodePlanes call to reuse.
func (p *Planes) Buf() []byte { return p.buf }

// DecodePlanes decodes jpeg (whose header is h) at the scaled size w×h from ScaledSize. The
// planes are carved out of buf when it is large enough (it is grown otherwise); Planes.Buf
// returns it for reuse.
func DecodePlanes(jpeg []byte, hd Header, w, h int, buf []byte) (*Planes, error) {
	if len(jpeg) == 0 {
		return nil, &Error{Msg: "empty input"}
	}
	if !hd.Planar() {
		return nil, fmt.Errorf("turbojpeg: colour space %d cannot be decoded to YCbCr planes", hd.Colorspace)
	}
	if w <= 0 || h <= 0 || w > hd.Width || h > hd.Height {
		return nil, fmt.Errorf("turbojpeg: cannot decode a %dx%d JPEG at %dx%d", hd.Width, hd.Height, w, h)
	}
	p := &Planes{Width: w, Height: h, HSub: int(C.mcu_width(hd.subsamp)) / 8, VSub: int(C.mcu_height(hd.subsamp)) / 8, Subsampling: Subsampling{hd.subsamp}}
	p.YStride = int(C.tjPlaneWidth(0, C.int(w), hd.subsamp))
	yRows := int(C.tjPlaneHeight(0, C.int(h), hd.subsamp))
	ySize, cSize := p.YStride*yRows, 0
	if hd.Colorspace != Gray {
		p.CStride = int(C.tjPlaneWidth(1, C.int(w), hd.subsamp))
		p.CHeight = int(C.tjPlaneHeight(1, C.int(h), hd.subsamp))
		cSize = p.CStride * p.CHeight
		if p.CStride <= 0 || p.CHeight <= 0 {
			return nil, fmt.Errorf("turbojpeg: no chroma plane size for a %dx%d image", w, h)
		}
	}
	if p.YStride <= 0 || yRows <= 0 {
		return nil, fmt.Errorf("turbojpeg: no luma plane size for a %dx%d image", w, h)
	}
	if cap(buf) < ySize+2*cSize {
		buf = make([]byte, ySize+2*cSize)
	}
	p.buf = buf[:ySize+2*cSize]
	p.Y = p.buf[:ySize:ySize]
	var cb, cr *C.uchar
	if cSize > 0 {
		p.Cb, p.Cr = p.buf[ySize:ySize+cSize:ySize+cSize], p.buf[ySize+cSize:]
		cb, cr = (*C.uchar)(unsafe.Pointer(&p.Cb[0])), (*C.uchar)(unsafe.Pointer(&p.Cr[0]))
	}
	msg := (*C.char)(C.malloc(msgLen))
	defer C.free(unsafe.Pointer(msg))
	rc := C.decode_planes((*C.uchar)(unsafe.Pointer(&jpeg[0])), C.ulong(len(jpeg)), (*C.uchar)(unsafe.Pointer(&p.Y[0])), cb, cr, C.int(w), C.int(h), msg, msgLen)
	if rc != 0 {
		return nil, &Error{Msg: C.GoString(msg), Warning: rc == 1}
	}
	return p, nil
}
