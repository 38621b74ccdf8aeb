package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/bench/serve/load"
)

// TestLoad sends 10,000 predict requests at concurrency 32 over loopback to a `catdog serve`
// process and checks that every one is answered 200 and that the server's goroutines and
// resident memory do not grow between a warm-up round and the end.
func TestLoad(t *testing.T) {
	// Two workers with one intra-op thread each: both cores in use without OpenMP barriers,
	// which stall badly when the cores are shared with other processes (as under `make test`).
	s := startServe(t, "--model", fixture.modelDir, "--drain-delay", "0", "--log-level", "warn", "--threads", "1", "--workers", "2")
	var bodies []load.Body
	for i, img := range [][]byte{
		readFile(t, devPhoto(t, "dog.630.jpg")), // 73x50, the smallest dev photo
		smallJPEG(t, devPhoto(t, "cat.700.jpg"), 64),
		smallJPEG(t, devPhoto(t, "dog.700.jpg"), 64),
		smallJPEG(t, devPhoto(t, "cat.701.jpg"), 96),
	} {
		b, err := load.Multipart(fmt.Sprintf("img%d.jpg", i), "image/jpeg", img)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	// A failsafe, not a performance bound: `go test ./...` shares the two cores with other
	// packages, and on a machine busy with other jobs (load average 10-16 on 2 cores) the
	// 10,000 requests took 2-4 minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	run := func(n int) load.Result {
		t.Helper()
		res, err := load.Run(ctx, load.Config{URL: s.url + "/predict", Bodies: bodies, Requests: n, Concurrency: 32})
		if err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatalf("load run did not finish in time: %d of %d requests", res.Requests, n)
		}
		if res.Errors != 0 || res.Codes[200] != n {
			exited, err := s.proc.Exited()
			t.Fatalf("%d requests: codes %v, %d transport errors (first: %v); server exited: %v %v\n--- server output ---\n%s",
				n, res.Codes, res.Errors, res.FirstErr, exited, err, crashSummary(s.proc.Output()))
		}
		return res
	}

	run(500) // warm-up: connection pools, Go heap, libtorch allocator
	pid := s.proc.Cmd.Process.Pid
	g0, rss0 := goroutines(t, s.url), rss(t, pid)

	res := run(10000)
	t.Logf("10000 requests at concurrency 32: %.0f req/s, p50 %v, p99 %v, elapsed %v",
		res.RPS(), res.Percentile(0.5), res.Percentile(0.99), res.Elapsed.Round(time.Millisecond))

	// The load generator closed its connections; the server's per-connection goroutines end.
	var g1 int
	deadline := time.Now().Add(5 * time.Second)
	for g1 = goroutines(t, s.url); g1 > g0+2 && time.Now().Before(deadline); g1 = goroutines(t, s.url) {
		time.Sleep(100 * time.Millisecond)
	}
	rss1 := rss(t, pid)
	t.Logf("goroutines %d -> %d, RSS %.1f MiB -> %.1f MiB", g0, g1, float64(rss0)/(1<<20), float64(rss1)/(1<<20))
	if g1 > g0+2 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	if rss1 > rss0+48<<20 {
		t.Errorf("RSS grew by %.1f MiB over 10,000 requests (%.1f -> %.1f MiB)",
			float64(rss1-rss0)/(1<<20), float64(rss0)/(1<<20), float64(rss1)/(1<<20))
	}
}

// goroutines reads go_goroutines from the server's /metrics (the scrape's own handler
// goroutine included, equally in every reading).
func goroutines(t *testing.T, url string) int {
	t.Helper()
	for _, line := range strings.Split(string(get(t, url+"/metrics").body), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("go_goroutines not in /metrics")
	return 0
}

// rss returns the resident set size of a process in bytes (VmRSS in /proc/PID/status).
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// crashSummary keeps the lines of a server's output that say why it failed (libtorch's error
// and the Go stack), without libtorch's native frame list.
func crashSummary(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "frame #") {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) > 60 {
		keep = append(keep[:20], append([]string{"..."}, keep[len(keep)-40:]...)...)
	}
	return strings.Join(keep, "\n")
}
