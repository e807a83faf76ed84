package proxy

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/h1transport"
	"github.com/sekisho/sekisho/reqctx"
)

var _ h1transport.Hooker = (*reqCtx)(nil)
var _ h1transport.Hooker = (*reqctx.Context)(nil)

type ctxKey struct{}

func newTestReqCtx() *reqCtx {
	return &reqCtx{parent: context.WithValue(context.Background(), ctxKey{}, "v")}
}

func TestReqCtxCancel(t *testing.T) {
	for _, doneFirst := range []bool{false, true} {
		c := newTestReqCtx()
		var done <-chan struct{}
		if doneFirst {
			done = c.Done()
			select {
			case <-done:
				t.Fatal("done before cancel")
			default:
			}
		}
		if c.Err() != nil {
			t.Fatal("Err before cancel")
		}
		if c.Value(ctxKey{}) != "v" {
			t.Error("the parent's value is lost")
		}
		if _, ok := c.Deadline(); ok {
			t.Error("a deadline the parent does not have")
		}
		c.cancel()
		c.cancel() // a second call does nothing
		if !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("Err %v after cancel", c.Err())
		}
		if !doneFirst {
			done = c.Done()
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed after cancel")
		}
		if context.Cause(c) != context.Canceled {
			t.Errorf("Cause %v", context.Cause(c))
		}
	}
}

func TestReqCtxHook(t *testing.T) {
	t.Run("runs once on cancel", func(t *testing.T) {
		c := newTestReqCtx()
		var n atomic.Int32
		if !c.Hook(func() { n.Add(1) }) {
			t.Fatal("Hook refused")
		}
		if c.Hook(func() { n.Add(100) }) {
			t.Fatal("a second hook was taken while one is set")
		}
		c.cancel()
		c.cancel()
		if n.Load() != 1 {
			t.Fatalf("hook ran %d times, want 1 (in the canceling goroutine)", n.Load())
		}
		if c.Unhook() {
			t.Error("Unhook reports it stopped a hook that ran")
		}
	})
	t.Run("removed before cancel", func(t *testing.T) {
		c := newTestReqCtx()
		var n atomic.Int32
		c.Hook(func() { n.Add(1) })
		if !c.Unhook() {
			t.Fatal("Unhook did not stop a hook that had not run")
		}
		if !c.Hook(func() { n.Add(10) }) { // a second round trip
			t.Fatal("Hook refused after Unhook")
		}
		if !c.Unhook() {
			t.Fatal("second Unhook")
		}
		c.cancel()
		if n.Load() != 0 {
			t.Fatalf("a removed hook ran (%d)", n.Load())
		}
	})
	t.Run("after the end", func(t *testing.T) {
		c := newTestReqCtx()
		c.cancel()
		ran := false
		if !c.Hook(func() { ran = true }) || !ran {
			t.Fatal("a hook set after the end must run at once")
		}
		if c.Unhook() {
			t.Error("Unhook reports it stopped a hook that ran")
		}
	})
	t.Run("race", func(t *testing.T) {
		for range 200 {
			c := newTestReqCtx()
			var n atomic.Int32
			c.Hook(func() { n.Add(1) })
			var stopped bool
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); c.cancel() }()
			go func() { defer wg.Done(); stopped = c.Unhook() }()
			wg.Wait()
			if stopped == (n.Load() == 1) {
				t.Fatalf("Unhook %v, hook runs %d: exactly one of the two must win", stopped, n.Load())
			}
		}
	})
}

func TestReqCtxAfterFuncAndChildren(t *testing.T) {
	c := newTestReqCtx()
	ran := make(chan string, 4)
	stop := context.AfterFunc(c, func() { ran <- "kept" })
	stopped := context.AfterFunc(c, func() { ran <- "stopped" })
	if !stopped() {
		t.Fatal("stop of a pending AfterFunc reported false")
	}
	if stopped() {
		t.Error("second stop reported true")
	}
	child, cancelChild := context.WithTimeout(c, time.Hour)
	defer cancelChild()
	// The gateway wraps the request's context; children of the wrapper
	// must follow it too.
	wrapped := &reqctx.Context{Context: c}
	grandchild, cancelGrand := context.WithCancel(wrapped)
	defer cancelGrand()
	before := pendingAfter(c)
	c.cancel()
	select {
	case got := <-ran:
		if got != "kept" {
			t.Fatalf("%s ran", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc did not run")
	}
	if stop() {
		t.Error("stop after the function ran reported true")
	}
	for name, ctx := range map[string]context.Context{"child": child, "child of the wrapper": grandchild} {
		select {
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.Canceled) {
				t.Errorf("%s: %v", name, ctx.Err())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not end with its parent", name)
		}
	}
	if before != 3 {
		t.Errorf("%d AfterFunc registrations, want 3: the kept function and the two children (no goroutine per child)", before)
	}
	// After the end, AfterFunc runs at once.
	late := make(chan struct{})
	if context.AfterFunc(c, func() { close(late) })() {
		t.Error("stop after the end reported true")
	}
	select {
	case <-late:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc after the end did not run")
	}
}

// pendingAfter counts the AfterFunc registrations c holds: derived
// contexts register there instead of starting a goroutine each.
func pendingAfter(c *reqCtx) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.after {
		if e.f != nil {
			n++
		}
	}
	return n
}

func TestReqctxContextForwardsHook(t *testing.T) {
	c := newTestReqCtx()
	w := &reqctx.Context{Context: c}
	ran := false
	if !w.Hook(func() { ran = true }) {
		t.Fatal("the wrapper did not pass the hook on")
	}
	c.cancel()
	if !ran || w.Unhook() {
		t.Fatalf("hook ran %v", ran)
	}
	std, cancel := context.WithCancel(context.Background())
	defer cancel()
	w2 := &reqctx.Context{Context: std}
	if w2.Hook(func() {}) {
		t.Error("a wrapper over a standard context took a hook it cannot run")
	}
}

func TestAddrText(t *testing.T) {
	for _, c := range []struct{ ip, remote string }{
		{"127.0.0.1", "127.0.0.1:54321"},
		{"::1", "[::1]:443"},
		{"192.0.2.1", "[::ffff:192.0.2.1]:80"}, // unmapped: prints otherwise
		{"198.51.100.9", "127.0.0.1:5000"},     // from X-Forwarded-For
		{"2001:db8::1", "[2001:db8::1]:8443"},
		{"192.0.2.1", "garbage"},
	} {
		ip := netip.MustParseAddr(c.ip)
		if got := addrText(ip, c.remote); got != ip.String() {
			t.Errorf("addrText(%s, %q) = %q, want %q", c.ip, c.remote, got, ip.String())
		}
	}
	ip, remote := netip.MustParseAddr("127.0.0.1"), "127.0.0.1:54321"
	if n := testing.AllocsPerRun(100, func() { _ = addrText(ip, remote) }); n != 0 {
		t.Errorf("%v allocations for the connection's own address, want 0", n)
	}
}
