package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// SmokeOptions configure the smoke test. Sample is a photo (JPEG or PNG) to classify.
type SmokeOptions struct {
	Sample      []byte
	ContentType string // default image/jpeg
	// Classes, when set, must equal the model's classes (GET /version).
	Classes []string
	// Timeout bounds the wait for /ready of each pod (default 2 minutes); Predictions is how
	// many /predict calls are made (default 2 per pod, spread over the pods).
	Timeout     time.Duration
	Predictions int
}

// ErrSmoke is wrapped by every smoke-test failure.
var ErrSmoke = errors.New("smoke test failed")

// Smoke checks the pods of the Deployment's current revision, each one through the API
// server's pod proxy (not the Service: right after a rollout its endpoints can still name
// pods of the previous revision — seen against kube-apiserver): /health answers 200, /ready
// answers 200 (waiting for it within the timeout), /version names the model's classes, and
// /predict of the sample returns a label among them with probabilities that sum to 1.
// Predictions are spread over the pods.
func (d *Deployer) Smoke(ctx context.Context, spec Spec, o SmokeOptions) error {
	spec = spec.WithDefaults()
	if len(o.Sample) == 0 {
		return fmt.Errorf("%w: no sample photo given", ErrSmoke)
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.ContentType == "" {
		o.ContentType = "image/jpeg"
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSmoke, fmt.Sprintf(format, args...))
	}
	rev, pods, err := d.currentPods(ctx, spec)
	if err != nil {
		return fail("%v", err)
	}
	if len(pods) == 0 {
		return fail("no ready pod of revision %d", rev)
	}
	if o.Predictions == 0 {
		o.Predictions = 2 * len(pods)
	}
	ns := spec.Namespace
	port := strconv.Itoa(int(spec.Port))
	get := func(pod, path string) ([]byte, error) {
		return d.Client.CoreV1().Pods(ns).ProxyGet("http", pod, port, path, nil).DoRaw(ctx)
	}
	var classes []string
	for _, pod := range pods {
		via := "pods/" + pod + "/proxy"
		if _, err := get(pod, "/health"); err != nil {
			return fail("GET /health through %s: %v", via, d.explain(err, "pod proxy"))
		}
		deadline := time.Now().Add(o.Timeout)
		for {
			_, err := get(pod, "/ready")
			if err == nil {
				break
			}
			if apierrors.IsForbidden(err) || time.Now().After(deadline) || ctx.Err() != nil {
				return fail("GET /ready through %s did not answer 200 within %v: %v", via, o.Timeout, d.explain(err, "pod proxy"))
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
		raw, err := get(pod, "/version")
		if err != nil {
			return fail("GET /version through %s: %v", via, err)
		}
		var ver struct {
			Model struct {
				Classes []string `json:"classes"`
			} `json:"model"`
		}
		if err := json.Unmarshal(raw, &ver); err != nil || len(ver.Model.Classes) < 2 {
			return fail("GET /version through %s: no model classes in %.200q (%v)", via, raw, err)
		}
		if len(o.Classes) > 0 && !slices.Equal(o.Classes, ver.Model.Classes) {
			return fail("pod %s: the model's classes are %v, want %v", pod, ver.Model.Classes, o.Classes)
		}
		if classes != nil && !slices.Equal(classes, ver.Model.Classes) {
			return fail("pods of one revision serve different classes: %v and %v", classes, ver.Model.Classes)
		}
		classes = ver.Model.Classes
	}
	for i := range o.Predictions {
		pod := pods[i%len(pods)]
		body, err := d.Client.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").
			Name("http:"+pod+":"+port).SubResource("proxy").Suffix("predict").SetHeader("Content-Type", o.ContentType).
			Body(o.Sample).DoRaw(ctx)
		if err != nil {
			return fail("POST /predict to pod %s (%d of %d): %v: %.300s", pod, i+1, o.Predictions, err, body)
		}
		if err := checkPrediction(body, classes); err != nil {
			return fail("POST /predict to pod %s (%d of %d): %v", pod, i+1, o.Predictions, err)
		}
	}
	return nil
}

// currentPods returns the Deployment's revision and the names of its ready, not terminating
// pods of that revision (those of the ReplicaSet whose revision is the Deployment's).
func (d *Deployer) currentPods(ctx context.Context, spec Spec) (int64, []string, error) {
	dep, rss, err := d.replicaSets(ctx, spec.Namespace, spec.Name)
	if err != nil {
		return 0, nil, err
	}
	rev := Revision(dep)
	var cur *appsv1.ReplicaSet
	for _, rs := range rss {
		if Revision(rs) == rev {
			cur = rs
		}
	}
	if cur == nil {
		return rev, nil, fmt.Errorf("no ReplicaSet of revision %d", rev)
	}
	sel := labels.Set(spec.selectorLabels())
	sel[appsv1.DefaultDeploymentUniqueLabelKey] = cur.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	list, err := d.Client.CoreV1().Pods(spec.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return rev, nil, d.explain(err, "list pods of "+cur.Name)
	}
	var out []string
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil || !metav1.IsControlledBy(&p, cur) {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				out = append(out, p.Name)
			}
		}
	}
	sort.Strings(out)
	return rev, out, nil
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
