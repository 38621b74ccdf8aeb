package imageprep

import (
	"sync"

	"github.com/catdog-mlops/catdog/imageprep/internal/turbojpeg"
)

// scratch is the working memory of one decodeResizedJPEG call, recycled through scratchPool
// (a sync.Pool, like fmt's printer cache): decoded planes, resized planes, the resampler's
// intermediate rows, and the filter taps of recently seen sizes.
type scratch struct {
	planes  []byte
	resized []byte
	mid     []int32
	taps    map[tapsKey]taps
}

var scratchPool = sync.Pool{New: func() any { return &scratch{taps: make(map[tapsKey]taps)} }}

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
// Colour and grayscale JPEGs — nearly every photo — are decoded by libjpeg-turbo into YCbCr
// planes, in the DCT domain at the smallest scale M/8 that still covers size×size, the planes
// are resized with an anti-aliased bilinear filter, and libjpeg-turbo converts the size×size
// result to RGB. PNGs, CMYK JPEGs and JPEGs libjpeg-turbo reports as
// damaged go through the standard library decoders, ToRGB and Resize, so a damaged file is
// rejected (or accepted) with the same reason as before.
func DecodeResized(data []byte, size int, lim Limits, dst []byte) ([]byte, Source, error) {
	cfg, format, err := DecodeConfigBytes(data, lim)
	src := Source{Format: format, Width: cfg.Width, Height: cfg.Height}
	if err != nil {
		return nil, src, err
	}
	if format == "jpeg" {
		if out, ok := decodeResizedJPEG(data, src, size, dst); ok {
			return out, src, nil
		}
	}
	img, _, err := DecodeBytes(data, lim)
	if err != nil {
		return nil, src, err
	}
	return PackRGB(Resize(img, size), dst), src, nil
}

// decodeResizedJPEG is the libjpeg-turbo path; ok is false when the standard decoder must
// decide instead (an unusual colour space, a header the two decoders disagree on, damage).
func decodeResizedJPEG(data []byte, src Source, size int, dst []byte) ([]byte, bool) {
	hd, err := turbojpeg.DecodeHeader(data)
	if err != nil || !hd.Planar() || hd.Width != src.Width || hd.Height != src.Height {
		return nil, false
	}
	w, h := hd.ScaledSize(size, size)
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	p, err := turbojpeg.DecodePlanes(data, hd, w, h, sc.planes)
	if err != nil {
		return nil, false
	}
	sc.planes = p.Buf()
	if cap(dst) < 3*size*size {
		dst = make([]byte, 3*size*size)
	}
	dst = dst[:3*size*size]
	// Resize each plane to its size in a size×size image with the photo's subsampling (chroma
	// stays subsampled, as in the JPEG), then let libjpeg-turbo upsample and convert to RGB.
	sub := p.Subsampling
	yw, yh := sub.PlaneSize(0, size, size)
	cw, ch := 0, 0
	if p.Cb != nil {
		cw, ch = sub.PlaneSize(1, size, size)
	}
	if need := yw*yh + 2*cw*ch; cap(sc.resized) < need {
		sc.resized = make([]byte, need)
	}
	y := sc.resized[:yw*yh]
	// Source planes are read only within the image (TurboJPEG pads them to whole MCUs).
	sc.resizePlane(y, yw, yh, p.Y, p.YStride, p.Width, p.Height, float64(p.Width)*float64(yw)/float64(size), float64(p.Height)*float64(yh)/float64(size))
	var cb, cr []byte
	if p.Cb != nil {
		cb, cr = sc.resized[yw*yh:yw*yh+cw*ch], sc.resized[yw*yh+cw*ch:yw*yh+2*cw*ch]
		ew, eh := float64(p.Width)/float64(p.HSub), float64(p.Height)/float64(p.VSub)
		// The chroma plane of the output spans size/HSub samples (cw may be padded beyond it).
		ew *= float64(cw*p.HSub) / float64(size)
		eh *= float64(ch*p.VSub) / float64(size)
		sw, sh := (p.Width+p.HSub-1)/p.HSub, (p.Height+p.VSub-1)/p.VSub
		sc.resizePlane(cb, cw, ch, p.Cb, p.CStride, sw, sh, ew, eh)
		sc.resizePlane(cr, cw, ch, p.Cr, p.CStride, sw, sh, ew, eh)
	}
	if err := sub.ToRGB(dst, size, size, y, yw, cb, cr, cw); err != nil {
		return nil, false
	}
	return dst, true
}
