// Package imageprep decodes, validates, resizes and normalises cat and dog photos, prepares a
// dataset (stratified split, manifest, cached uint8 pixels) and augments cached images at train
// time.
//
// It is plain Go (no libtorch) so that both training and the inference service can share one
// preprocessing path: [Spec.Preprocess] is Decode → ToRGB → Resize → Normalize, and the cached
// split files written by [Prepare] hold exactly the Resize(ToRGB(Decode(file))) bytes, so a
// served prediction sees the same tensor as an evaluated one.
//
// Every input is bounded ([Limits]): the byte size is capped while reading and the pixel count is
// checked from the image header before the full decode. A file that cannot be used becomes a
// [*DecodeError] carrying a [Reason], never a panic.
//
// All exported functions and methods are safe for concurrent use unless stated otherwise.
package imageprep
