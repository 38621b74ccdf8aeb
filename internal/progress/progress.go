// Package progress is how catdog's library packages report long work: as data, through a
// callback, the way go-containerregistry's WithProgress does. Libraries never draw; the one
// renderer lives in cmd/catdog (a bar on a terminal, plain lines in CI logs, nothing with
// --quiet).
package progress

// Update is one report about an operation in progress.
type Update struct {
	// Op names the operation ("epoch 3/40", "Checkout data", "upload"); a new Op ends the
	// previous one.
	Op string
	// Done and Total count units of Op (Total 0: unknown).
	Done, Total int64
	// Bytes says the units are bytes (otherwise items: files, images, batches).
	Bytes bool
	// Status is a short free text shown beside the count ("loss 0.412 acc 0.831").
	Status string
	// Final marks the last update of Op.
	Final bool
}

// Func receives updates. Implementations must be safe for concurrent use; a nil Func is
// valid and ignores everything (use Report).
type Func func(Update)

// Report sends u to f when f is not nil.
func (f Func) Report(u Update) {
	if f != nil {
		f(u)
	}
}

// Counter reports Done out of Total for one Op; it is safe for concurrent use through the
// Func's own guarantees (Add is called from several goroutines by parallel loops).
type Counter struct {
	f     Func
	op    string
	total int64
	done  chan int64
}

// Count starts a counter of total units of op.
func (f Func) Count(op string, total int64) *Counter {
	c := &Counter{f: f, op: op, total: total, done: make(chan int64, 1)}
	c.done <- 0
	f.Report(Update{Op: op, Total: total})
	return c
}

// Add counts n more units done.
func (c *Counter) Add(n int64) {
	d := <-c.done + n
	c.f.Report(Update{Op: c.op, Done: d, Total: c.total})
	c.done <- d
}

// Finish reports the final update.
func (c *Counter) Finish() {
	d := <-c.done
	c.f.Report(Update{Op: c.op, Done: d, Total: c.total, Final: true})
	c.done <- d
}
