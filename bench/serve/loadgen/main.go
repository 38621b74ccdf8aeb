// Command loadgen drives an image-classification HTTP endpoint with multipart POSTs at a
// fixed concurrency and prints requests/s and latency percentiles as one JSON line.
//
//	loadgen -url http://127.0.0.1:8080/predict -c 8 -n 2000 photo1.jpg photo2.jpg
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/catdog-mlops/catdog/bench/serve/load"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/predict", "POST target")
	c := flag.Int("c", 1, "concurrency (closed loop: each worker sends the next request after an answer)")
	n := flag.Int("n", 0, "requests in total (0: run for -d)")
	d := flag.Duration("d", 10*time.Second, "duration when -n is 0")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "loadgen: give one or more image files")
		os.Exit(2)
	}
	var bodies []load.Body
	for _, p := range flag.Args() {
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		ct := "image/jpeg"
		if filepath.Ext(p) == ".png" {
			ct = "image/png"
		}
		body, err := load.Multipart(filepath.Base(p), ct, b)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		bodies = append(bodies, body)
	}
	cfg := load.Config{URL: *url, Bodies: bodies, Requests: *n, Concurrency: *c}
	if *n == 0 {
		cfg.Duration = *d
	}
	res, err := load.Run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	out := map[string]any{
		"concurrency": *c, "requests": res.Requests, "codes": res.Codes, "errors": res.Errors,
		"rps": res.RPS(), "p50_ms": ms(res.Percentile(0.5)), "p90_ms": ms(res.Percentile(0.9)),
		"p99_ms": ms(res.Percentile(0.99)), "elapsed_s": res.Elapsed.Seconds(),
	}
	if res.FirstErr != nil {
		out["first_error"] = res.FirstErr.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
