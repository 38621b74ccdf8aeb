package repo

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress creates progress reporters for long operations.
type Progress interface {
	Bar(desc string, total int64) Bar
}

// Bar counts completed units of one operation. Implementations are safe for concurrent use.
type Bar interface {
	Add(n int64)
	Done()
}

type noProgress struct{}

func (noProgress) Bar(string, int64) Bar { return noBar{} }

type noBar struct{}

func (noBar) Add(int64) {}
func (noBar) Done()     {}

// NewProgress reports to w: an animated progress bar when terminal is true, otherwise one
// line every interval (and at the end), which suits logs.
func NewProgress(w io.Writer, terminal bool, interval time.Duration) Progress {
	return &progress{w: w, terminal: terminal, interval: interval}
}

type progress struct {
	w        io.Writer
	terminal bool
	interval time.Duration
}

func (p *progress) Bar(desc string, total int64) Bar {
	if p.terminal {
		b := progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("files"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		return &termBar{b: b}
	}
	return &lineBar{w: p.w, desc: desc, total: total, interval: p.interval, start: time.Now(), last: time.Now()}
}

type termBar struct {
	mu sync.Mutex
	b  *progressbar.ProgressBar
}

func (t *termBar) Add(n int64) {
	t.mu.Lock()
	_ = t.b.Add64(n)
	t.mu.Unlock()
}

func (t *termBar) Done() {
	t.mu.Lock()
	_ = t.b.Finish()
	t.mu.Unlock()
}

type lineBar struct {
	mu          sync.Mutex
	w           io.Writer
	desc        string
	total, done int64
	interval    time.Duration
	start, last time.Time
}

func (l *lineBar) Add(n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done += n
	if l.interval > 0 && time.Since(l.last) >= l.interval {
		l.last = time.Now()
		fmt.Fprintf(l.w, "%s: %d/%d\n", l.desc, l.done, l.total)
	}
}

func (l *lineBar) Done() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.interval > 0 && time.Since(l.start) >= l.interval {
		fmt.Fprintf(l.w, "%s: %d/%d done in %s\n", l.desc, l.done, l.total, time.Since(l.start).Round(time.Millisecond))
	}
}
