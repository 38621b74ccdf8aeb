// Package alertrelay turns Alertmanager webhook notifications into GitHub repository_dispatch
// events: a firing group of the drift alert (CatdogInputDrift) starts the retraining workflow,
// at most once per alert group and repeat interval.
package alertrelay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Message is Alertmanager's webhook payload (version 4).
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"` // firing | resolved
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a webhook message.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Validate checks what the relay relies on.
func (m *Message) Validate() error {
	switch {
	case m.Version != "4":
		return fmt.Errorf("alertrelay: webhook version %q, want \"4\"", m.Version)
	case m.Status != "firing" && m.Status != "resolved":
		return fmt.Errorf("alertrelay: status %q, want firing or resolved", m.Status)
	case m.GroupKey == "":
		return errors.New("alertrelay: no groupKey")
	case len(m.Alerts) == 0:
		return errors.New("alertrelay: no alerts")
	}
	for i, a := range m.Alerts {
		if a.Status != "firing" && a.Status != "resolved" {
			return fmt.Errorf("alertrelay: alert %d has status %q", i, a.Status)
		}
		if a.Labels["alertname"] == "" {
			return fmt.Errorf("alertrelay: alert %d has no alertname label", i)
		}
	}
	return nil
}

// Dispatcher sends one repository_dispatch event (ci/gha.Dispatcher implements it).
type Dispatcher interface {
	Dispatch(ctx context.Context, eventType string, payload map[string]any) error
}

// Options configure a Relay. Zero values take the defaults.
type Options struct {
	// AlertName is the alert that triggers retraining (default "CatdogInputDrift").
	AlertName string
	// EventType is the repository_dispatch type (default "retrain").
	EventType string
	// RepeatInterval is the least time between two dispatches for one alert group (default
	// 12h, Alertmanager's usual repeat_interval).
	RepeatInterval time.Duration
	// MaxBodyBytes bounds a webhook body (default 1 MiB).
	MaxBodyBytes int64
	// FeaturesAnnotation names the annotation listing the drifted features, separated by
	// commas or spaces (default "drifted_features").
	FeaturesAnnotation string
	// Log receives one line per decision (never the token, which the Dispatcher holds).
	Log *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Relay is the webhook receiver. It implements http.Handler.
type Relay struct {
	o    Options
	d    Dispatcher
	mu   sync.Mutex
	sent map[string]time.Time // group key -> last dispatch
	busy map[string]bool      // group key -> dispatch in flight
}

var _ http.Handler = (*Relay)(nil)

// New returns a relay that dispatches through d.
func New(d Dispatcher, o Options) *Relay {
	if o.AlertName == "" {
		o.AlertName = "CatdogInputDrift"
	}
	if o.EventType == "" {
		o.EventType = "retrain"
	}
	if o.RepeatInterval <= 0 {
		o.RepeatInterval = 12 * time.Hour
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.FeaturesAnnotation == "" {
		o.FeaturesAnnotation = "drifted_features"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Relay{o: o, d: d, sent: map[string]time.Time{}, busy: map[string]bool{}}
}

// Result is the JSON answer to a webhook.
type Result struct {
	Dispatched bool   `json:"dispatched"`
	Reason     string `json:"reason"`
}

// ServeHTTP handles POST / (and any path): 200 with a Result, 400 for a bad body, 405 for
// other methods, 502 when GitHub refused or could not be reached (Alertmanager retries).
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/health" && req.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST an Alertmanager webhook"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.o.MaxBodyBytes))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "reading the body: " + err.Error()})
		return
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "not an Alertmanager webhook: " + err.Error()})
		return
	}
	if err := m.Validate(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	res, err := r.Handle(req.Context(), &m)
	if err != nil {
		r.o.Log.Error("dispatch failed", "group_key", m.GroupKey, "error", err.Error())
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// Handle decides on one validated message and dispatches when it is a firing group of the
// drift alert not dispatched within the repeat interval.
func (r *Relay) Handle(ctx context.Context, m *Message) (Result, error) {
	var firing []Alert
	for _, a := range m.Alerts {
		if a.Status == "firing" && a.Labels["alertname"] == r.o.AlertName {
			firing = append(firing, a)
		}
	}
	if m.Status != "firing" || len(firing) == 0 {
		r.o.Log.Info("webhook ignored", "group_key", m.GroupKey, "status", m.Status, "alerts", len(m.Alerts))
		return Result{Reason: fmt.Sprintf("no firing %s alert", r.o.AlertName)}, nil
	}
	now := r.o.Now()
	r.mu.Lock()
	if r.busy[m.GroupKey] {
		r.mu.Unlock()
		return Result{Reason: "a dispatch for this group is in progress"}, nil
	}
	if last, ok := r.sent[m.GroupKey]; ok && now.Sub(last) < r.o.RepeatInterval {
		r.mu.Unlock()
		r.o.Log.Info("webhook deduplicated", "group_key", m.GroupKey, "last_dispatch", last.UTC().Format(time.RFC3339))
		return Result{Reason: "already dispatched for this group at " + last.UTC().Format(time.RFC3339)}, nil
	}
	r.busy[m.GroupKey] = true
	for k, t := range r.sent { // keep the map bounded: forget groups past their interval
		if now.Sub(t) >= r.o.RepeatInterval {
			delete(r.sent, k)
		}
	}
	r.mu.Unlock()

	payload := r.payload(m, firing)
	err := r.d.Dispatch(ctx, r.o.EventType, payload)
	r.mu.Lock()
	delete(r.busy, m.GroupKey)
	if err == nil {
		r.sent[m.GroupKey] = now
	}
	r.mu.Unlock()
	if err != nil {
		return Result{}, err
	}
	r.o.Log.Info("retraining dispatched", "group_key", m.GroupKey, "event_type", r.o.EventType,
		"drifted_features", payload["drifted_features"], "alerts", len(firing))
	return Result{Dispatched: true, Reason: "dispatched " + r.o.EventType}, nil
}

// payload is the client_payload: at most 10 top-level keys (GitHub's limit).
func (r *Relay) payload(m *Message, firing []Alert) map[string]any {
	labels := map[string]string{}
	for k, v := range m.CommonLabels {
		labels[k] = v
	}
	if len(labels) == 0 {
		labels = firing[0].Labels
	}
	features := map[string]bool{}
	starts := firing[0].StartsAt
	for _, a := range firing {
		for _, f := range strings.FieldsFunc(a.Annotations[r.o.FeaturesAnnotation], func(c rune) bool { return c == ',' || c == ' ' || c == '\n' }) {
			features[f] = true
		}
		if a.StartsAt.Before(starts) {
			starts = a.StartsAt
		}
	}
	list := make([]string, 0, len(features))
	for f := range features {
		list = append(list, f)
	}
	sort.Strings(list)
	return map[string]any{
		"alertname":        r.o.AlertName,
		"group_key":        m.GroupKey,
		"labels":           labels,
		"drifted_features": list,
		"summary":          firing[0].Annotations["summary"],
		"starts_at":        starts.UTC().Format(time.RFC3339),
		"alerts":           len(firing),
		"alertmanager":     m.ExternalURL,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
