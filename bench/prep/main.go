// Command prep measures catdog's image preprocessing throughput, for bench/prep/run.sh to compare
// with Pillow + torchvision (pillow_torchvision.py) on the same files, workers and runs.
//
// Modes:
//
//	decode-resize  read + imageprep.DecodeResized to -size HWC bytes (what `catdog prepare` caches
//	               and what serving and evaluation run before normalising)
//	augment        train-time input from the cache: Augment.Apply + normalise on cached -size images
//	               (the cache is built before timing, as `catdog prepare` does once)
//
// Each run processes every file once with -workers goroutines; the program prints one JSON line per
// run and a final line with the median.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/catdog-mlops/catdog/imageprep"
)

func main() {
	data := flag.String("data", "../shared/data/petimages-dev", "photo folder")
	mode := flag.String("mode", "decode-resize", "decode-resize | augment")
	workers := flag.Int("workers", 2, "goroutines")
	runs := flag.Int("runs", 5, "timed runs (after one warm-up run)")
	warmup := flag.Int("warmup", 1, "untimed warm-up runs")
	size := flag.Int("size", 224, "output side")
	flag.Parse()
	runtime.GOMAXPROCS(*workers)

	files, err := list(*data)
	if err != nil {
		fail(err)
	}
	var work func(i int, w *worker) error
	switch *mode {
	case "decode-resize":
		work = func(i int, w *worker) error {
			b, err := os.ReadFile(files[i])
			if err != nil {
				return err
			}
			// The output buffer is reused, as `catdog prepare` reuses its buffers.
			w.rgb, _, err = imageprep.DecodeResized(b, *size, imageprep.DefaultLimits(), w.rgb)
			return err
		}
	case "augment":
		cache := make([][]byte, len(files))
		for i, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				fail(err)
			}
			if cache[i], _, err = imageprep.DecodeResized(b, *size, imageprep.DefaultLimits(), nil); err != nil {
				fail(err)
			}
		}
		aug, spec := imageprep.DefaultAugment(), imageprep.DefaultSpec()
		work = func(i int, w *worker) error {
			aug.Apply(w.rng, cache[i], *size, *size, spec, w.norm)
			return nil
		}
	default:
		fail(fmt.Errorf("unknown -mode %q", *mode))
	}

	var rates []float64
	for r := 0; r < *warmup+*runs; r++ {
		cpu0 := cpuTime()
		el, err := run(len(files), *workers, *size, work)
		cpu := cpuTime() - cpu0
		if err != nil {
			fail(err)
		}
		if r < *warmup {
			continue
		}
		rate := float64(len(files)) / el.Seconds()
		rates = append(rates, rate)
		line(map[string]any{"impl": "catdog", "mode": *mode, "run": r - *warmup + 1, "images": len(files), "seconds": el.Seconds(), "images_per_s": rate,
			"cpu_ms_per_image": cpu.Seconds() * 1000 / float64(len(files))})
	}
	sort.Float64s(rates)
	line(map[string]any{"impl": "catdog", "mode": *mode, "median_images_per_s": rates[len(rates)/2], "runs": len(rates), "workers": *workers, "go": runtime.Version()})
}

// worker is the state of one benchmark goroutine.
type worker struct {
	rng  *rand.Rand
	norm []float32 // augment's normalised output
	rgb  []byte    // decode-resize's output
}

func run(n, workers, size int, work func(int, *worker) error) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &worker{rng: rand.New(rand.NewPCG(uint64(w), 1)), norm: make([]float32, 3*size*size)}
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := work(i, st); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return el, nil
}

// cpuTime is the user+system CPU time of this process (all threads, GC included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func list(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".jpg") || strings.HasSuffix(p, ".png")) {
			files = append(files, p)
		}
		return err
	})
	sort.Strings(files)
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("no .jpg/.png under %s", dir)
	}
	return files, err
}

func line(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "prep bench:", err)
	os.Exit(1)
}
