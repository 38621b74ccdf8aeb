package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// SmokeOptions configure the smoke test. Sample is a photo (JPEG or PNG) to classify.
type SmokeOptions struct {
	Sample      []byte
	ContentType string // default image/jpeg
	// Classes, when set, must equal the model's classes (GET /version).
	Classes []string
	// Timeout bounds the wait for /ready (default 2 minutes); Predictions is how many
	// /predict calls are made (default 2 per replica, spread over the pods by the Service).
	Timeout     time.Duration
	Predictions int
}

// ErrSmoke is wrapped by every smoke-test failure.
var ErrSmoke = errors.New("smoke test failed")

// Smoke checks the new version through the API server's service proxy: /health answers 200,
// /ready answers 200 (waiting for it within the timeout), /version names the model's classes,
// and /predict of the sample returns a label among them with probabilities that sum to 1.
func (d *Deployer) Smoke(ctx context.Context, spec Spec, o SmokeOptions) error {
	spec = spec.WithDefaults()
	if len(o.Sample) == 0 {
		return fmt.Errorf("%w: no sample photo given", ErrSmoke)
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Predictions == 0 {
		o.Predictions = 2 * int(spec.Replicas)
	}
	if o.ContentType == "" {
		o.ContentType = "image/jpeg"
	}
	svc := d.Client.CoreV1().Services(spec.Namespace)
	target := SmokeProxyName(spec)
	get := func(path string) ([]byte, error) {
		return svc.ProxyGet("http", spec.Name, PortName, path, nil).DoRaw(ctx)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSmoke, fmt.Sprintf(format, args...))
	}

	if _, err := get("/health"); err != nil {
		return fail("GET /health through services/%s/proxy: %v", target, d.explain(err, "service proxy"))
	}
	deadline := time.Now().Add(o.Timeout)
	for {
		_, err := get("/ready")
		if err == nil {
			break
		}
		if apierrors.IsForbidden(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return fail("GET /ready did not answer 200 within %v: %v", o.Timeout, d.explain(err, "service proxy"))
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	raw, err := get("/version")
	if err != nil {
		return fail("GET /version: %v", err)
	}
	var ver struct {
		Model struct {
			Classes []string `json:"classes"`
		} `json:"model"`
	}
	if err := json.Unmarshal(raw, &ver); err != nil || len(ver.Model.Classes) < 2 {
		return fail("GET /version: no model classes in %.200q (%v)", raw, err)
	}
	classes := ver.Model.Classes
	if len(o.Classes) > 0 && !slices.Equal(o.Classes, classes) {
		return fail("the model's classes are %v, want %v", classes, o.Classes)
	}
	for i := range o.Predictions {
		body, err := d.Client.CoreV1().RESTClient().Post().Namespace(spec.Namespace).Resource("services").
			Name(target).SubResource("proxy").Suffix("predict").SetHeader("Content-Type", o.ContentType).
			Body(o.Sample).DoRaw(ctx)
		if err != nil {
			return fail("POST /predict (%d of %d): %v: %.300s", i+1, o.Predictions, err, body)
		}
		if err := checkPrediction(body, classes); err != nil {
			return fail("POST /predict (%d of %d): %v", i+1, o.Predictions, err)
		}
	}
	return nil
}

// checkPrediction: a label among classes, a probability per class in [0, 1], summing to 1.
func checkPrediction(body []byte, classes []string) error {
	var p struct {
		Label         string             `json:"label"`
		Probabilities map[string]float64 `json:"probabilities"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("not a prediction: %v: %.200q", err, body)
	}
	if !slices.Contains(classes, p.Label) {
		return fmt.Errorf("label %q is not one of the model's classes %v", p.Label, classes)
	}
	if len(p.Probabilities) != len(classes) {
		return fmt.Errorf("%d probabilities for %d classes: %v", len(p.Probabilities), len(classes), p.Probabilities)
	}
	sum := 0.0
	for _, c := range classes {
		v, ok := p.Probabilities[c]
		if !ok || v < 0 || v > 1 || math.IsNaN(v) {
			return fmt.Errorf("probability of %q is %v", c, v)
		}
		sum += v
	}
	if math.Abs(sum-1) > 1e-3 {
		return fmt.Errorf("probabilities sum to %.6f, not 1: %v", sum, p.Probabilities)
	}
	return nil
}
