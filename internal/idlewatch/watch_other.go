//go:build !linux

package idlewatch

import (
	"errors"
	"syscall"
	"time"
)

// Watch is Linux only; see the package comment.
type Watch struct{}

// New returns errors.ErrUnsupported outside Linux.
func New(ready, expire func(any)) (*Watch, error) { return nil, errors.ErrUnsupported }

// Add reports false: the caller waits for c itself.
func (w *Watch) Add(c syscall.Conn, v any, deadline time.Time) bool { return false }

// Len is 0.
func (w *Watch) Len() int { return 0 }

// Close does nothing.
func (w *Watch) Close() error { return nil }
