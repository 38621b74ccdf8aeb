package inference

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/catdog-mlops/catdog/imageprep"
)

// Reasons reported in error bodies and as the reason label of catdog_inference_errors_total,
// besides the imageprep decode reasons (empty, unknown-format, truncated, corrupt,
// too-many-bytes, too-many-pixels, unsupported-format, unreadable).
const (
	ReasonUnsupportedMediaType = "unsupported-media-type" // Content-Type is not an image we decode
	ReasonBodyTooLarge         = "body-too-large"         // request body over the limit
	ReasonBadRequest           = "bad-request"            // malformed request (no file field, bad multipart)
	ReasonTooManyFiles         = "too-many-files"         // more files in one batch than allowed
	ReasonMethodNotAllowed     = "method-not-allowed"
	ReasonNotFound             = "not-found"
	ReasonOverloaded           = "overloaded" // queue full
	ReasonTimeout              = "timeout"    // no worker answered within the predict timeout
	ReasonCanceled             = "canceled"   // the client went away
	ReasonNotReady             = "not-ready"  // model not loaded or warm-up failed
	ReasonShuttingDown         = "shutting-down"
	ReasonInternal             = "internal"
)

// Error is an API error: the HTTP status, a stable reason and a message safe to show the
// client. It is written as {"error": {"status", "reason", "message"}, "request_id"}.
type Error struct {
	Status  int    `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

var _ error = (*Error)(nil)

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Reason, e.Message)
}

func apiError(status int, reason, format string, args ...any) *Error {
	return &Error{Status: status, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// toError maps any failure of a predict request to an API error.
func toError(err error) *Error {
	var (
		ae *Error
		de *imageprep.DecodeError
		mb *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mb):
		return apiError(http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, "request body is larger than %d bytes", mb.Limit)
	case errors.As(err, &de):
		return &Error{Status: decodeStatus(de.Reason), Reason: string(de.Reason), Message: de.Error()}
	case errors.Is(err, ErrOverloaded):
		return apiError(http.StatusServiceUnavailable, ReasonOverloaded, "too many requests queued; retry later")
	case errors.Is(err, ErrClosed):
		return apiError(http.StatusServiceUnavailable, ReasonShuttingDown, "the service is shutting down")
	case errors.Is(err, context.DeadlineExceeded):
		return apiError(http.StatusServiceUnavailable, ReasonTimeout, "no model worker answered in time; retry later")
	case errors.Is(err, context.Canceled):
		// The client is gone; the status only shows in logs and metrics (nginx's 499).
		return apiError(499, ReasonCanceled, "request canceled")
	default:
		return apiError(http.StatusInternalServerError, ReasonInternal, "inference failed")
	}
}

func decodeStatus(r imageprep.Reason) int {
	switch r {
	case imageprep.ReasonTooManyBytes, imageprep.ReasonTooManyPixels:
		return http.StatusRequestEntityTooLarge
	case imageprep.ReasonUnsupportedFormat:
		return http.StatusUnsupportedMediaType
	case imageprep.ReasonUnreadable:
		return http.StatusBadRequest
	default: // empty, unknown-format, truncated, corrupt
		return http.StatusBadRequest
	}
}
