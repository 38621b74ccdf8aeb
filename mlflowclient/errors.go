package mlflowclient

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Error codes returned by the MLflow server in the error_code field.
const (
	CodeResourceDoesNotExist   = "RESOURCE_DOES_NOT_EXIST"
	CodeResourceAlreadyExists  = "RESOURCE_ALREADY_EXISTS"
	CodeAlreadyExists          = "ALREADY_EXISTS"
	CodeInvalidParameterValue  = "INVALID_PARAMETER_VALUE"
	CodeBadRequest             = "BAD_REQUEST"
	CodeEndpointNotFound       = "ENDPOINT_NOT_FOUND"
	CodeInternalError          = "INTERNAL_ERROR"
	CodePermissionDenied       = "PERMISSION_DENIED"
	CodeUnauthenticated        = "UNAUTHENTICATED"
	CodeRequestLimitExceeded   = "REQUEST_LIMIT_EXCEEDED"
	CodeTemporarilyUnavailable = "TEMPORARILY_UNAVAILABLE"
	CodeNotImplemented         = "NOT_IMPLEMENTED"
)

// Sentinel errors matched by errors.Is against an *APIError (and used directly where no
// server answer is involved).
var (
	// ErrNotFound matches RESOURCE_DOES_NOT_EXIST / NOT_FOUND errors and bare 404 answers.
	ErrNotFound = errors.New("mlflow: resource does not exist")
	// ErrAlreadyExists matches RESOURCE_ALREADY_EXISTS and ALREADY_EXISTS errors.
	ErrAlreadyExists = errors.New("mlflow: resource already exists")
	// ErrNotProxied is returned for artifact URIs that do not go through the server's
	// artifact proxy (mlflow-artifacts:), e.g. s3:// or file:// roots.
	ErrNotProxied = errors.New("mlflow: artifact root is not served by the tracking server's artifact proxy (mlflow-artifacts:)")
	// ErrExperimentDeleted is returned by GetOrCreateExperiment when a deleted experiment
	// holds the requested name and restoring was not requested.
	ErrExperimentDeleted = errors.New("mlflow: experiment is deleted")
)

// maxErrorBody bounds how much of a non-JSON error body is kept in an APIError.
const maxErrorBody = 1024

// APIError is an unsuccessful answer of the MLflow server.
type APIError struct {
	Method     string // HTTP method
	URL        string // request URL, credentials redacted
	StatusCode int    // HTTP status
	ErrorCode  string // MLflow error_code; derived from the status when the body is not JSON
	Message    string // MLflow message, or the (bounded) raw body
	RetryAfter time.Duration
}

var _ error = (*APIError)(nil)

func (e *APIError) Error() string {
	return fmt.Sprintf("mlflow: %s %s: %d %s: %s", e.Method, e.URL, e.StatusCode, e.ErrorCode, e.Message)
}

// Temporary reports whether retrying the same request may succeed
// (408, 429, 500, 502, 503, 504 — the set the Python client retries).
func (e *APIError) Temporary() bool {
	switch e.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Is lets errors.Is match ErrNotFound and ErrAlreadyExists.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.ErrorCode == CodeResourceDoesNotExist || e.ErrorCode == "NOT_FOUND" ||
			(e.StatusCode == http.StatusNotFound && e.ErrorCode == CodeEndpointNotFound)
	case ErrAlreadyExists:
		return e.ErrorCode == CodeResourceAlreadyExists || e.ErrorCode == CodeAlreadyExists
	}
	return false
}

// codeForStatus mirrors the Python client's mapping for answers without a JSON body.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeBadRequest
	case http.StatusUnauthorized:
		return CodeUnauthenticated
	case http.StatusForbidden:
		return CodePermissionDenied
	case http.StatusNotFound:
		return CodeEndpointNotFound
	case http.StatusTooManyRequests:
		return CodeRequestLimitExceeded
	case http.StatusNotImplemented:
		return CodeNotImplemented
	case http.StatusServiceUnavailable:
		return CodeTemporarilyUnavailable
	default:
		return CodeInternalError
	}
}

// ValidationError reports an input rejected by the client before anything was sent.
type ValidationError struct {
	Field  string // what was invalid: "metric key", "param value", ...
	Value  string // the offending value (truncated)
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("mlflow: invalid %s %q: %s", e.Field, e.Value, e.Reason)
}
