package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/catdog-mlops/catdog/internal/progress"
)

// lines says when the renderer prints a plain line (w is not a terminal: CI logs, files).
type lines struct {
	every    time.Duration // at most this often while an operation runs (and always this often)
	pctStep  int64         // also when the percentage crosses a multiple of this (0: not)
	final    bool          // a line when an operation finishes
	minBytes int64         // byte operations smaller than this print nothing
}

var (
	// itemLines suits operations over files or images: a line per 10 %, every 5 s, and the end.
	itemLines = lines{every: 5 * time.Second, pctStep: 10, final: true}
	// byteLines suits uploads and compression: per 25 % of large transfers.
	byteLines = lines{every: 5 * time.Second, pctStep: 25, final: true, minBytes: 16 << 20}
	// dataLines suits data versioning (hashing, linking, transfers of many small files): a
	// line every 5 s while a long step runs, nothing for short ones.
	dataLines = lines{every: 5 * time.Second}
	// sparseLines suits many short operations that log their own summary (training epochs).
	sparseLines = lines{every: 10 * time.Second}
)

// newProgress is catdog's one progress renderer: nothing when quiet, a bar per operation when w
// is a terminal, and plain lines (as l says) otherwise. Library packages report
// progress.Updates; only this draws them.
func newProgress(w io.Writer, quiet bool, l lines) progress.Func {
	if quiet || w == nil {
		return nil
	}
	f, ok := w.(*os.File)
	r := &renderer{w: w, terminal: ok && term.IsTerminal(int(f.Fd())), l: l}
	return r.update
}

// countProgress adapts a library's (done, total) callback, as imageprep takes, to f; nil when
// f is nil.
func countProgress(f progress.Func, op string) func(done, total int) {
	if f == nil {
		return nil
	}
	return func(done, total int) {
		f(progress.Update{Op: op, Done: int64(done), Total: int64(total), Final: done == total})
	}
}

type renderer struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	l        lines

	op      string
	bar     *progressbar.ProgressBar
	start   time.Time
	last    time.Time
	lastPct int64
	printed bool
}

func (r *renderer) update(u progress.Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u.Op != r.op || r.start.IsZero() {
		r.endBar()
		r.op, r.start, r.last, r.lastPct, r.printed = u.Op, time.Now(), time.Now(), -1, false
	}
	if r.terminal {
		r.drawBar(u)
		return
	}
	if u.Bytes && u.Total < r.l.minBytes {
		return
	}
	pct := int64(-1)
	if u.Total > 0 {
		pct = u.Done * 100 / u.Total
	}
	due := time.Since(r.last) >= r.l.every ||
		(r.l.pctStep > 0 && pct >= 0 && pct/r.l.pctStep > r.lastPct/r.l.pctStep && u.Done > 0) ||
		(u.Final && r.l.final && !(r.printed && pct == r.lastPct))
	if !due {
		return
	}
	fmt.Fprintln(r.w, r.line(u, pct))
	r.last, r.lastPct, r.printed = time.Now(), pct, true
}

// line formats one plain progress line: "decoding 26/26 (100%, 812 img/s)",
// "upload 40/120 MiB (33%)", "epoch 3/40 12/50 (24%) loss 0.412 acc 0.831".
func (r *renderer) line(u progress.Update, pct int64) string {
	var s string
	switch {
	case u.Bytes:
		s = fmt.Sprintf("%s %d/%d MiB", u.Op, u.Done>>20, u.Total>>20)
	case u.Total > 0:
		s = fmt.Sprintf("%s %d/%d", u.Op, u.Done, u.Total)
	default:
		s = fmt.Sprintf("%s %d", u.Op, u.Done)
	}
	if pct >= 0 {
		if elapsed := time.Since(r.start); !u.Bytes && elapsed > 0 && u.Done > 0 {
			s += " (" + rateETA(pct, u.Done, u.Total, elapsed) + ")"
		} else {
			s += fmt.Sprintf(" (%d%%)", pct)
		}
	}
	if u.Status != "" {
		s += " " + u.Status
	}
	return s
}

// rateETA formats "24%, 1.3/s, 38s left": the rate with a decimal below 10 per second (an
// epoch's batches are often slower than one per second), and the time left at that rate.
func rateETA(pct, done, total int64, elapsed time.Duration) string {
	rate := float64(done) / elapsed.Seconds()
	s := fmt.Sprintf("%d%%, %.0f/s", pct, rate)
	if rate < 10 {
		s = fmt.Sprintf("%d%%, %.1f/s", pct, rate)
	}
	if left := total - done; left > 0 && rate > 0 {
		s += ", " + time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second).String() + " left"
	}
	return s
}

func (r *renderer) drawBar(u progress.Update) {
	if r.bar == nil {
		total := u.Total
		if total <= 0 {
			total = -1
		}
		opts := []progressbar.Option{progressbar.OptionSetWriter(r.w), progressbar.OptionSetDescription(u.Op),
			progressbar.OptionThrottle(100 * time.Millisecond), progressbar.OptionClearOnFinish(),
			progressbar.OptionSetWidth(30), progressbar.OptionSetPredictTime(true)}
		if u.Bytes {
			opts = append(opts, progressbar.OptionShowBytes(true))
		} else {
			opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts())
		}
		r.bar = progressbar.NewOptions64(total, opts...)
	}
	if u.Total > 0 && u.Total != r.bar.GetMax64() {
		r.bar.ChangeMax64(u.Total)
	}
	if u.Status != "" {
		r.bar.Describe(u.Op + " " + u.Status)
	}
	_ = r.bar.Set64(u.Done)
	if u.Final {
		r.endBar()
	}
}

func (r *renderer) endBar() {
	if r.bar != nil {
		_ = r.bar.Finish()
		r.bar = nil
	}
}
