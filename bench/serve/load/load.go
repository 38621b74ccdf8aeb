// Package load is a small closed-loop HTTP load generator: a fixed number of workers send
// prepared requests back to back until a request count or a deadline is reached, recording
// status codes and latencies. The catdog serve benchmark and the inference load test use it.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Body is one prepared request body.
type Body struct {
	ContentType string
	Data        []byte
}

// Multipart wraps an image as the "file" part of a multipart/form-data body.
func Multipart(filename, contentType string, image []byte) (Body, error) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filename))
	h.Set("Content-Type", contentType)
	p, err := w.CreatePart(h)
	if err != nil {
		return Body{}, err
	}
	if _, err := p.Write(image); err != nil {
		return Body{}, err
	}
	if err := w.Close(); err != nil {
		return Body{}, err
	}
	return Body{ContentType: w.FormDataContentType(), Data: b.Bytes()}, nil
}

// Config describes a run.
type Config struct {
	URL         string // POST target
	Bodies      []Body // sent round-robin
	Requests    int    // total requests (0: until Duration)
	Duration    time.Duration
	Concurrency int
	Timeout     time.Duration // per request; default 30 s
}

// Result is what a run measured.
type Result struct {
	Requests  int
	Codes     map[int]int // HTTP status -> count
	Errors    int         // transport errors (no HTTP status)
	FirstErr  error
	Latencies []time.Duration // of every answered request, sorted
	Elapsed   time.Duration
}

// RPS is answered requests per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.Latencies)) / r.Elapsed.Seconds()
}

// Percentile returns the q-quantile (0..1) of the latencies, nearest rank.
func (r Result) Percentile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.Latencies))+0.5) - 1
	i = max(0, min(i, len(r.Latencies)-1))
	return r.Latencies[i]
}

// Run sends the requests and waits for every worker.
func Run(ctx context.Context, c Config) (Result, error) {
	if len(c.Bodies) == 0 || c.Concurrency < 1 || (c.Requests <= 0 && c.Duration <= 0) {
		return Result{}, errors.New("load: need bodies, concurrency >= 1 and a request count or duration")
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Duration)
		defer cancel()
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        c.Concurrency,
		MaxIdleConnsPerHost: c.Concurrency,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: c.Timeout}

	var (
		next    atomic.Int64
		mu      sync.Mutex
		res     = Result{Codes: map[int]int{}}
		wg      sync.WaitGroup
		perWork = make([][]time.Duration, c.Concurrency)
	)
	start := time.Now()
	for w := range c.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes := map[int]int{}
			errs := 0
			var firstErr error
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if c.Requests > 0 && i >= int64(c.Requests) {
					break
				}
				b := c.Bodies[int(i)%len(c.Bodies)]
				t := time.Now()
				code, err := send(ctx, client, c.URL, b)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				perWork[w] = append(perWork[w], time.Since(t))
				codes[code]++
			}
			mu.Lock()
			for k, v := range codes {
				res.Codes[k] += v
			}
			res.Errors += errs
			if res.FirstErr == nil {
				res.FirstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	for _, l := range perWork {
		res.Latencies = append(res.Latencies, l...)
	}
	slices.Sort(res.Latencies)
	res.Requests = len(res.Latencies) + res.Errors
	return res, nil
}

func send(ctx context.Context, client *http.Client, url string, b Body) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b.Data))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", b.ContentType)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}
