// Package jpegtest encodes JPEGs with libjpeg-turbo for tests, in every chroma subsampling a
// JPEG can have (Go's image/jpeg writes only 4:2:0 colour and grayscale). Only tests import it.
package jpegtest

/*
#cgo LDFLAGS: -l:libturbojpeg.a
#include <stdlib.h>
#include <turbojpeg.h>

static int encode(const unsigned char *rgb, int w, int h, int subsamp, int quality, unsigned char **out, unsigned long *size) {
	tjhandle tj = tjInitCompress();
	if (tj == NULL) {
		return -1;
	}
	int rc = tjCompress2(tj, rgb, w, w * 3, h, TJPF_RGB, out, size, subsamp, quality, 0);
	tjDestroy(tj);
	return rc;
}
*/
import "C"

import (
	"fmt"
	"image"
	"unsafe"
)

// Subsampling is a JPEG chroma subsampling.
type Subsampling int

// The subsamplings libjpeg-turbo can write (TJSAMP_*).
const (
	S444 Subsampling = C.TJSAMP_444
	S422 Subsampling = C.TJSAMP_422
	S420 Subsampling = C.TJSAMP_420
	Gray Subsampling = C.TJSAMP_GRAY
	S440 Subsampling = C.TJSAMP_440
	S411 Subsampling = C.TJSAMP_411
)

// All returns every subsampling, for table-driven tests.
func All() []Subsampling { return []Subsampling{S444, S422, S420, Gray, S440, S411} }

func (s Subsampling) String() string {
	switch s {
	case S444:
		return "4:4:4"
	case S422:
		return "4:2:2"
	case S420:
		return "4:2:0"
	case Gray:
		return "gray"
	case S440:
		return "4:4:0"
	case S411:
		return "4:1:1"
	}
	return fmt.Sprintf("subsampling(%d)", int(s))
}

// Encode compresses img with subsampling s at quality 1..100.
func Encode(img *image.RGBA, s Subsampling, quality int) ([]byte, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("jpegtest: empty image")
	}
	rgb := make([]byte, 0, w*h*3)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := img.RGBAAt(x, y)
			rgb = append(rgb, c.R, c.G, c.B)
		}
	}
	var out *C.uchar
	var size C.ulong
	if C.encode((*C.uchar)(unsafe.Pointer(&rgb[0])), C.int(w), C.int(h), C.int(s), C.int(quality), &out, &size) != 0 {
		if out != nil {
			C.tjFree(out)
		}
		return nil, fmt.Errorf("jpegtest: libjpeg-turbo could not encode a %dx%d %v JPEG", w, h, s)
	}
	defer C.tjFree(out)
	return C.GoBytes(unsafe.Pointer(out), C.int(size)), nil
}
