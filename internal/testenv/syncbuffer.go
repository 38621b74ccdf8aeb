package testenv

import (
	"bytes"
	"sync"
)

// SyncBuffer is a bytes.Buffer that a running process (or server goroutine) writes to while
// the test reads it: the sink for a child's stdout/stderr or a logger under test.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
