// Package e2e holds the end-to-end tests of the inference service with a real trained
// model: the `catdog serve` binary over HTTP, a real Prometheus scraping it, a bounded load
// test, equality with `catdog evaluate`, and loading from a real MLflow model registry.
// TestMain trains a small 64x64 model with `catdog prepare` and `catdog train` first.
package e2e
