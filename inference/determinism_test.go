package inference_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/inference"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

// digestPredictor answers P(cat) from a hash of every bit of the normalised input, so any
// change to any pixel changes the answer (a model maps nearby inputs to nearby answers and
// could hide a small change; this cannot).
type digestPredictor struct{ size int }

func (d digestPredictor) Spec() imageprep.Spec {
	s := imageprep.DefaultSpec()
	s.Size = d.size
	return s
}

func (d digestPredictor) Predict(x []float32, n int) ([][]float32, error) {
	per := 3 * d.size * d.size
	out := make([][]float32, n)
	for i := range out {
		out[i] = digestProbs(x[i*per : (i+1)*per])
	}
	return out, nil
}

func digestProbs(img []float32) []float32 {
	h := fnv.New64a()
	var b [4]byte
	for _, v := range img {
		u := math.Float32bits(v)
		b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
		h.Write(b[:])
	}
	cat := float32(h.Sum64()%(1<<20)+1) / (1<<20 + 2)
	return []float32{cat, 1 - cat}
}

// upload is one image posted to /predict and what the service must answer for it.
type upload struct {
	name   string
	data   []byte
	status int
	reason string // for rejected uploads
}

// TestSamePhotoSameAnswer posts photos once, one at a time, then again and again while bad
// and odd uploads (truncated, CMYK, grayscale, empty, not an image, alpha PNG) arrive
// concurrently from more clients than there are cores, and requires every answer to be the
// first one, to the bit. A truncated upload once left its pooled JPEG decoder mid-header, so
// the next photo decoded on it took the standard-library path and got other probabilities.
func TestSamePhotoSameAnswer(t *testing.T) {
	dev := filepath.Join(testenv.SharedData(t), "petimages-dev")
	var photos []upload
	for _, c := range []string{"Cat", "Dog"} {
		m, err := filepath.Glob(filepath.Join(dev, c, "*.jpg"))
		if err != nil || len(m) == 0 {
			t.Fatalf("no dev photos in %s: %v", c, err)
		}
		sort.Strings(m)
		for i := 0; i < len(m); i += len(m) / 8 {
			photos = append(photos, upload{name: filepath.Base(m[i]), data: readFile(t, m[i]), status: 200})
		}
	}
	for i, sz := range [][2]int{{37, 23}, {160, 90}, {301, 457}} { // image/jpeg: 4:2:0 and gray
		img := image.NewRGBA(image.Rect(0, 0, sz[0], sz[1]))
		gray := image.NewGray(img.Rect)
		for y := 0; y < sz[1]; y++ {
			for x := 0; x < sz[0]; x++ {
				img.Set(x, y, color.RGBA{uint8(x * 7), uint8(y * 5), uint8(x*y + i*40), 255})
				gray.SetGray(x, y, color.Gray{uint8(x*3 + y)})
			}
		}
		for _, m := range []image.Image{img, gray} {
			var b bytes.Buffer
			if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 70 + 10*i}); err != nil {
				t.Fatal(err)
			}
			photos = append(photos, upload{name: fmt.Sprintf("synthetic %T %dx%d", m, sz[0], sz[1]), data: b.Bytes(), status: 200})
		}
	}
	bad := []upload{
		{name: "truncated.jpg", status: 400, reason: "truncated"},
		{name: "cmyk.jpg", status: 200},
		{name: "grayscale.jpg", status: 200},
		{name: "empty.jpg", status: 400, reason: "empty"},
		{name: "fake.jpg", status: 400, reason: "unknown-format"},
		{name: "alpha.png", status: 200},
	}
	for i := range bad {
		bad[i].data = badInput(t, bad[i].name)
	}
	configs := []struct {
		name string
		opts []inference.Option
	}{
		{"one worker, no micro-batching", []inference.Option{inference.WithWorkers(1)}},
		{"micro-batching", []inference.Option{inference.WithBatching(8, 2*time.Millisecond)}},
	}
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			svc, err := inference.New(digestPredictor{size: testSize}, inference.NewRegistry(), slog.New(slog.DiscardHandler), cfg.opts...)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(svc)
			t.Cleanup(func() {
				srv.Close()
				svc.Close()
			})
			h := &harness{t: t, svc: svc, srv: srv}
			h.waitReady()
			// The first answers, one request at a time.
			want := map[string]inference.PredictResponse{}
			for _, u := range append(append([]upload{}, photos...), bad...) {
				got, err := predictOnce(srv.URL, u)
				if err != nil {
					t.Fatal(err)
				}
				want[u.name] = got
			}
			// The same photos again, several times, while bad and odd uploads keep coming: every
			// client sends its share of the photos, each right after a bad or odd upload.
			const rounds = 8
			clients := 3*runtime.NumCPU() + 1
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				differs []string
				total   int
			)
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := 0; r < rounds; r++ {
						for k := c; k < len(photos)+len(bad); k += clients {
							for _, u := range []upload{bad[(k+r)%len(bad)], photos[(k+r)%len(photos)]} {
								got, err := predictOnce(srv.URL, u)
								mu.Lock()
								total++
								switch {
								case err != nil:
									differs = append(differs, err.Error())
								case got.Probabilities["cat"] != want[u.name].Probabilities["cat"] || got.Probabilities["dog"] != want[u.name].Probabilities["dog"]:
									differs = append(differs, fmt.Sprintf("%s: P(cat) %v, first answer %v", u.name, got.Probabilities["cat"], want[u.name].Probabilities["cat"]))
								}
								mu.Unlock()
							}
						}
					}
				}()
			}
			wg.Wait()
			for k, d := range differs {
				if k == 5 {
					t.Errorf("... and %d more", len(differs)-k)
					break
				}
				t.Error(d)
			}
			if len(differs) > 0 {
				t.Fatalf("%d of %d answers differ from the first answer for the same upload", len(differs), total)
			}
			// And the first answers are the model's for the shared preprocessing of each photo.
			spec := digestPredictor{size: testSize}.Spec()
			for _, u := range photos {
				x, err := spec.Preprocess(bytes.NewReader(u.data), imageprep.DefaultLimits())
				if err != nil {
					t.Fatal(err)
				}
				if p := digestProbs(x); float64(p[0]) != want[u.name].Probabilities["cat"] {
					t.Errorf("%s: P(cat) %v over HTTP, %v from Spec.Preprocess", u.name, want[u.name].Probabilities["cat"], p[0])
				}
			}
		})
	}
}

// predictOnce posts u to /predict and checks the status (and the reason of a rejection).
func predictOnce(url string, u upload) (inference.PredictResponse, error) {
	var got inference.PredictResponse
	resp, err := http.Post(url+"/predict", "application/octet-stream", bytes.NewReader(u.data))
	if err != nil {
		return got, fmt.Errorf("%s: %w", u.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return got, fmt.Errorf("%s: %w", u.name, err)
	}
	if resp.StatusCode != u.status {
		return got, fmt.Errorf("%s: status %d, want %d: %s", u.name, resp.StatusCode, u.status, body)
	}
	if u.status != http.StatusOK {
		var e struct {
			Error inference.Error `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Reason != u.reason {
			return got, fmt.Errorf("%s: error %s, want reason %q", u.name, body, u.reason)
		}
		return got, nil
	}
	if err := json.Unmarshal(body, &got); err != nil {
		return got, fmt.Errorf("%s: %w: %s", u.name, err, body)
	}
	return got, nil
}
