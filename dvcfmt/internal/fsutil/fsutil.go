//go:build unix

// Package fsutil opens regular files with fewer system calls than package os.
//
// os.OpenFile offers every new descriptor to the runtime's network poller: it switches the file
// to non-blocking mode, fails to add it to epoll (regular files cannot be polled) and switches
// it back — five extra system calls per file. Hashing and copying thousands of small files
// (a DVC add, checkout or push) pays that for every source and every destination; a descriptor
// wrapped with os.NewFile skips it.
package fsutil

import (
	"errors"
	"os"
	"syscall"
)

// OpenFile is os.OpenFile for regular files (flag and perm as for os.OpenFile).
func OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// Open opens name for reading, like os.Open.
func Open(name string) (*os.File, error) { return OpenFile(name, os.O_RDONLY, 0) }
