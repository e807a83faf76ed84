package h1transport

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
)

// body wraps a response body read by http.ReadResponse and decides, once,
// what becomes of the connection: pooled at EOF, closed on error or early
// Close.
type body struct {
	rc    io.ReadCloser // as http.ReadResponse made it; never closed (see Close)
	t     *Transport
	c     *conn
	ctx   context.Context
	stop  stopper
	reuse bool

	state atomic.Int32 // bodyOpen, then one of the others, once
	err   error        // the read error; only the reading goroutine uses it
}

const (
	bodyOpen int32 = iota
	bodyEOF
	bodyFailed
	bodyClosed
)

func (b *body) Read(p []byte) (int, error) {
	switch b.state.Load() {
	case bodyEOF:
		return 0, io.EOF
	case bodyFailed:
		return 0, b.err
	case bodyClosed:
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.rc.Read(p)
	switch err {
	case nil:
		return n, nil
	case io.EOF:
		if b.state.CompareAndSwap(bodyOpen, bodyEOF) {
			b.t.finish(b.c, b.stop, b.reuse)
		}
		return n, io.EOF
	}
	err = ctxError(b.ctx, err)
	b.err = err
	if b.state.CompareAndSwap(bodyOpen, bodyFailed) {
		b.t.finish(b.c, b.stop, false)
	}
	return n, err
}

// Close before EOF closes the connection. The inner body's Close is not
// called: for a response it reads the rest of the body, however long.
// Close may be called more than once, and concurrently with Read.
func (b *body) Close() error {
	if b.state.CompareAndSwap(bodyOpen, bodyClosed) {
		b.t.finish(b.c, b.stop, false)
		return nil
	}
	b.state.CompareAndSwap(bodyEOF, bodyClosed)
	return nil
}
