package gha

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultAPIURL is GitHub's REST API.
const DefaultAPIURL = "https://api.github.com"

// MaxClientPayloadKeys is GitHub's limit on the top-level properties of a repository_dispatch
// client_payload.
const MaxClientPayloadKeys = 10

var repoName = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// Dispatcher sends repository_dispatch events (POST /repos/{owner}/{repo}/dispatches) to start
// workflows that listen for `on: repository_dispatch: types: [...]`. Server errors (5xx), rate
// limits (429, and 403 with an exhausted rate limit) and network errors are retried with
// exponential backoff and jitter, honouring Retry-After; other answers are final.
type Dispatcher struct {
	// APIURL is the REST API root (default DefaultAPIURL; GitHub Enterprise: https://HOST/api/v3).
	APIURL string
	// Repo is "owner/name".
	Repo string
	// Token authenticates (a fine-grained token with contents: write, or a GitHub App token).
	// It is sent only in the Authorization header and never appears in errors.
	Token string
	// Client is the HTTP client (default: 30 s timeout).
	Client *http.Client
	// Attempts bounds the tries per event (default 5).
	Attempts int
	// Backoff is the first retry delay, doubled per retry with ±20 % jitter (default 1 s).
	Backoff time.Duration
	// MaxDelay caps one wait, including a Retry-After (default 60 s).
	MaxDelay time.Duration
	// Sleep waits between attempts (default: a timer that ends early when ctx ends); tests
	// record the waits.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DispatchError is a final non-2xx answer, or the last retryable one.
type DispatchError struct {
	Status   int
	Message  string // GitHub's "message", when the body had one
	Attempts int
}

func (e *DispatchError) Error() string {
	return fmt.Sprintf("gha: repository_dispatch: HTTP %d after %d attempt(s): %s", e.Status, e.Attempts, e.Message)
}

// Dispatch sends one event of eventType with payload as client_payload.
func (d *Dispatcher) Dispatch(ctx context.Context, eventType string, payload map[string]any) error {
	if !repoName.MatchString(d.Repo) || strings.Contains(d.Repo, "..") {
		return fmt.Errorf("gha: repository %q is not owner/name", d.Repo)
	}
	if d.Token == "" {
		return errors.New("gha: no GitHub token")
	}
	if eventType == "" || len(eventType) > 100 {
		return fmt.Errorf("gha: event type %q must have 1-100 characters", eventType)
	}
	if len(payload) > MaxClientPayloadKeys {
		return fmt.Errorf("gha: client_payload has %d top-level keys, GitHub allows %d", len(payload), MaxClientPayloadKeys)
	}
	body, err := json.Marshal(map[string]any{"event_type": eventType, "client_payload": payload})
	if err != nil {
		return fmt.Errorf("gha: client_payload: %w", err)
	}
	api := strings.TrimRight(d.APIURL, "/")
	if api == "" {
		api = DefaultAPIURL
	}
	url := api + "/repos/" + d.Repo + "/dispatches"
	client := d.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	attempts, backoff, maxDelay := d.Attempts, d.Backoff, d.MaxDelay
	if attempts <= 0 {
		attempts = 5
	}
	if backoff <= 0 {
		backoff = time.Second
	}
	if maxDelay <= 0 {
		maxDelay = time.Minute
	}
	sleep := d.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	var last error
	for i := 1; i <= attempts; i++ {
		wait, err := d.try(ctx, client, url, body, i)
		if err == nil {
			return nil
		}
		last = err
		if wait < 0 || i == attempts {
			break
		}
		if wait == 0 {
			wait = backoff << (i - 1)
			wait += time.Duration((rand.Float64()*0.4 - 0.2) * float64(wait))
		}
		if err := sleep(ctx, min(wait, maxDelay)); err != nil {
			return fmt.Errorf("gha: repository_dispatch: %w (last: %w)", err, last)
		}
	}
	return last
}

// try makes one request. wait is -1 for a final answer, 0 for "retry after the backoff", or
// the server's Retry-After.
func (d *Dispatcher) try(ctx context.Context, client *http.Client, url string, body []byte, attempt int) (wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return -1, fmt.Errorf("gha: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+d.Token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "catdog-alert-relay")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		// the URL (never the token) is in the error
		return 0, fmt.Errorf("gha: repository_dispatch: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	e := &DispatchError{Status: resp.StatusCode, Attempts: attempt, Message: githubMessage(msg)}
	limited := resp.StatusCode == http.StatusForbidden && resp.Header.Get("X-RateLimit-Remaining") == "0"
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || limited {
		if ra, ok := retryAfter(resp.Header, time.Now()); ok {
			return ra, e
		}
		return 0, e
	}
	return -1, e
}

// retryAfter reads Retry-After (seconds or an HTTP date), or X-RateLimit-Reset (Unix seconds).
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return max(time.Duration(s)*time.Second, time.Millisecond), true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), time.Millisecond), true
		}
	}
	if v := h.Get("X-RateLimit-Reset"); v != "" && h.Get("X-RateLimit-Remaining") == "0" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil {
			return max(time.Unix(s, 0).Sub(now), time.Millisecond), true
		}
	}
	return 0, false
}

func githubMessage(body []byte) string {
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &m) == nil && m.Message != "" {
		return m.Message
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
