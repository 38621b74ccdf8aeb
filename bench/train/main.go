// Command trainbench measures catdog's training throughput (forward + backward + AdamW step of
// the catdognet-v1 CNN on libtorch through gotch) on fixed random batches, and prints one JSON
// line per run. torch_train.py measures the same architecture in PyTorch with the same batch,
// input size and thread count; run.sh runs both side by side.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/sugarme/gotch/nn"

	"github.com/catdog-mlops/catdog/model"
)

func main() {
	batch := flag.Int("batch", 32, "images per step")
	size := flag.Int("size", 224, "input size")
	threads := flag.Int("threads", runtime.NumCPU(), "libtorch intra-op threads")
	steps := flag.Int("steps", 20, "timed steps")
	warmup := flag.Int("warmup", 3, "untimed steps")
	flag.Parse()
	if err := run(*batch, *size, *threads, *steps, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "trainbench:", err)
		os.Exit(1)
	}
}

func run(batch, size, threads, steps, warmup int) error {
	runtime.LockOSThread()
	model.SetThreads(threads)
	model.Seed(1)
	net, err := model.NewNetwork(model.DefaultArch())
	if err != nil {
		return err
	}
	opt, err := nn.NewAdamWConfig(0.9, 0.999, 5e-4).Build(net.VarStore(), 1e-3)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, batch*3*size*size)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := make([]int64, batch)
	for i := range y {
		y[i] = int64(i % 2)
	}
	var times []float64
	for s := 0; s < warmup+steps; s++ {
		start := time.Now()
		xt, err := model.Float32Tensor(x, []int64{int64(batch), 3, int64(size), int64(size)})
		if err != nil {
			return err
		}
		yt, err := model.Int64Tensor(y, []int64{int64(batch)})
		if err != nil {
			return err
		}
		logits := net.Forward(xt, true)
		loss := logits.CrossEntropyForLogits(yt)
		if err := opt.BackwardStep(loss); err != nil {
			return err
		}
		_ = loss.Float64Values()
		loss.MustDrop()
		logits.MustDrop()
		xt.MustDrop()
		yt.MustDrop()
		if s >= warmup {
			times = append(times, time.Since(start).Seconds())
		}
	}
	slices.Sort(times)
	med := times[len(times)/2]
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"impl": "catdog-gotch", "batch": batch, "size": size, "threads": model.Threads(),
		"median_step_s": med, "images_per_s": float64(batch) / med,
	})
}
