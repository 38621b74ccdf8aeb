package main

// catdog is built twice from this package:
//
//   - catdog-torch, the default build: every command in one binary linked with libtorch;
//   - catdog, built with -tags catdog_light: every command that does not run a model, without
//     libtorch (so `catdog data status` or a GitHub Actions step does not pay libtorch's ~0.3 s
//     of start-up), and train, evaluate, predict and serve as thin commands that execute
//     catdog-torch (see torch_light.go).
//
// The one-line usage of the libtorch commands is shared by both builds.
const (
	trainUsage    = "train the CNN on prepared data; keep the best epoch; evaluate it on the test split"
	evaluateUsage = "accuracy, per-class precision/recall/F1 and confusion matrix of a model on labelled photos"
	predictUsage  = "predict cat or dog for photos"
	serveUsage    = "serve predictions over HTTP (REST API, Prometheus metrics, JSON logs)"
	sweepUsage    = "hyper-parameter search (grid, random, successive halving); each trial an MLflow child run"
)
