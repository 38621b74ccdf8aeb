package inference

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/catdog-mlops/catdog/imageprep"
)

// ErrOverloaded is returned when the queue in front of the model workers is full; the
// service answers 503 with Retry-After.
var ErrOverloaded = errors.New("inference: queue full")

// ErrClosed is returned for work submitted after Close.
var ErrClosed = errors.New("inference: service closed")

// job is one request's images on their way to a worker: S×S RGB bytes, normalised by the worker
// right before the forward pass (a queued image holds 3·S² bytes, not 12·S² of floats).
type job struct {
	ctx   context.Context
	rgb   []byte // n*S*S*3, HWC
	n     int
	reply chan result // buffered: a worker never blocks on a caller that gave up
}

type result struct {
	probs [][]float32
	batch int // images in the forward pass that served this job
	err   error
}

// pool runs the model on dedicated goroutines, each locked to its OS thread for its whole
// life: libtorch keeps its error slot and grad mode per thread. Jobs wait in a bounded
// queue; a worker takes one job, then (when batching) more until maxBatch images or maxWait.
type pool struct {
	pred     Predictor
	spec     imageprep.Spec
	m        *metrics
	imgLen   int // floats per image: 3*S*S
	maxBatch int
	maxWait  time.Duration

	mu     sync.RWMutex // guards closed against concurrent submit/close
	closed bool
	jobs   chan *job

	wg      sync.WaitGroup
	warmed  chan struct{} // closed when every worker ran its warm-up pass
	warmMu  sync.Mutex
	warmErr error
}

func newPool(pred Predictor, spec imageprep.Spec, m *metrics, workers, queue, maxBatch int, maxWait time.Duration) *pool {
	p := &pool{
		pred: pred, spec: spec, m: m, imgLen: 3 * spec.Size * spec.Size, maxBatch: maxBatch, maxWait: maxWait,
		jobs:   make(chan *job, queue),
		warmed: make(chan struct{}),
	}
	var warm sync.WaitGroup
	warm.Add(workers)
	p.wg.Add(workers)
	for range workers {
		go p.work(&warm)
	}
	go func() { warm.Wait(); close(p.warmed) }()
	return p
}

// submit queues n images (S×S RGB bytes each) and waits for their probabilities, ctx's end, or
// ErrOverloaded.
func (p *pool) submit(ctx context.Context, rgb []byte, n int) (result, error) {
	j := &job{ctx: ctx, rgb: rgb, n: n, reply: make(chan result, 1)}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return result{}, ErrClosed
	}
	select {
	case p.jobs <- j:
		p.m.queue.Inc()
	default:
		p.mu.RUnlock()
		return result{}, ErrOverloaded
	}
	p.mu.RUnlock()
	select {
	case r := <-j.reply:
		return r, r.err
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

// close stops accepting work, lets the workers finish what is queued and waits for them.
func (p *pool) close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.jobs)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *pool) work(warm *sync.WaitGroup) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer p.wg.Done()

	// Warm-up: the first forward pass on a thread allocates libtorch's per-thread state.
	if _, err := p.predict(make([]float32, p.imgLen), 1); err != nil {
		p.warmMu.Lock()
		p.warmErr = errors.Join(p.warmErr, fmt.Errorf("warm-up: %w", err))
		p.warmMu.Unlock()
	}
	warm.Done()

	buf := make([]float32, 0, p.maxBatch*p.imgLen)
	batch := make([]*job, 0, p.maxBatch)
	for j := range p.jobs {
		p.m.queue.Dec()
		batch = append(batch[:0], j)
		if p.maxBatch > 1 {
			batch = p.collect(batch)
		}
		buf = p.run(batch, buf)
	}
}

// collect adds queued jobs to batch until it holds maxBatch images: first whatever is already
// waiting, then whatever arrives within maxWait.
func (p *pool) collect(batch []*job) []*job {
	n := batch[0].n
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for n < p.maxBatch {
		select {
		case j, ok := <-p.jobs:
			if !ok {
				return batch
			}
			p.m.queue.Dec()
			batch = append(batch, j)
			n += j.n
			continue
		default:
		}
		if p.maxWait <= 0 {
			return batch
		}
		if timer == nil {
			timer = time.NewTimer(p.maxWait)
		}
		select {
		case j, ok := <-p.jobs:
			if !ok {
				return batch
			}
			p.m.queue.Dec()
			batch = append(batch, j)
			n += j.n
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// run answers every job of batch with one forward pass; jobs whose caller gave up are skipped.
func (p *pool) run(batch []*job, buf []float32) []float32 {
	live := batch[:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.reply <- result{err: err}
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return buf
	}
	n := 0
	for _, j := range live {
		n += j.n
	}
	if cap(buf) < n*p.imgLen {
		buf = make([]float32, n*p.imgLen)
	}
	x := buf[:n*p.imgLen]
	i := 0
	for _, j := range live {
		px := len(j.rgb) / j.n
		for k := range j.n {
			p.spec.Normalize(j.rgb[k*px:(k+1)*px], x[i*p.imgLen:(i+1)*p.imgLen])
			i++
		}
	}
	probs, err := p.predict(x, n)
	buf = x
	p.m.batchSize.Observe(float64(n))
	off := 0
	for _, j := range live {
		if err != nil {
			j.reply <- result{err: err, batch: n}
			continue
		}
		j.reply <- result{probs: probs[off : off+j.n], batch: n}
		off += j.n
	}
	return buf
}

// predict calls the predictor, turning a panic or a malformed answer into an error.
func (p *pool) predict(x []float32, n int) (probs [][]float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("predictor panicked: %v", r)
		}
	}()
	probs, err = p.pred.Predict(x, n)
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	if len(probs) != n {
		return nil, fmt.Errorf("predict: %d rows for %d images", len(probs), n)
	}
	return probs, nil
}

// ready reports whether warm-up is over and, if so, its error.
func (p *pool) ready() (bool, error) {
	select {
	case <-p.warmed:
		p.warmMu.Lock()
		defer p.warmMu.Unlock()
		return true, p.warmErr
	default:
		return false, nil
	}
}
