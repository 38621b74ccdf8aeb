// Package model defines catdog's CNN on libtorch (through gotch), and saves and loads it as a
// model directory: the VarStore weights (best_model.ot) next to model.json, which records the
// architecture, the input specification and the class names.
//
// Tensor memory is managed explicitly: every intermediate tensor is dropped as soon as it is
// no longer needed, so the Go garbage collector never holds libtorch memory.
package model
