package e2e_test

import (
	"bytes"
	"encoding/json"
	"math"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/bench/serve/load"
	"github.com/catdog-mlops/catdog/inference"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

// TestServeBinary runs `catdog serve` with the trained model and checks the API, a real
// Prometheus scraping it, and the SIGTERM drain.
func TestServeBinary(t *testing.T) {
	s := startServe(t, "--model", fixture.modelDir, "--model-version", "3", "--drain-delay", "1s")

	var v inference.VersionResponse
	if err := json.Unmarshal(get(t, s.url+"/version").body, &v); err != nil {
		t.Fatal(err)
	}
	if v.Model.Name != "catdog-e2e" || v.Model.Version != "3" || v.InputSize != 64 || strings.Join(v.Model.Classes, ",") != "cat,dog" {
		t.Errorf("/version = %+v", v)
	}

	ok := 0
	t.Run("inputs", func(t *testing.T) {
		tests := []struct {
			name, path, contentType string
			status                  int
			reason                  string
		}{
			{"cat photo", devPhoto(t, "cat.500.jpg"), "image/jpeg", 200, ""},
			{"dog photo", devPhoto(t, "dog.500.jpg"), "image/jpeg", 200, ""},
			{"smallest photo", devPhoto(t, "dog.630.jpg"), "application/octet-stream", 200, ""},
			{"grayscale", badInput("grayscale.jpg"), "image/jpeg", 200, ""},
			{"cmyk", badInput("cmyk.jpg"), "image/jpeg", 200, ""},
			{"alpha", badInput("alpha.png"), "image/png", 200, ""},
			{"empty", badInput("empty.jpg"), "image/jpeg", 400, "empty"},
			{"not an image", badInput("fake.jpg"), "image/jpeg", 400, "unknown-format"},
			{"truncated", badInput("truncated.jpg"), "image/jpeg", 400, "truncated"},
			{"wrong type", devPhoto(t, "cat.500.jpg"), "text/plain", 415, "unsupported-media-type"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp := post(t, s.url+"/predict", tt.contentType, readFile(t, tt.path))
				if resp.status != tt.status {
					t.Fatalf("status %d, want %d: %s", resp.status, tt.status, resp.body)
				}
				if tt.status != 200 {
					var e struct{ Error inference.Error }
					if err := json.Unmarshal(resp.body, &e); err != nil || e.Error.Reason != tt.reason {
						t.Errorf("error body %s (%v), want reason %s", resp.body, err, tt.reason)
					}
					return
				}
				ok++
				var p inference.PredictResponse
				if err := json.Unmarshal(resp.body, &p); err != nil {
					t.Fatal(err)
				}
				sum := p.Probabilities["cat"] + p.Probabilities["dog"]
				if math.Abs(sum-1) > 1e-5 || (p.Label != "cat" && p.Label != "dog") || p.ModelVersion != "3" || p.Confidence < 0.5 {
					t.Errorf("prediction %+v", p)
				}
			})
		}
	})
	t.Run("body limit", func(t *testing.T) {
		big := bytes.Repeat([]byte{0xff}, 11<<20)
		if resp := post(t, s.url+"/predict", "image/jpeg", big); resp.status != http.StatusRequestEntityTooLarge {
			t.Errorf("11 MiB body: %d %s", resp.status, resp.body)
		}
	})
	t.Run("batch", func(t *testing.T) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		for _, n := range []string{"cat.501.jpg", "dog.501.jpg", "cat.502.jpg"} {
			fw, _ := w.CreateFormFile("file", n)
			fw.Write(readFile(t, devPhoto(t, n)))
		}
		w.Close()
		resp := post(t, s.url+"/predict/batch", w.FormDataContentType(), b.Bytes())
		var br inference.BatchResponse
		if err := json.Unmarshal(resp.body, &br); err != nil || resp.status != 200 || len(br.Predictions) != 3 || br.Predictions[1].Filename != "dog.501.jpg" {
			t.Errorf("batch: %d %s", resp.status, resp.body)
		}
		ok += 3
	})

	t.Run("prometheus", func(t *testing.T) {
		prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{
			Targets:        []string{strings.TrimPrefix(s.url, "http://")},
			ScrapeInterval: 500 * time.Millisecond,
		})
		eq := func(want float64) func([]testenv.Sample) bool {
			return func(s []testenv.Sample) bool { return len(s) == 1 && s[0].Value == want }
		}
		prom.WaitQuery(t, `sum(catdog_predictions_total{job="catdog"})`, 30*time.Second, eq(float64(ok)))
		prom.WaitQuery(t, `catdog_inference_requests_total{endpoint="predict",code="200"}`, 30*time.Second, eq(6))
		prom.WaitQuery(t, `catdog_inference_requests_total{endpoint="predict",code="400"}`, 30*time.Second, eq(3))
		prom.WaitQuery(t, `catdog_inference_requests_total{endpoint="predict_batch",code="200"}`, 30*time.Second, eq(1))
		prom.WaitQuery(t, `sum(catdog_inference_errors_total)`, 30*time.Second, eq(5))
		prom.WaitQuery(t, `catdog_model_info{name="catdog-e2e",version="3"}`, 30*time.Second, eq(1))
		prom.WaitQuery(t, `process_resident_memory_bytes{job="catdog"} > 0`, 30*time.Second, func(s []testenv.Sample) bool { return len(s) == 1 })
	})

	t.Run("SIGTERM drains", func(t *testing.T) {
		body, err := load.Multipart("cat.jpg", "image/jpeg", readFile(t, devPhoto(t, "cat.503.jpg")))
		if err != nil {
			t.Fatal(err)
		}
		var (
			answered, failed atomic.Int64
			badStatus        sync.Map
			wg               sync.WaitGroup
			stop             atomic.Bool
		)
		client := &http.Client{Timeout: 20 * time.Second}
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					resp, err := client.Post(s.url+"/predict", body.ContentType, bytes.NewReader(body.Data))
					if err != nil {
						failed.Add(1) // connection refused once the listener is closed
						time.Sleep(10 * time.Millisecond)
						continue
					}
					resp.Body.Close()
					answered.Add(1)
					if resp.StatusCode != 200 {
						badStatus.Store(resp.StatusCode, true)
					}
				}
			}()
		}
		time.Sleep(300 * time.Millisecond)
		before := answered.Load()
		if err := syscall.Kill(s.proc.Cmd.Process.Pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// During the drain delay /ready is 503 while predictions still succeed.
		s.waitStatus(t, "/ready", http.StatusServiceUnavailable, 900*time.Millisecond)
		deadline := time.Now().Add(20 * time.Second)
		for {
			if done, err := s.proc.Exited(); done {
				if err != nil {
					t.Errorf("serve exited with %v", err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("serve did not exit within 20s of SIGTERM")
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop.Store(true)
		wg.Wait()
		badStatus.Range(func(k, _ any) bool { t.Errorf("a request got status %v during the drain", k); return true })
		if answered.Load() <= before {
			t.Errorf("no request was answered after SIGTERM (%d before, %d total)", before, answered.Load())
		}
		out := s.proc.Output()
		for _, want := range []string{`"msg":"draining"`, `"msg":"stopped"`} {
			if !strings.Contains(out, want) {
				t.Errorf("serve output lacks %s:\n%s", want, out)
			}
		}
		if strings.Contains(out, `"level":"ERROR"`) {
			t.Errorf("errors logged:\n%s", out)
		}
	})
}
