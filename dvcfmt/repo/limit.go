package repo

import (
	"errors"
	"io"
)

// limitReader fails (instead of truncating) when r yields more than n bytes.
func limitReader(r io.Reader, n int64) io.Reader { return &limited{r: r, n: n} }

type limited struct {
	r io.Reader
	n int64
}

func (l *limited) Read(b []byte) (int, error) {
	if l.n < 0 {
		return 0, errors.New("object exceeds the size limit")
	}
	if int64(len(b)) > l.n+1 {
		b = b[:l.n+1]
	}
	n, err := l.r.Read(b)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errors.New("object exceeds the size limit")
	}
	return n, err
}
