package mlflowclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-resty/resty/v2"
)

// Defaults of the options below.
const (
	defaultTimeout      = 120 * time.Second // per request, like MLFLOW_HTTP_REQUEST_TIMEOUT
	defaultUserAgent    = "catdog-mlflowclient/1"
	maxJSONResponseSize = 64 << 20 // bound on any JSON answer
)

// RetryPolicy says how transient failures are retried. The wait before retry n (0-based) is
// min(MaxDelay, BaseDelay*2^n) plus a random jitter in [0, Jitter), or the server's
// Retry-After when it is longer (capped at MaxDelay).
type RetryPolicy struct {
	MaxRetries int           // retries after the first attempt; 0 disables retrying
	BaseDelay  time.Duration // first back-off
	MaxDelay   time.Duration // cap of one back-off (and of Retry-After)
	Jitter     time.Duration // random extra wait
}

// defaultRetryPolicy is 6 retries, 500ms doubling to at most 30s, 500ms jitter
// (about 1 minute in total; the Python client waits about 4 minutes).
func defaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxRetries: 6, BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second, Jitter: 500 * time.Millisecond}
}

func (p RetryPolicy) wait(attempt int, retryAfter time.Duration) time.Duration {
	d := p.BaseDelay << min(attempt, 30)
	if d > p.MaxDelay || d <= 0 {
		d = p.MaxDelay
	}
	if retryAfter > d {
		d = min(retryAfter, p.MaxDelay)
	}
	if p.Jitter > 0 {
		d += rand.N(p.Jitter)
	}
	return d
}

// Client talks to one MLflow tracking server. Create it with New or NewFromEnv.
type Client struct {
	base      *url.URL // tracking URI without credentials; its path is kept as a prefix
	rc        *resty.Client
	retry     RetryPolicy
	timeout   time.Duration
	userAgent string
	token     string
	user      string
	password  string
	log       *slog.Logger
}

// Option configures a Client.
type Option func(*config)

type config struct {
	httpClient  *http.Client
	token       string
	user, pass  string
	insecureTLS bool
	retry       RetryPolicy
	timeout     time.Duration
	userAgent   string
	log         *slog.Logger
}

// withHTTPClient uses hc for every request (default: a new client with Go's default transport).
func withHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// withToken sends "Authorization: Bearer token" (default: none). Basic auth wins when both are set,
// as in the Python client.
func withToken(token string) Option { return func(c *config) { c.token = token } }

// withBasicAuth sends HTTP basic credentials (default: none).
func withBasicAuth(user, password string) Option {
	return func(c *config) { c.user, c.pass = user, password }
}

// withInsecureTLS turns TLS certificate verification off (default: verified).
func withInsecureTLS(insecure bool) Option { return func(c *config) { c.insecureTLS = insecure } }

// WithRetry sets the retry policy (default: defaultRetryPolicy()).
func WithRetry(p RetryPolicy) Option { return func(c *config) { c.retry = p } }

// WithTimeout bounds each HTTP request (default: defaultTimeout). Artifact transfers are
// bounded by the context only.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithLogger logs retries at debug/warn level (default: discard). Credentials are never logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// New returns a client for the tracking server at trackingURI (http or https; a path prefix,
// e.g. http://host/mlflow, is kept).
func New(trackingURI string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(trackingURI, "/"))
	if err != nil {
		return nil, fmt.Errorf("mlflow: tracking URI: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("mlflow: tracking URI %q: only http and https tracking servers are supported", redactURL(u))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("mlflow: tracking URI %q has no host", redactURL(u))
	}
	cfg := config{retry: defaultRetryPolicy(), timeout: defaultTimeout, userAgent: defaultUserAgent}
	if u.User != nil { // credentials in the URI become basic auth and are removed from the URL
		cfg.user = u.User.Username()
		cfg.pass, _ = u.User.Password()
		u.User = nil
	}
	for _, o := range opts {
		o(&cfg)
	}
	hc := cfg.httpClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.insecureTLS {
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // requested via MLFLOW_TRACKING_INSECURE_TLS
		}
		hc = &http.Client{Transport: tr}
	}
	log := cfg.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.user != "" && u.Scheme == "http" {
		log.Warn(insecureAuthWarning, "server", redactURL(u))
	}
	rc := resty.NewWithClient(hc)
	rc.SetLogger(restyLogger{log}) // resty's own messages go to our (default: silent) logger
	rc.SetResponseBodyLimit(maxJSONResponseSize)
	rc.SetPreRequestHook(func(_ *resty.Client, r *http.Request) error {
		// stream artifact bodies with an explicit Content-Length (see uploadFile)
		if n, ok := r.Context().Value(contentLengthKey{}).(int64); ok {
			r.ContentLength = n
			if n == 0 {
				r.Body = http.NoBody
			}
		}
		return nil
	})
	return &Client{base: u, rc: rc, retry: cfg.retry, timeout: cfg.timeout, userAgent: cfg.userAgent,
		token: cfg.token, user: cfg.user, password: cfg.pass, log: log}, nil
}

// Environment variables read by NewFromEnv (the names the Python client uses).
const (
	EnvTrackingURI      = "MLFLOW_TRACKING_URI"
	EnvTrackingToken    = "MLFLOW_TRACKING_TOKEN"
	EnvTrackingUsername = "MLFLOW_TRACKING_USERNAME"
	EnvTrackingPassword = "MLFLOW_TRACKING_PASSWORD"
	EnvInsecureTLS      = "MLFLOW_TRACKING_INSECURE_TLS"
)

// NewFromEnv builds a client from MLFLOW_TRACKING_URI (or uri when not empty),
// MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD and MLFLOW_TRACKING_INSECURE_TLS.
// opts are applied after the environment.
func NewFromEnv(uri string, opts ...Option) (*Client, error) {
	if uri == "" {
		uri = os.Getenv(EnvTrackingURI)
	}
	if uri == "" {
		return nil, fmt.Errorf("mlflow: no tracking URI (set %s)", EnvTrackingURI)
	}
	var env []Option
	if t := os.Getenv(EnvTrackingToken); t != "" {
		env = append(env, withToken(t))
	}
	if u, p := os.Getenv(EnvTrackingUsername), os.Getenv(EnvTrackingPassword); u != "" && p != "" {
		env = append(env, withBasicAuth(u, p))
	}
	if v, _ := strconv.ParseBool(os.Getenv(EnvInsecureTLS)); v {
		env = append(env, withInsecureTLS(true))
	}
	return New(uri, append(env, opts...)...)
}

// TrackingURI returns the server URI (without credentials).
func (c *Client) TrackingURI() string { return c.base.String() }

func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	cp := *u
	if cp.User != nil {
		cp.User = url.User("REDACTED")
	}
	q := cp.Query()
	for k := range q {
		lk := strings.ToLower(k)
		if strings.Contains(lk, "token") || strings.Contains(lk, "secret") || strings.Contains(lk, "password") || strings.Contains(lk, "sig") {
			q.Set(k, "REDACTED")
		}
	}
	if len(q) > 0 {
		cp.RawQuery = q.Encode()
	}
	return cp.String()
}

type contentLengthKey struct{}

// request describes one API call.
type request struct {
	method string
	path   string     // full path below the tracking URI, e.g. /api/2.0/mlflow/runs/get
	query  url.Values // GET parameters
	body   any        // JSON body for non-GET methods
	out    any        // decoded JSON answer (may be nil)
	// idempotent calls are retried on every transient failure; others only when the
	// server provably did not process them.
	idempotent bool
}

func (c *Client) url(path string) string {
	return c.base.String() + path
}

func api(path string) string { return "/api/2.0/mlflow" + path }

// do runs r with retries and decodes the JSON answer into r.out.
func (c *Client) do(ctx context.Context, r request) error {
	var payload []byte
	if r.method != http.MethodGet && r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return fmt.Errorf("mlflow: encode %s: %w", r.path, err)
		}
	} else if r.method != http.MethodGet {
		payload = []byte("{}")
	}
	return c.retrying(ctx, r.method, r.path, r.idempotent, func(ctx context.Context) error {
		req := c.newReq(ctx)
		if r.query != nil {
			req.SetQueryParamsFromValues(r.query)
		}
		if payload != nil {
			req.SetHeader("Content-Type", "application/json").SetBody(payload)
		}
		resp, err := req.Execute(r.method, c.url(r.path))
		if err != nil {
			return err
		}
		if err := c.checkError(resp.RawResponse, resp.Body()); err != nil {
			return err
		}
		if r.out != nil {
			body := resp.Body()
			if len(bytes.TrimSpace(body)) == 0 {
				body = []byte("{}")
			}
			if err := json.Unmarshal(body, r.out); err != nil {
				return fmt.Errorf("mlflow: %s %s: decode answer: %w", r.method, redactURL(resp.RawResponse.Request.URL), err)
			}
		}
		return nil
	})
}

// newReq returns a resty request bound to ctx with auth and user agent set.
func (c *Client) newReq(ctx context.Context) *resty.Request {
	req := c.rc.R().SetContext(ctx).SetHeader("User-Agent", c.userAgent).SetHeader("Accept", "application/json")
	switch {
	case c.user != "" && c.password != "":
		req.SetBasicAuth(c.user, c.password)
	case c.token != "":
		req.SetAuthToken(c.token)
	}
	return req
}

// checkError turns a non-2xx answer into an *APIError.
func (c *Client) checkError(resp *http.Response, body []byte) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &APIError{Method: resp.Request.Method, URL: redactURL(resp.Request.URL), StatusCode: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	var jerr struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(body, &jerr) == nil && jerr.ErrorCode != "" {
		e.ErrorCode, e.Message = jerr.ErrorCode, jerr.Message
	} else {
		e.ErrorCode = codeForStatus(resp.StatusCode)
		msg := strings.TrimSpace(string(body))
		if len(msg) > maxErrorBody {
			msg = msg[:maxErrorBody] + "…"
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		e.Message = msg
	}
	return e
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// retrying runs attempt until it succeeds, fails permanently, or the policy is exhausted.
// Each attempt gets its own timeout when the client has one and timeout is true.
func (c *Client) retrying(ctx context.Context, method, path string, idempotent bool, attempt func(context.Context) error) error {
	return c.retryingT(ctx, method, path, idempotent, true, attempt)
}

func (c *Client) retryingT(ctx context.Context, method, path string, idempotent, timeout bool, attempt func(context.Context) error) error {
	for n := 0; ; n++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if timeout && c.timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, c.timeout)
		}
		err := attempt(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("mlflow: %s %s: %w", method, path, errors.Join(ctx.Err(), err))
		}
		retryAfter, retryable := classify(err, idempotent)
		if !retryable || n >= c.retry.MaxRetries {
			var apiErr *APIError
			if errors.As(err, &apiErr) {
				return err
			}
			where := path
			if strings.HasPrefix(path, "/") {
				where = c.url(path)
			}
			return fmt.Errorf("mlflow: %s %s: %w", method, where, err)
		}
		wait := c.retry.wait(n, retryAfter)
		c.log.Warn("mlflow: retrying", "method", method, "path", path, "attempt", n+1, "wait", wait, "err", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("mlflow: %s %s: %w", method, path, errors.Join(ctx.Err(), err))
		case <-t.C:
		}
	}
}

// classify says whether err may be retried. Non-idempotent calls are retried only when the
// server cannot have acted on them: connection refused, 429 and 503.
func classify(err error, idempotent bool) (retryAfter time.Duration, retry bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		if !apiErr.Temporary() {
			return 0, false
		}
		if !idempotent && apiErr.StatusCode != http.StatusTooManyRequests && apiErr.StatusCode != http.StatusServiceUnavailable {
			return 0, false
		}
		return apiErr.RetryAfter, true
	}
	var certErr *tls.CertificateVerificationError
	var authErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &authErr) || errors.As(err, &hostErr) {
		return 0, false // a certificate problem does not go away by retrying
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return 0, true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return 0, true
	}
	if !idempotent {
		return 0, false
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, context.DeadlineExceeded) {
		return 0, true
	}
	return 0, false
}

// insecureAuthWarning is logged once by New when basic-auth credentials will go over plain
// HTTP.
const insecureAuthWarning = "mlflow: basic-auth credentials are sent over plain HTTP; use https"

// restyLogger routes resty's messages to slog at their own level: an error (a transport
// resty cannot configure) at error, a warning at warn, debug at debug. The one exception is
// the warning resty repeats on every request that basic auth goes over plain HTTP: New warns
// about that once (insecureAuthWarning), so the repeats go to debug. Resty's messages carry
// no credentials: they are its own texts and errors of net/http, which strips passwords from
// the URLs it reports.
type restyLogger struct{ l *slog.Logger }

func (r restyLogger) Errorf(format string, v ...any) { r.l.Error(fmt.Sprintf(format, v...)) }
func (r restyLogger) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "Using Basic Auth in HTTP mode") {
		r.l.Debug(msg)
		return
	}
	r.l.Warn(msg)
}
func (r restyLogger) Debugf(format string, v ...any) { r.l.Debug(fmt.Sprintf(format, v...)) }
