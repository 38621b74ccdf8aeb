package inference

import (
	"bytes"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/imageprep"
)

type constPredictor struct{ size int }

func (c constPredictor) Predict(_ []float32, n int) ([][]float32, error) {
	out := make([][]float32, n)
	for i := range out {
		out[i] = []float32{0.5, 0.5}
	}
	return out, nil
}

func (c constPredictor) Spec() imageprep.Spec {
	s := imageprep.DefaultSpec()
	s.Size = c.size
	return s
}

// FuzzPredict feeds arbitrary bodies through the untrusted-input path of POST /predict: body
// limit, Content-Type handling, decoding with the header pixel check, and preprocessing.
// Whatever the input, the result is a full, finite model input or an error that maps to a
// client status (400, 413, 415) with a reason — never a panic, a hang or a 5xx. The model
// workers are left out: they never see request bytes, and their background goroutines would
// make coverage nondeterministic. Seed corpus: testdata/fuzz/FuzzPredict plus the shared bad
// inputs. Run: go test -run '^$' -fuzz FuzzPredict ./inference
func FuzzPredict(f *testing.F) {
	shared := os.Getenv("CATDOG_SHARED_DATA")
	if shared == "" {
		shared = filepath.Join("..", "..", "shared", "data")
	}
	// Only the small shared inputs: large seeds stall the mutator (the big ones are covered by
	// TestPredictAcceptedInputs and TestPredictRejectsBadInput).
	for _, name := range []string{"empty.jpg", "fake.jpg", "truncated.jpg"} {
		b, err := os.ReadFile(filepath.Join(shared, "bad-inputs", name))
		if err != nil {
			f.Fatalf("seed %s: %v (set CATDOG_SHARED_DATA)", name, err)
		}
		f.Add(b)
	}
	const size = 16
	// A low pixel bound keeps each execution cheap; the bound itself is part of what is tested.
	s, err := New(constPredictor{size}, NewRegistry(), nil,
		WithLimits(imageprep.Limits{MaxBytes: 1 << 18, MaxPixels: 1 << 16}), WithMaxBodyBytes(1<<18))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/predict", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/octet-stream")
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, s.cfg.maxBody)
		start := time.Now()
		x, err := s.decodeSingle(r, &record{})
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("decoding %d bytes took %v", len(body), d)
		}
		if err != nil {
			e := toError(err)
			switch e.Status {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			default:
				t.Fatalf("status %d for a client input: %v", e.Status, err)
			}
			if e.Reason == "" || e.Message == "" {
				t.Fatalf("error without reason or message: %+v", e)
			}
			return
		}
		if len(x) != 3*size*size {
			t.Fatalf("decoded image has %d bytes, want %d", len(x), 3*size*size)
		}
		// What the worker feeds the model: the normalised floats must be finite.
		in := make([]float32, 3*size*size)
		s.spec.Normalize(x, in)
		for _, v := range in {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("non-finite model input %v", v)
			}
		}
	})
}
