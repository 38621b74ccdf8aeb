package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// pushable is what `image push` uploads.
type pushable = v1.Image

// byteProgress shows a byte progress bar on a terminal and a line every 10% (or 5 s) otherwise.
// A nil *byteProgress does nothing.
type byteProgress struct {
	w        io.Writer
	terminal bool
	mu       sync.Mutex
	bar      *progressbar.ProgressBar
	what     string
	lastPct  int64
	last     time.Time
}

func newByteProgress(w io.Writer) *byteProgress {
	f, ok := w.(*os.File)
	return &byteProgress{w: w, terminal: ok && term.IsTerminal(int(f.Fd())), lastPct: -1}
}

func (p *byteProgress) layer(name string, done, total int64) { p.update("compress "+name, done, total) }

func (p *byteProgress) upload(done, total int64) { p.update("upload", done, total) }

func (p *byteProgress) update(what string, done, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if what != p.what {
		if p.bar != nil {
			_ = p.bar.Finish()
			p.bar = nil
		}
		p.what, p.lastPct, p.last = what, -1, time.Time{}
	}
	if p.terminal {
		if p.bar == nil {
			p.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(what),
				progressbar.OptionShowBytes(true), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		}
		p.bar.ChangeMax64(total)
		_ = p.bar.Set64(done)
		return
	}
	if total < 16<<20 { // small layers: no progress lines
		return
	}
	pct := done * 100 / max(total, 1)
	if (done == total && p.lastPct < 100) || pct/25 > p.lastPct/25 || time.Since(p.last) > 5*time.Second {
		fmt.Fprintf(p.w, "%s %d/%d MiB (%d%%)\n", what, done>>20, total>>20, pct)
		p.lastPct, p.last = pct, time.Now()
	}
}

func (p *byteProgress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}
