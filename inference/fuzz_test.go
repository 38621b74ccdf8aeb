package inference_test

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/inference"
)

// FuzzPredict feeds arbitrary bodies through POST /predict (decode, limits, preprocessing,
// worker): whatever the input, the answer is 200 with probabilities or a JSON client error,
// never a 5xx or a crash. The seed corpus is in testdata/fuzz/FuzzPredict plus the shared
// bad inputs. Run with: go test -run '^$' -fuzz FuzzPredict ./inference
func FuzzPredict(f *testing.F) {
	for _, name := range []string{"alpha.png", "cmyk.jpg", "empty.jpg", "fake.jpg", "grayscale.jpg", "truncated.jpg"} {
		f.Add(badInput(f, name))
	}
	pred := newFixed(16)
	// A low pixel bound keeps each iteration cheap; the bound itself is what is being tested.
	svc, err := inference.New(pred, inference.NewRegistry(), nil,
		inference.WithLimits(imageprep.Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 20}),
		inference.WithMaxBodyBytes(1<<20))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(svc.Close)
	if err := svc.WaitReady(f.Context()); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/predict", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		rec := httptest.NewRecorder()
		svc.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var got inference.PredictResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("200 with a non-JSON body: %v", err)
			}
			if sum := got.Probabilities["cat"] + got.Probabilities["dog"]; math.Abs(sum-1) > 1e-5 {
				t.Fatalf("probabilities %v", got.Probabilities)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			var got struct{ Error inference.Error }
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Error.Reason == "" || got.Error.Status != rec.Code {
				t.Fatalf("%d with body %q (%v)", rec.Code, rec.Body.String(), err)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	})
}
