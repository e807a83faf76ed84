package proxy

import (
	"context"
	"sync"
	"time"
)

// reqCtx is the context of one fast-path request (front.go): it ends when
// the request is done, or earlier when the watch finds the client gone.
// It does what context.WithCancel's context does, with one allocation
// instead of about six per request: the done channel is made only when
// someone asks for it, and the upstream round trip's cancel callback is
// registered through Hook and Unhook (h1transport.Hooker) instead of
// context.AfterFunc. AfterFunc is there too, so that contexts derived
// from it (context.WithTimeout and the like) follow it without a
// goroutine of their own, as they follow a standard context.
type reqCtx struct {
	parent context.Context // the front's base: never ends, carries values
	mu     sync.Mutex
	err    error
	done   chan struct{}
	hook   func()
	hooked int8 // hookNone, hookSet, hookRun
	after  []*afterEntry
}

const (
	hookNone int8 = iota
	hookSet
	hookRun
)

type afterEntry struct{ f func() }

// closedDone is the done channel of a context that ended before anyone
// asked for it.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *reqCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *reqCtx) Value(k any) any { return c.parent.Value(k) }

func (c *reqCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *reqCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			c.done = closedDone
		} else {
			c.done = make(chan struct{})
		}
	}
	return c.done
}

func (c *reqCtx) String() string { return "proxy.reqCtx" }

// cancel ends the context with context.Canceled; later calls do nothing.
// The hook runs in this goroutine, AfterFunc functions in their own.
func (c *reqCtx) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	} else {
		c.done = closedDone
	}
	hook := c.hook
	if c.hooked == hookSet {
		c.hooked = hookRun
	} else {
		hook = nil
	}
	c.hook = nil
	var fs []func()
	for _, e := range c.after {
		if e.f != nil {
			fs = append(fs, e.f)
			e.f = nil
		}
	}
	c.after = nil
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	for _, f := range fs {
		go f()
	}
}

// Hook sets the one cancel hook (h1transport.Hooker).
func (c *reqCtx) Hook(f func()) bool {
	c.mu.Lock()
	if c.hooked == hookSet {
		c.mu.Unlock()
		return false
	}
	if c.err != nil {
		c.hooked = hookRun
		c.mu.Unlock()
		f()
		return true
	}
	c.hook, c.hooked = f, hookSet
	c.mu.Unlock()
	return true
}

// Unhook removes the hook: false when it ran (h1transport.Hooker).
func (c *reqCtx) Unhook() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ran := c.hooked == hookRun
	c.hook, c.hooked = nil, hookNone
	return !ran
}

// AfterFunc is context.AfterFunc's contract: f runs in its own goroutine
// when the context ends; stop reports whether it stopped f from running.
func (c *reqCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	e := &afterEntry{f: f}
	c.after = append(c.after, e)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if e.f == nil {
			return false
		}
		e.f = nil
		return true
	}
}
