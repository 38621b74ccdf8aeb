package dvcfmt

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync"
)

// NewHash returns the hash dvc uses for an object: plain MD5 for DVC 3 outs, or the legacy
// md5-dos2unix of DVC 2 outs (legacy true). Feed it with Write; Sum gives the hex oid.
func NewHash(legacy bool) ObjectHash {
	if legacy {
		return &dos2unix{h: md5.New()}
	}
	return &plain{h: md5.New()}
}

// ObjectHash hashes an object's bytes as they stream by.
type ObjectHash interface {
	io.Writer
	// Sum returns the lowercase hex digest of everything written.
	Sum() string
}

type plain struct{ h hash.Hash }

func (p *plain) Write(b []byte) (int, error) { return p.h.Write(b) }
func (p *plain) Sum() string                 { return hex.EncodeToString(p.h.Sum(nil)) }

// dos2unix reproduces dvc-data's Dos2UnixHashStreamFile: the input is cut into 1 MiB chunks;
// a chunk whose first 512 bytes look like text has CRLF turned into LF before hashing.
type dos2unix struct {
	h   hash.Hash
	buf []byte
}

const dos2unixChunk = 1 << 20

func (d *dos2unix) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		take := min(dos2unixChunk-len(d.buf), len(b))
		d.buf = append(d.buf, b[:take]...)
		b = b[take:]
		if len(d.buf) == dos2unixChunk {
			d.flush()
		}
	}
	return n, nil
}

func (d *dos2unix) flush() {
	chunk := d.buf
	if isText(chunk) {
		chunk = bytes.ReplaceAll(chunk, []byte("\r\n"), []byte("\n"))
	}
	d.h.Write(chunk)
	d.buf = d.buf[:0]
}

func (d *dos2unix) Sum() string {
	if len(d.buf) > 0 {
		d.flush()
	}
	return hex.EncodeToString(d.h.Sum(nil))
}

// isText mirrors dvc-data's istextblock: empty is text; NUL means binary; otherwise text when
// at most 30% of the first 512 bytes are outside printable ASCII and \n\r\t\f\b.
func isText(b []byte) bool {
	if len(b) > 512 {
		b = b[:512]
	}
	if len(b) == 0 {
		return true
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return false
	}
	nontext := 0
	for _, c := range b {
		if (c >= 32 && c < 127) || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\b' {
			continue
		}
		nontext++
	}
	return float64(nontext)/float64(len(b)) <= 0.30
}

// copyBufs recycles HashReader's read buffers (like fmt's printer cache): hashing thousands of
// small files would otherwise allocate a buffer per file and keep the GC busy.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// HashReader returns the oid and byte count of everything r yields.
func HashReader(r io.Reader, legacy bool) (oid string, n int64, err error) {
	h := NewHash(legacy)
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	// The struct hides r's WriterTo (an *os.File has one), which would bypass the buffer.
	n, err = io.CopyBuffer(h, struct{ io.Reader }{r}, *bp)
	if err != nil {
		return "", n, fmt.Errorf("hashing: %w", err)
	}
	return h.Sum(), n, nil
}
