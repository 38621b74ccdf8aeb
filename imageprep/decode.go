package imageprep

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"strings"
)

// Limits bounds what Decode accepts.
type Limits struct {
	// MaxBytes is the largest encoded size accepted. The default is 10 MiB.
	MaxBytes int64
	// MaxPixels is the largest width×height accepted, checked from the header before the full
	// decode. The default is 40,000,000.
	MaxPixels int64
}

// DefaultLimits returns MaxBytes 10 MiB and MaxPixels 40e6.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 10 << 20, MaxPixels: 40_000_000}
}

// withDefaults fills zero or negative fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = d.MaxPixels
	}
	return l
}

// Reason says why an input was rejected. The values are stable: they appear in reports and
// rejected.csv.
type Reason string

// Reasons for rejecting a file.
const (
	ReasonEmpty             Reason = "empty"              // zero bytes
	ReasonUnknownFormat     Reason = "unknown-format"     // not an image format we recognise
	ReasonTruncated         Reason = "truncated"          // the data ends early
	ReasonCorrupt           Reason = "corrupt"            // invalid image data
	ReasonTooManyBytes      Reason = "too-many-bytes"     // larger than Limits.MaxBytes
	ReasonTooManyPixels     Reason = "too-many-pixels"    // header claims more than Limits.MaxPixels
	ReasonUnsupportedFormat Reason = "unsupported-format" // a known image format other than JPEG/PNG, or an unsupported JPEG/PNG feature
	ReasonUnreadable        Reason = "unreadable"         // the file could not be read (I/O error)
	ReasonUnlabelled        Reason = "unlabelled"         // Prepare: the path names no class
)

// DecodeError is returned by Decode and Preprocess for any input that cannot be used.
// Callers branch on Reason with errors.As.
type DecodeError struct {
	Reason Reason
	Err    error
}

var _ error = (*DecodeError)(nil)

// Error implements error: "<reason>: <detail>".
func (e *DecodeError) Error() string {
	if e.Err == nil {
		return string(e.Reason)
	}
	return string(e.Reason) + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *DecodeError) Unwrap() error { return e.Err }

func decodeErr(r Reason, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: r, Err: fmt.Errorf(format, args...)}
}

// Decode reads one JPEG or PNG image from r, reading at most lim.MaxBytes+1 bytes and checking
// the header's pixel count against lim.MaxPixels before the full decode. format is "jpeg" or
// "png". Zero fields of lim take their DefaultLimits value. Every failure is a *DecodeError.
func Decode(r io.Reader, lim Limits) (img image.Image, format string, err error) {
	lim = lim.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, "", &DecodeError{Reason: ReasonUnreadable, Err: err}
	}
	return DecodeBytes(data, lim)
}

// DecodeBytes is Decode over an in-memory encoding.
func DecodeBytes(data []byte, lim Limits) (img image.Image, format string, err error) {
	lim = lim.withDefaults()
	cfg, format, err := DecodeConfigBytes(data, lim)
	if err != nil {
		return nil, format, err
	}
	defer func() {
		// The standard decoders are not expected to panic; if one ever does on hostile input,
		// it is a corrupt file, not a crash.
		if p := recover(); p != nil {
			img, err = nil, decodeErr(ReasonCorrupt, "%s decoder panic: %v", format, p)
		}
	}()
	switch format {
	case "jpeg":
		img, err = jpeg.Decode(bytes.NewReader(data))
	case "png":
		img, err = png.Decode(bytes.NewReader(data))
	}
	if err != nil {
		return nil, format, classify(format, err)
	}
	if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return nil, format, decodeErr(ReasonCorrupt, "%s decoded to %dx%d, header said %dx%d", format, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	return img, format, nil
}

// DecodeConfigBytes checks data against lim and reads only the image header. It returns the
// dimensions and format ("jpeg" or "png") or a *DecodeError.
func DecodeConfigBytes(data []byte, lim Limits) (image.Config, string, error) {
	lim = lim.withDefaults()
	if len(data) == 0 {
		return image.Config{}, "", decodeErr(ReasonEmpty, "zero bytes")
	}
	if int64(len(data)) > lim.MaxBytes {
		return image.Config{}, "", decodeErr(ReasonTooManyBytes, "more than %d bytes", lim.MaxBytes)
	}
	format := sniff(data)
	var (
		cfg image.Config
		err error
	)
	switch format {
	case "jpeg":
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	case "png":
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	case "":
		return image.Config{}, "", decodeErr(ReasonUnknownFormat, "not a JPEG or PNG (first bytes %q)", head(data))
	default:
		return image.Config{}, format, decodeErr(ReasonUnsupportedFormat, "%s images are not supported (JPEG and PNG only)", format)
	}
	if err != nil {
		return image.Config{}, format, classify(format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return image.Config{}, format, decodeErr(ReasonCorrupt, "%s header says %dx%d", format, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > lim.MaxPixels {
		return image.Config{}, format, decodeErr(ReasonTooManyPixels, "%s header says %dx%d = %d pixels, limit %d", format, cfg.Width, cfg.Height, px, lim.MaxPixels)
	}
	return cfg, format, nil
}

// classify maps a decoder error to a *DecodeError.
func classify(format string, err error) *DecodeError {
	var (
		jf jpeg.FormatError
		ju jpeg.UnsupportedError
		pf png.FormatError
		pu png.UnsupportedError
	)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &DecodeError{Reason: ReasonTruncated, Err: fmt.Errorf("%s data ends early: %w", format, err)}
	case errors.As(err, &ju), errors.As(err, &pu):
		return &DecodeError{Reason: ReasonUnsupportedFormat, Err: prefixed(format, err)}
	case errors.As(err, &jf), errors.As(err, &pf):
		return &DecodeError{Reason: ReasonCorrupt, Err: prefixed(format, err)}
	default:
		return &DecodeError{Reason: ReasonCorrupt, Err: prefixed(format, err)}
	}
}

// prefixed names the format in err's message unless the decoder already did ("png: ...").
func prefixed(format string, err error) error {
	if strings.HasPrefix(err.Error(), format+":") {
		return err
	}
	return fmt.Errorf("%s: %w", format, err)
}

// sniff names the format from the magic bytes: "jpeg", "png", another known image format
// (unsupported), or "" when unknown.
func sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\xff\xd8")):
		return "jpeg"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return "gif"
	case len(b) >= 14 && bytes.HasPrefix(b, []byte("BM")) && bytes.Equal(b[6:10], []byte{0, 0, 0, 0}):
		return "bmp"
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return "webp"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "tiff"
	case len(b) >= 12 && bytes.Equal(b[4:8], []byte("ftyp")):
		return "heif/avif/mp4"
	}
	return ""
}

func head(b []byte) []byte {
	if len(b) > 8 {
		return b[:8]
	}
	return b
}
