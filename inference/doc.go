// Package inference is catdog's prediction service: an http.Handler that decodes uploaded
// photos with imageprep (the same code path as training and evaluation), runs the model on
// dedicated OS-thread-locked workers behind a bounded queue, and reports Prometheus metrics
// and JSON access logs.
//
// # Endpoints
//
//	GET  /health         liveness; always 200 while the process serves HTTP
//	GET  /ready          200 once the model is loaded and warmed, 503 before and while draining
//	POST /predict        one image: multipart field "file", or a raw image/jpeg|image/png body
//	POST /predict/batch  several "file" parts in one multipart form
//	GET  /metrics        Prometheus exposition of the registry given to New
//	GET  /version        model name, version, run id, source; catdog and Go versions
//	GET  /openapi.json   OpenAPI 3 description of the API
//
// Errors are JSON, {"error": {"status", "reason", "message"}, "request_id"}, with stable
// reasons (see the Reason constants and imageprep.Reason).
//
// # Concurrency
//
// Requests are decoded concurrently on their own goroutines; only the forward pass goes
// through the worker queue. All exported methods are safe for concurrent use.
package inference
