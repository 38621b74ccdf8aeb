package train

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows work on a bar when w is a terminal, and as a line every few seconds otherwise
// (CI logs), so long epochs are never silent.
type progress struct {
	bar   *progressbar.ProgressBar
	w     io.Writer
	desc  string
	n, i  int
	last  time.Time
	start time.Time
}

func newProgress(w io.Writer, n int, desc string) *progress {
	p := &progress{w: w, desc: desc, n: n, start: time.Now(), last: time.Now()}
	if w == nil {
		return p
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(n, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(), progressbar.OptionSetPredictTime(true))
	}
	return p
}

// Add advances by k steps with a short status text.
func (p *progress) Add(k int, status string) {
	p.i += k
	switch {
	case p.bar != nil:
		p.bar.Describe(p.desc + " " + status)
		_ = p.bar.Add(k)
	case p.w != nil && time.Since(p.last) >= 10*time.Second:
		p.last = time.Now()
		fmt.Fprintf(p.w, "%s: %d/%d batches, %s, %.0fs\n", p.desc, p.i, p.n, status, time.Since(p.start).Seconds())
	}
}

// Finish completes the bar.
func (p *progress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
