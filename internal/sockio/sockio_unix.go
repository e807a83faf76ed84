//go:build unix

package sockio

import (
	"errors"
	"syscall"
)

// Idle reports whether nothing is waiting to be read on fd and the peer
// has not closed: a look without waiting and without consuming.
func Idle(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
}

// Write writes p to the non-blocking fd until it is all written, the
// socket's buffer is full (full: the rest is the caller's to write the
// usual way), or a write fails.
func Write(fd uintptr, p []byte) (n int, full bool, err error) {
	for n < len(p) {
		m, err := syscall.Write(int(fd), p[n:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return n, true, nil
		case err != nil:
			return n, false, err
		}
		n += m
	}
	return n, false, nil
}
