package h1transport

import "time"

// idleList is one key's idle connections, oldest first: the pool takes
// from the end (LIFO, so the warmest connection is reused and the others
// age out).
type idleList struct{ conns []*conn }

// takeIdle returns the most recently idled live connection for key, or
// nil. Connections idle for longer than the timeout, or that the upstream
// closed or wrote to while idle, are closed on the way. With peek false
// the last check is the caller's (exchange does it in the same call as
// its write: sendRaw).
func (t *Transport) takeIdle(key connKey, peek bool) *conn {
	for {
		t.mu.Lock()
		l := t.idle[key]
		if l == nil || len(l.conns) == 0 {
			t.mu.Unlock()
			return nil
		}
		n := len(l.conns)
		c := l.conns[n-1]
		l.conns[n-1] = nil
		l.conns = l.conns[:n-1]
		now := time.Now()
		if now.Sub(c.idleAt) > t.idleTimeout {
			// The list is ordered by idle time: every other one is older.
			stale := append([]*conn(nil), l.conns...)
			clear(l.conns)
			l.conns = l.conns[:0]
			t.mu.Unlock()
			c.close()
			for _, s := range stale {
				s.close()
			}
			return nil
		}
		t.mu.Unlock()
		if !c.rdl.IsZero() && !now.Before(c.rdl) {
			// The header deadline of its last response, left set by
			// headRead, has passed while it was idle.
			c.nc.SetReadDeadline(time.Time{})
			c.rdl = time.Time{}
		}
		if !peek || usable(c) {
			c.takenAt = now
			return c
		}
		c.close()
	}
}

// putIdle returns c to its pool, or closes it when the pool is full.
func (t *Transport) putIdle(c *conn) {
	c.idleAt = time.Now()
	t.mu.Lock()
	l := t.idle[c.key]
	if l == nil {
		l = &idleList{}
		t.idle[c.key] = l
	}
	if len(l.conns) >= t.maxIdle {
		t.mu.Unlock()
		c.close()
		return
	}
	l.conns = append(l.conns, c)
	if !t.reaperArmed {
		t.reaperArmed = true
		if t.reaper == nil {
			t.reaper = time.AfterFunc(t.idleTimeout, t.reap)
		} else {
			t.reaper.Reset(t.idleTimeout)
		}
	}
	t.mu.Unlock()
}

// reap closes the connections idle for longer than the timeout, so that
// a pool nobody takes from does not hold them open; it re-arms itself for
// the oldest remaining one. One timer per Transport, not per connection.
func (t *Transport) reap() {
	now := time.Now()
	var stale []*conn
	var next time.Duration
	t.mu.Lock()
	if !t.reaperArmed {
		t.mu.Unlock()
		return
	}
	for k, l := range t.idle {
		i := 0
		for i < len(l.conns) && now.Sub(l.conns[i].idleAt) >= t.idleTimeout {
			i++
		}
		stale = append(stale, l.conns[:i]...)
		rest := copy(l.conns, l.conns[i:])
		clear(l.conns[rest:])
		l.conns = l.conns[:rest]
		if rest == 0 {
			delete(t.idle, k)
			continue
		}
		if d := t.idleTimeout - now.Sub(l.conns[0].idleAt); next == 0 || d < next {
			next = d
		}
	}
	if next > 0 {
		t.reaper.Reset(next)
	} else {
		t.reaperArmed = false
	}
	t.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
}
