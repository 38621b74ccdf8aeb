// Package mlflowclient is a client for the MLflow tracking server's REST API
// (experiments, runs, batched logging, the artifact proxy and the model registry),
// written against, and tested with, a real `mlflow server` 3.x.
//
// A Client comes from New (or NewFromEnv, which reads the MLFLOW_TRACKING_* variables the
// Python client reads) and every method takes a context.Context first. Failures returned by
// the server are *APIError values carrying MLflow's error_code; callers branch with
// errors.Is(err, ErrNotFound) / errors.Is(err, ErrAlreadyExists) or errors.As.
//
// Transient failures (408, 429, 5xx, connection errors) are retried with exponential
// backoff, jitter and Retry-After; calls that create something the server cannot
// de-duplicate (runs, model versions) are only retried when the server provably did not
// process them (connection refused, 429, 503).
//
// All exported functions and methods are safe to be used concurrently.
package mlflowclient
