// Package imagebuild assembles catdog's OCI image in-process, without a container daemon.
//
// An image is four layers, ordered from the least to the most often changed so that a new
// model or binary changes only its own layer: a base (glibc, libstdc++, libgcc, libgomp, CA
// certificates, tzdata, /tmp and the non-root user 65532, assembled from the build machine's
// Debian packages or taken from a base image reference), the libtorch shared libraries, the
// catdog binary, and the model directory.
//
// Images are reproducible by construction: tar entries are sorted, owners, modes and mtimes are
// fixed, and every timestamp comes from the caller (SOURCE_DATE_EPOCH in the CLI), so building
// the same inputs twice gives the same digest. Compressed layers are kept in a content-addressed
// [Cache] keyed by the layer's uncompressed digest, so an unchanged layer is never compressed
// twice, even across processes.
package imagebuild
