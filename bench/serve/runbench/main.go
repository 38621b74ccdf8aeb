// Command runbench compares `catdog serve` with the FastAPI + uvicorn + PyTorch peer
// (bench/serve/fastapi_server.py) in one run on this machine: for each server it measures the
// time from process start to ready, then drives POST /predict with the same load generator
// (package load, multipart "file" uploads of the same photos) at each concurrency level, and
// reads the server's resident memory from /proc. Every configuration is run -reps times in
// rotation; the report gives medians. Output: a Markdown table on stdout and JSON in -json.
//
// With -drift-overhead it runs only `catdog serve` as it ships (live drift monitoring on: the
// model directory must hold drift_profile.json, checked on /metrics after the load) and with
// --no-drift, alternating run by run under the same load, and adds the drift monitor's cost:
// the difference of the medians of p50 at each level, in ms and in % of the p50 without it.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/catdog-mlops/catdog/bench/serve/load"

	"github.com/catdog-mlops/catdog/model/modeldir"
)

type server struct {
	Name  string
	Ready string // path answering 200 once ready
	Cmd   func(port int) *exec.Cmd
	// Check, when set, runs against the server's base URL after the load (before it stops).
	Check func(base string) error
}

type levelResult struct {
	Concurrency int     `json:"concurrency"`
	RPS         float64 `json:"rps"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	Non200      int     `json:"non_200"`
	Errors      int     `json:"errors"`
}

type runResult struct {
	Server  string        `json:"server"`
	ReadyS  float64       `json:"ready_s"`
	RSSMiB  float64       `json:"rss_mib"`  // after the last level
	PeakMiB float64       `json:"peak_mib"` // VmHWM
	Levels  []levelResult `json:"levels"`
	LoadAvg string        `json:"loadavg"`
}

func main() {
	catdog := flag.String("catdog", "bin/catdog", "catdog binary")
	modelDir := flag.String("model", "", "catdog model directory (224x224)")
	python := flag.String("python", ".venv-bench/bin/python", "python of the bench virtualenv")
	script := flag.String("fastapi", "bench/serve/fastapi_server.py", "FastAPI peer")
	threads := flag.Int("threads", 2, "intra-op threads for every server")
	levels := flag.String("c", "1,8,32", "concurrency levels")
	dur := flag.Duration("d", 10*time.Second, "duration of each level")
	warm := flag.Duration("warm", 3*time.Second, "warm-up at concurrency 8 before the levels")
	reps := flag.Int("reps", 3, "repetitions of every configuration")
	variants := flag.Bool("variants", true, "also run catdog with 2 workers x 1 thread and with micro-batching")
	jsonOut := flag.String("json", "", "write all runs as JSON here")
	driftOverhead := flag.Bool("drift-overhead", false, "compare catdog serve with and without --no-drift instead (no FastAPI peer, no variants)")
	flag.Parse()
	if *modelDir == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "runbench: -model DIR and one or more photos are required")
		os.Exit(2)
	}
	// The peer builds the same network as the catdog model: widths, input size and test-time
	// augmentation come from its model.json.
	var info struct {
		Arch struct {
			Widths []int `json:"widths"`
		} `json:"arch"`
		InputSize int  `json:"input_size"`
		TTA       bool `json:"tta"`
	}
	b, err := os.ReadFile(filepath.Join(*modelDir, modeldir.Info))
	check(err)
	check(json.Unmarshal(b, &info))
	var ws []string
	for _, w := range info.Arch.Widths {
		ws = append(ws, strconv.Itoa(w))
	}
	peerArgs := []string{"--widths", strings.Join(ws, ","), "--size", strconv.Itoa(info.InputSize), "--tta", strconv.FormatBool(info.TTA)}
	fmt.Fprintf(os.Stderr, "model: widths %v, input %d, tta %v\n", info.Arch.Widths, info.InputSize, info.TTA)

	var cs []int
	for _, f := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "runbench: -c:", err)
			os.Exit(2)
		}
		cs = append(cs, n)
	}
	var bodies []load.Body
	for _, p := range flag.Args() {
		b, err := os.ReadFile(p)
		check(err)
		body, err := load.Multipart(filepath.Base(p), "image/jpeg", b)
		check(err)
		bodies = append(bodies, body)
	}

	th := strconv.Itoa(*threads)
	catdogCmd := func(extra ...string) func(int) *exec.Cmd {
		return func(port int) *exec.Cmd {
			args := append([]string{"serve", "--model", *modelDir, "--addr", fmt.Sprintf("127.0.0.1:%d", port),
				"--drain-delay", "0", "--log-level", "warn", "--queue", "256"}, extra...)
			return exec.Command(*catdog, args...)
		}
	}
	servers := []server{
		{Name: fmt.Sprintf("catdog serve (1 worker x %s threads)", th), Ready: "/ready", Cmd: catdogCmd("--threads", th)},
		{Name: fmt.Sprintf("FastAPI + uvicorn + PyTorch 2.1.2 (%s threads)", th), Ready: "/health", Cmd: func(port int) *exec.Cmd {
			return exec.Command(*python, append([]string{*script, "--port", strconv.Itoa(port), "--threads", th}, peerArgs...)...)
		}},
	}
	if *driftOverhead {
		servers = []server{
			{Name: fmt.Sprintf("catdog serve (1 worker x %s threads), drift monitoring on", th), Ready: "/ready", Cmd: catdogCmd("--threads", th), Check: driftOn},
			{Name: fmt.Sprintf("catdog serve (1 worker x %s threads), --no-drift", th), Ready: "/ready", Cmd: catdogCmd("--threads", th, "--no-drift")},
		}
	} else if *variants && *threads > 1 {
		servers = append(servers,
			server{Name: fmt.Sprintf("catdog serve (%s workers x 1 thread)", th), Ready: "/ready", Cmd: catdogCmd("--threads", "1", "--workers", th)},
			server{Name: fmt.Sprintf("catdog serve (1 worker x %s threads, max-batch 8, max-wait 2ms)", th), Ready: "/ready", Cmd: catdogCmd("--threads", th, "--max-batch", "8", "--max-wait", "2ms")},
		)
	}

	var all []runResult
	for rep := range *reps {
		for _, s := range servers {
			fmt.Fprintf(os.Stderr, "rep %d/%d: %s\n", rep+1, *reps, s.Name)
			r, err := runOne(s, bodies, cs, *dur, *warm)
			if err != nil {
				fmt.Fprintf(os.Stderr, "runbench: %s: %v\n", s.Name, err)
				os.Exit(1)
			}
			all = append(all, r)
		}
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(all, "", "  ")
		check(os.WriteFile(*jsonOut, append(b, '\n'), 0o644))
	}
	p50 := report(os.Stdout, servers, cs, all)
	if *driftOverhead {
		fmt.Println()
		fmt.Println("| concurrency | p50 with drift (ms) | p50 --no-drift (ms) | added (ms) | added (% of p50) |")
		fmt.Println("|---:|---:|---:|---:|---:|")
		for _, c := range cs {
			on, off := p50[servers[0].Name][c], p50[servers[1].Name][c]
			fmt.Printf("| %d | %.2f | %.2f | %+.2f | %+.2f %% |\n", c, on, off, on-off, 100*(on-off)/off)
		}
	}
}

// driftOn fails unless the service exports a live drift window (catdog_drift_window_size): the
// "with drift" run must not silently be a run without a profile.
func driftOn(base string) error {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "catdog_drift_window_size "); ok {
			if n, _ := strconv.ParseFloat(v, 64); n > 0 {
				return nil
			}
		}
	}
	return errors.New("drift monitoring is off or saw no images (does the model directory hold drift_profile.json?)")
}

func runOne(s server, bodies []load.Body, cs []int, dur, warm time.Duration) (runResult, error) {
	port, err := freePort()
	if err != nil {
		return runResult{}, err
	}
	cmd := s.Cmd(port)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.CreateTemp("", "runbench-*.log")
	if err != nil {
		return runResult{}, err
	}
	defer os.Remove(logf.Name())
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return runResult{}, err
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(base + s.Ready)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Since(start) > 3*time.Minute {
			b, _ := os.ReadFile(logf.Name())
			return runResult{}, fmt.Errorf("not ready after 3 minutes:\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := runResult{Server: s.Name, ReadyS: time.Since(start).Seconds()}
	url := base + "/predict"
	ctx := context.Background()
	if _, err := load.Run(ctx, load.Config{URL: url, Bodies: bodies, Duration: warm, Concurrency: 8}); err != nil {
		return r, err
	}
	for _, c := range cs {
		res, err := load.Run(ctx, load.Config{URL: url, Bodies: bodies, Duration: dur, Concurrency: c, Timeout: time.Minute})
		if err != nil {
			return r, err
		}
		r.Levels = append(r.Levels, levelResult{Concurrency: c, RPS: res.RPS(), P50ms: ms(res.Percentile(0.5)),
			P99ms: ms(res.Percentile(0.99)), Non200: len(res.Latencies) - res.Codes[200], Errors: res.Errors})
	}
	if s.Check != nil {
		if err := s.Check(base); err != nil {
			return r, err
		}
	}
	rss, peak, err := memory(cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	r.RSSMiB, r.PeakMiB = rss, peak
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return r, nil
}

// memory returns VmRSS and VmHWM (peak) in MiB.
func memory(pid int) (rss, peak float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for key, dst := range map[string]*float64{"VmRSS:": &rss, "VmHWM:": &peak} {
			if v, ok := strings.CutPrefix(sc.Text(), key); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				*dst = kb / 1024
			}
		}
	}
	return rss, peak, sc.Err()
}

// report writes the table and returns the median p50 (ms) by server name and concurrency.
func report(w io.Writer, servers []server, cs []int, all []runResult) map[string]map[int]float64 {
	out := map[string]map[int]float64{}
	median := func(xs []float64) float64 {
		if len(xs) == 0 {
			return 0
		}
		slices.Sort(xs)
		if len(xs)%2 == 1 {
			return xs[len(xs)/2]
		}
		return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	fmt.Fprintf(w, "| server | ready (s) | RSS after load (MiB) | peak RSS (MiB) |")
	for _, c := range cs {
		fmt.Fprintf(w, " c=%d req/s | c=%d p50 (ms) | c=%d p99 (ms) |", c, c, c)
	}
	fmt.Fprintf(w, " non-200 / errors |\n|---|---:|---:|---:|")
	for range cs {
		fmt.Fprintf(w, "---:|---:|---:|")
	}
	fmt.Fprintln(w, "---:|")
	for _, s := range servers {
		var ready, rss, peak []float64
		rps := map[int][]float64{}
		p50 := map[int][]float64{}
		p99 := map[int][]float64{}
		bad, errs := 0, 0
		for _, r := range all {
			if r.Server != s.Name {
				continue
			}
			ready, rss, peak = append(ready, r.ReadyS), append(rss, r.RSSMiB), append(peak, r.PeakMiB)
			for _, l := range r.Levels {
				rps[l.Concurrency] = append(rps[l.Concurrency], l.RPS)
				p50[l.Concurrency] = append(p50[l.Concurrency], l.P50ms)
				p99[l.Concurrency] = append(p99[l.Concurrency], l.P99ms)
				bad += l.Non200
				errs += l.Errors
			}
		}
		fmt.Fprintf(w, "| %s | %.2f | %.0f | %.0f |", s.Name, median(ready), median(rss), median(peak))
		out[s.Name] = map[int]float64{}
		for _, c := range cs {
			out[s.Name][c] = median(p50[c])
			fmt.Fprintf(w, " %.1f | %.1f | %.1f |", median(rps[c]), median(p50[c]), median(p99[c]))
		}
		fmt.Fprintf(w, " %d / %d |\n", bad, errs)
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "runbench:", err)
		os.Exit(1)
	}
}
