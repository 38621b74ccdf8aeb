package train

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/catdog-mlops/catdog/imageprep"
)

// batch is one mini-batch of normalised CHW images and their labels.
type batch struct {
	x      []float32
	labels []int64
	n      int
}

// sampleRNG returns the random source for one image in one epoch. Deriving it from (seed,
// epoch, index) makes augmentation independent of how work is spread over goroutines.
func sampleRNG(seed int64, epoch, index int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(epoch)<<32|uint64(uint32(index))))
}

// trainBatches streams the shuffled, augmented batches of one epoch. Batches are produced by
// `workers` goroutines and delivered in order; at most `ahead` batches wait in memory.
func trainBatches(ctx context.Context, ds *imageprep.Dataset, p Params, epoch int) (<-chan batch, <-chan error) {
	order := rand.New(rand.NewPCG(uint64(p.Seed), uint64(epoch))).Perm(ds.N)
	nb := (ds.N + p.BatchSize - 1) / p.BatchSize
	spec := p.Spec()
	aug := p.Augment
	plane := 3 * spec.Size * spec.Size
	src := ds.Size * ds.Size * 3
	build := func(b int) batch {
		lo, hi := b*p.BatchSize, min((b+1)*p.BatchSize, ds.N)
		out := batch{x: make([]float32, (hi-lo)*plane), labels: make([]int64, hi-lo), n: hi - lo}
		for i := lo; i < hi; i++ {
			idx := order[i]
			rng := sampleRNG(p.Seed, epoch, idx)
			aug.Apply(rng, ds.Pixels[idx*src:(idx+1)*src], ds.Size, spec.Size, spec, out.x[(i-lo)*plane:(i-lo+1)*plane])
			out.labels[i-lo] = int64(ds.Labels[idx])
		}
		return out
	}
	return orderedMap(ctx, nb, p.workers(), build)
}

// evalBatches yields the split in order without augmentation (resize already happened when the
// split was prepared, so this is exactly imageprep's Normalize of the cached pixels).
func evalBatches(ctx context.Context, ds *imageprep.Dataset, spec imageprep.Spec, batchSize, workers int) (<-chan batch, <-chan error) {
	plane := 3 * spec.Size * spec.Size
	src := ds.Size * ds.Size * 3
	nb := (ds.N + batchSize - 1) / batchSize
	build := func(b int) batch {
		lo, hi := b*batchSize, min((b+1)*batchSize, ds.N)
		out := batch{x: make([]float32, (hi-lo)*plane), labels: make([]int64, hi-lo), n: hi - lo}
		for i := lo; i < hi; i++ {
			spec.Normalize(ds.Pixels[i*src:(i+1)*src], out.x[(i-lo)*plane:(i-lo+1)*plane])
			out.labels[i-lo] = int64(ds.Labels[i])
		}
		return out
	}
	return orderedMap(ctx, nb, workers, build)
}

// orderedMap computes build(0..n-1) on `workers` goroutines and delivers the results in order,
// keeping at most 2*workers results in flight. The error channel gets ctx's error if cancelled.
func orderedMap(ctx context.Context, n, workers int, build func(int) batch) (<-chan batch, <-chan error) {
	out := make(chan batch)
	errc := make(chan error, 1)
	if workers < 1 {
		workers = 1
	}
	slots := make([]chan batch, n)
	for i := range slots {
		slots[i] = make(chan batch, 1)
	}
	sem := make(chan struct{}, 2*workers)
	var wg sync.WaitGroup
	jobs := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				slots[i] <- build(i)
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := 0; i < n; i++ {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer close(out)
		defer close(errc)
		for i := 0; i < n; i++ {
			var b batch
			select {
			case b = <-slots[i]:
			case <-ctx.Done():
				errc <- fmt.Errorf("train: %w", ctx.Err())
				go func() { wg.Wait() }()
				return
			}
			<-sem
			select {
			case out <- b:
			case <-ctx.Done():
				errc <- fmt.Errorf("train: %w", ctx.Err())
				return
			}
		}
		wg.Wait()
	}()
	return out, errc
}

// subset returns n images of ds picked at random (seeded), in their original order.
func subset(ds *imageprep.Dataset, n int, seed int64) *imageprep.Dataset {
	pick := rand.New(rand.NewPCG(uint64(seed), 0x5eed)).Perm(ds.N)[:n]
	slices.Sort(pick)
	img := ds.Size * ds.Size * 3
	out := &imageprep.Dataset{Size: ds.Size, Classes: ds.Classes, Split: ds.Split, N: n,
		Labels: make([]int, n), Paths: make([]string, n), Pixels: make([]byte, n*img)}
	for i, j := range pick {
		out.Labels[i] = ds.Labels[j]
		out.Paths[i] = ds.Paths[j]
		copy(out.Pixels[i*img:(i+1)*img], ds.Pixels[j*img:(j+1)*img])
	}
	return out
}
