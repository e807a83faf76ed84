//go:build linux

package proxy

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// TestParkWithoutGoroutines: connections idle after a fast-path answer,
// plain and over TLS, wait on the parker's watch without a goroutine each
// (Linux), and each is served again when its next request comes.
func TestParkWithoutGoroutines(t *testing.T) {
	f := newListenFixture(t, "  fast_path: true")
	dev := f.device(t, "PC-0042")
	const each = 30
	var pcs []*rawConn
	before := runtime.NumGoroutine()
	for i := range 2 * each {
		pc := f.dialRaw(t, i >= each, &dev)
		if r := pc.do(getOK, false); r.status != 200 {
			t.Fatalf("connection %d: status %d", i, r.status)
		}
		pcs = append(pcs, pc)
	}
	waitParked(t, f, 2*each)
	time.Sleep(50 * time.Millisecond) // the serving goroutines end
	if grew := runtime.NumGoroutine() - before; grew > each/2 {
		t.Errorf("%d more goroutines with %d idle connections", grew, 2*each)
	}
	for i, pc := range pcs {
		path := fmt.Sprintf("/again/%d", i)
		r := pc.do("GET "+path+" HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n", false)
		if r.status != 200 || r.body != "upstream path="+path {
			t.Errorf("connection %d after idling: %d %q", i, r.status, r.body)
		}
	}
	waitParked(t, f, 2*each)
}

// TestParkNewTLSWithoutGoroutines: new TLS connections that have sent
// nothing wait on the watch too (after a read that does not wait), and a
// request sent right after the handshake, which crypto/tls may have read
// with the handshake's last message, is answered, not left waiting.
func TestParkNewTLSWithoutGoroutines(t *testing.T) {
	f := newListenFixture(t, "  fast_path: true")
	dev := f.device(t, "PC-0042")
	// At once: the request goes out as the handshake ends.
	for i := range 20 {
		pc := f.dialRaw(t, true, &dev)
		path := fmt.Sprintf("/first/%d", i)
		if r := pc.do("GET "+path+" HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n", false); r.status != 200 || r.body != "upstream path="+path {
			t.Fatalf("connection %d: %d %q", i, r.status, r.body)
		}
		pc.conn.Close()
	}
	waitParked(t, f, 0)
	const n = 30
	before := runtime.NumGoroutine()
	var pcs []*rawConn
	for range n {
		pcs = append(pcs, f.dialRaw(t, true, &dev))
	}
	waitParked(t, f, n)
	time.Sleep(50 * time.Millisecond)
	if grew := runtime.NumGoroutine() - before; grew > n/2 {
		t.Errorf("%d more goroutines with %d new idle TLS connections", grew, n)
	}
	for i, pc := range pcs {
		path := fmt.Sprintf("/later/%d", i)
		if r := pc.do("GET "+path+" HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n", false); r.status != 200 || r.body != "upstream path="+path {
			t.Errorf("connection %d: %d %q", i, r.status, r.body)
		}
	}
}
