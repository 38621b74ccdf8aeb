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
	"strconv"
	"strings"
	"syscall"
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
	arch := flag.String("arch", model.ArchName, "architecture: "+model.ArchName+" or "+model.ArchResNet)
	widths := flag.String("widths", "", "comma-separated widths (default: the architecture's default)")
	blocks := flag.String("blocks", "", "comma-separated residual blocks per stage ("+model.ArchResNet+")")
	flag.Parse()
	a := model.DefaultArch()
	a.Name = *arch
	var err error
	if *widths != "" {
		if a.Widths, err = ints[int64](*widths); err != nil {
			fmt.Fprintln(os.Stderr, "trainbench: -widths:", err)
			os.Exit(2)
		}
	}
	if *blocks != "" {
		if a.Blocks, err = ints[int](*blocks); err != nil {
			fmt.Fprintln(os.Stderr, "trainbench: -blocks:", err)
			os.Exit(2)
		}
	}
	if err := run(a, *batch, *size, *threads, *steps, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "trainbench:", err)
		os.Exit(1)
	}
}

// cpuSeconds is the process's user + system CPU time: unlike wall time it hardly depends on
// what else runs on a shared machine.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func ints[T int | int64](s string) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, T(v))
	}
	return out, nil
}

func run(a model.Arch, batch, size, threads, steps, warmup int) error {
	runtime.LockOSThread()
	model.SetThreads(threads)
	model.Seed(1)
	net, err := model.NewNetwork(a)
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
	var cpu0 float64
	for s := 0; s < warmup+steps; s++ {
		if s == warmup {
			cpu0 = cpuSeconds()
		}
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
	cpu := (cpuSeconds() - cpu0) / float64(steps*batch)
	slices.Sort(times)
	med := times[len(times)/2]
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"impl": "catdog-gotch", "arch": a.Name, "widths": a.Widths, "blocks": a.Blocks, "batch": batch, "size": size, "threads": model.Threads(),
		"median_step_s": med, "images_per_s": float64(batch) / med,
		"cpu_ms_per_image": 1000 * cpu,
	})
}
