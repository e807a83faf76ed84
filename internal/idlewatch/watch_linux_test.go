//go:build linux

package idlewatch_test

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/idlewatch"
	"github.com/sekisho/sekisho/internal/testnet"
)

// recorder collects what a watch reports.
type recorder struct {
	mu              sync.Mutex
	ready, expired  map[any]int
	readyC, expireC chan any
}

func newWatch(t *testing.T) (*idlewatch.Watch, *recorder) {
	t.Helper()
	r := &recorder{ready: map[any]int{}, expired: map[any]int{}, readyC: make(chan any, 1024), expireC: make(chan any, 1024)}
	w, err := idlewatch.New(func(v any) {
		r.mu.Lock()
		r.ready[v]++
		r.mu.Unlock()
		r.readyC <- v
	}, func(v any) {
		r.mu.Lock()
		r.expired[v]++
		r.mu.Unlock()
		_ = v.(net.Conn).Close()
		r.expireC <- v
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, r
}

func (r *recorder) counts(v any) (ready, expired int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready[v], r.expired[v]
}

func receive(t *testing.T, c chan any, n int) map[any]bool {
	t.Helper()
	got := map[any]bool{}
	for len(got) < n {
		select {
		case v := <-c:
			if got[v] {
				t.Fatalf("%v reported twice", v)
			}
			got[v] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d reported", len(got), n)
		}
	}
	return got
}

// pairs makes n loopback connections: the clients' ends and the
// servers'.
func pairs(t *testing.T, n int) (clients, servers []net.Conn) {
	t.Helper()
	clients = make([]net.Conn, n)
	servers = make([]net.Conn, n)
	for i := range n {
		clients[i], servers[i] = testnet.TCPPair(t)
	}
	return clients, servers
}

func add(t *testing.T, w *idlewatch.Watch, c net.Conn, d time.Duration) {
	t.Helper()
	if !w.Add(c.(syscall.Conn), c, time.Now().Add(d)) {
		t.Fatal("Add refused a TCP connection")
	}
}

// TestReady: each watched connection is reported once when its peer
// writes, and only then; a connection whose peer closes is reported too.
func TestReady(t *testing.T) {
	w, r := newWatch(t)
	const n = 40
	clients, servers := pairs(t, n)
	for _, s := range servers {
		add(t, w, s, time.Minute)
	}
	if w.Len() != n {
		t.Fatalf("Len %d, want %d", w.Len(), n)
	}
	// Nothing is reported before anything arrives.
	select {
	case v := <-r.readyC:
		t.Fatalf("%v reported with nothing sent", v)
	case <-time.After(50 * time.Millisecond):
	}
	// Half write a byte, the other half close.
	for i := n - 1; i >= 0; i-- {
		if i%2 == 0 {
			clients[i].Write([]byte{'x'})
		} else {
			clients[i].Close()
		}
	}
	got := receive(t, r.readyC, n)
	for i, s := range servers {
		if !got[s] {
			t.Errorf("connection %d not reported", i)
		}
		if rd, ex := r.counts(s); rd != 1 || ex != 0 {
			t.Errorf("connection %d: ready %d, expired %d, want 1 and 0", i, rd, ex)
		}
	}
	if w.Len() != 0 {
		t.Errorf("Len %d after every connection was reported", w.Len())
	}
}

// TestReadyAgain: a reported connection, served and added again, is
// reported for its next data (the disarmed registration is re-armed), and
// not before.
func TestReadyAgain(t *testing.T) {
	w, r := newWatch(t)
	c, s := testnet.TCPPair(t)
	buf := make([]byte, 1)
	for round := range 3 {
		add(t, w, s, time.Minute)
		select {
		case v := <-r.readyC:
			t.Fatalf("round %d: %v reported before data", round, v)
		case <-time.After(30 * time.Millisecond):
		}
		c.Write([]byte{byte('a' + round)})
		receive(t, r.readyC, 1)
		if _, err := s.Read(buf); err != nil || buf[0] != byte('a'+round) {
			t.Fatalf("round %d: read %q, %v", round, buf, err)
		}
	}
	if rd, _ := r.counts(s); rd != 3 {
		t.Errorf("reported %d times, want 3", rd)
	}
}

// TestExpire: a connection whose deadline passes is handed to expire (and
// closed), once; one with a later deadline stays watched and is still
// reported when data comes.
func TestExpire(t *testing.T) {
	w, r := newWatch(t)
	peers, short := pairs(t, 5)
	lc, long := testnet.TCPPair(t)
	add(t, w, long, time.Minute)
	for i, s := range short {
		add(t, w, s, time.Duration(20+10*i)*time.Millisecond)
	}
	got := receive(t, r.expireC, len(short))
	for i, s := range short {
		if !got[s] {
			t.Errorf("short connection %d not expired", i)
		}
		// Closed by expire: the peer sees the end.
		peers[i].SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := peers[i].Read(make([]byte, 1)); err == nil {
			t.Errorf("short connection %d still open", i)
		}
	}
	if w.Len() != 1 {
		t.Fatalf("Len %d, want 1 (the long one)", w.Len())
	}
	if _, ex := r.counts(long); ex != 0 {
		t.Fatal("the long connection expired")
	}
	lc.Write([]byte{'x'})
	receive(t, r.readyC, 1)
}

// TestNoGoroutinePerConnection: watching connections takes no goroutine
// for each, which is the point of the package.
func TestNoGoroutinePerConnection(t *testing.T) {
	w, r := newWatch(t)
	const n = 300
	clients, servers := pairs(t, n)
	time.Sleep(20 * time.Millisecond) // the pairs' accept goroutines end
	before := runtime.NumGoroutine()
	for _, s := range servers {
		add(t, w, s, time.Minute)
	}
	if after := runtime.NumGoroutine(); after-before > 5 {
		t.Errorf("%d goroutines for %d watched connections", after-before, n)
	}
	for _, c := range clients {
		c.Write([]byte{'x'})
	}
	receive(t, r.readyC, n)
}

// TestAddRefused: what epoll cannot watch (a regular file) and anything
// after Close is refused, so that the caller waits itself.
func TestAddRefused(t *testing.T) {
	w, r := newWatch(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if w.Add(f, f, time.Now().Add(time.Minute)) {
		t.Error("Add took a regular file")
	}
	if w.Len() != 0 {
		t.Errorf("Len %d after a refused Add", w.Len())
	}
	c, s := testnet.TCPPair(t)
	add(t, w, s, time.Minute)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Add(s.(syscall.Conn), s, time.Now().Add(time.Minute)) {
		t.Error("Add after Close")
	}
	c.Write([]byte{'x'})
	select {
	case v := <-r.readyC:
		t.Errorf("%v reported after Close", v)
	case <-time.After(50 * time.Millisecond):
	}
}
