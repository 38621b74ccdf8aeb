// Package remote defines the storage a DVC remote offers (a flat key space of immutable
// objects such as files/md5/ab/cdef...) and implements it for local directories. Other
// back ends (s3remote) implement the same interface and run the same conformance suite
// (remotetest.Run).
package remote

import (
	"context"
	"errors"
	"io"
)

// ErrNotExist is returned (wrapped) by Stat and Open for a missing key.
var ErrNotExist = errors.New("object does not exist on the remote")

// Info describes a stored object.
type Info struct {
	Key  string
	Size int64
}

// Remote is the minimal contract of a DVC remote. Keys are slash-separated paths below the
// remote's root. Implementations are safe for concurrent use.
type Remote interface {
	// Stat returns the object's size, or an error wrapping ErrNotExist.
	Stat(ctx context.Context, key string) (Info, error)
	// Open streams the object's bytes, or returns an error wrapping ErrNotExist.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Put stores size bytes read from r under key, atomically: readers never see a partial
	// object, and an interrupted Put leaves no object behind.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// String names the remote for messages (its URL, without credentials).
	String() string
}

// Lister is implemented by remotes that can enumerate keys under a prefix cheaply; push and
// status use it instead of one Stat per object when many objects are involved.
type Lister interface {
	List(ctx context.Context, prefix string, fn func(Info) error) error
}

// Deleter is implemented by remotes that can delete objects (gc, tests).
type Deleter interface {
	Delete(ctx context.Context, key string) error
}
