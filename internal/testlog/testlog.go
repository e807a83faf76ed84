// Package testlog has the log sink the packages' tests share.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer collects log output written from other goroutines (a logger
// used by a server or a watcher under test); it is safe for concurrent
// use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
