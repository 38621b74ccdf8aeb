// Package dvcfmt reads and writes DVC 3's own byte formats: single-stage `.dvc` files,
// `.dir` tree objects, `.dvc/config` (configobj INI) and `.dvcignore` rules.
//
// Everything in this package is a pure function over []byte or io.Reader/io.Writer: it
// imports neither os nor the network (a test holds that line). The cache, remotes and the
// add/status/push/pull/checkout workflows that use these formats live in the
// sub-packages cache, remote and repo.
//
// All exported functions are safe for concurrent use.
package dvcfmt
