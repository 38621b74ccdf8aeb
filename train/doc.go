// Package train runs the data pipeline, the training loop and the evaluation of catdog's CNN,
// and draws its plots. It reports progress through a small Tracker interface.
package train
