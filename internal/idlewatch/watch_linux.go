//go:build linux

package idlewatch

import (
	"container/heap"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// waitBatch is how many events one wait takes.
const waitBatch = 128

// Watch holds idle connections until they are readable or their deadline
// passes. Its methods are safe for concurrent use.
type Watch struct {
	ready, expire func(any)

	epfd int
	f    *os.File // the epoll instance, itself waited for in Go's poller
	rc   syscall.RawConn
	done chan struct{}

	mu     sync.Mutex
	byID   map[uint64]*entry
	due    dueHeap
	next   uint64
	closed bool
}

type entry struct {
	id       uint64
	v        any
	deadline time.Time
	index    int // in due
}

// New starts a watch. ready(v) is called, on the watch's goroutine, for
// each added connection that becomes readable or is closed by its peer;
// it must not block (start a goroutine to serve the connection).
// expire(v) is called, on a goroutine of its own for each batch, for one
// whose deadline passed first; it must close the connection (or add it
// again). ready must not call [Watch.Close], which waits for the goroutine
// that calls ready.
func New(ready, expire func(any)) (*Watch, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// Non-blocking, so that os.NewFile puts it in Go's poller: an epoll
	// instance is readable while it has events to report.
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	f := os.NewFile(uintptr(fd), "idlewatch")
	rc, err := f.SyscallConn()
	if err == nil {
		// Fails unless the instance is in the poller (the wait would
		// otherwise fail at once).
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	w := &Watch{ready: ready, expire: expire, epfd: fd, f: f, rc: rc, done: make(chan struct{}), byID: map[uint64]*entry{}}
	go w.run()
	return w, nil
}

// Add watches c, which must have nothing buffered above the socket (no
// bytes read but not yet consumed), until it is readable or deadline
// passes. It reports false, having changed nothing, when c is not a
// socket the watch can hold or the watch is closed: the caller then waits
// for c itself.
func (w *Watch) Add(c syscall.Conn, v any, deadline time.Time) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	// The entry is listed before the registration, under the lock, so that
	// an event cannot be reported for an id not yet known.
	id := w.next
	w.next++
	e := &entry{id: id, v: v, deadline: deadline}
	w.byID[id] = e
	heap.Push(&w.due, e)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	var ctlErr error
	cerr := rc.Control(func(fd uintptr) {
		ctlErr = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		if ctlErr == syscall.EEXIST {
			// Added before, reported and disarmed since (the connection is
			// still open, or its registration would be gone): re-arm it.
			ctlErr = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		}
	})
	if cerr != nil || ctlErr != nil {
		delete(w.byID, id)
		heap.Remove(&w.due, e.index)
		return false
	}
	if e.index == 0 {
		// The earliest deadline: the wait ends then to expire it.
		_ = w.f.SetReadDeadline(deadline)
	}
	return true
}

// Len is the number of connections watched.
func (w *Watch) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.byID)
}

// Close stops the watch. The connections it held are neither reported
// nor closed: the caller closes them.
func (w *Watch) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.byID = map[uint64]*entry{}
	w.due = nil
	w.mu.Unlock()
	err := w.f.Close() // ends the wait in run
	<-w.done
	return err
}

func (w *Watch) run() {
	defer close(w.done)
	var evs [waitBatch]syscall.EpollEvent
	for {
		n := 0
		var werr error
		err := w.rc.Read(func(fd uintptr) bool {
			n, werr = syscall.EpollWait(int(fd), evs[:], 0)
			if werr == syscall.EINTR {
				n, werr = 0, nil
			}
			return n > 0 || werr != nil // nothing yet: wait until readable
		})
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.sweep()
			continue
		case err != nil:
			return // closed
		case werr != nil:
			// Cannot happen with a valid instance and buffer; do not spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		w.dispatch(evs[:n])
	}
}

// dispatch reports the connections of evs, each once: one that has just
// expired, or that Close dropped, is not reported.
func (w *Watch) dispatch(evs []syscall.EpollEvent) {
	var got [waitBatch]any
	k := 0
	w.mu.Lock()
	for _, ev := range evs {
		id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
		if e, ok := w.byID[id]; ok {
			delete(w.byID, id)
			heap.Remove(&w.due, e.index)
			got[k] = e.v
			k++
		}
	}
	w.setDeadlineLocked()
	w.mu.Unlock()
	for _, v := range got[:k] {
		w.ready(v)
	}
}

// sweep expires the connections whose deadline has passed.
func (w *Watch) sweep() {
	now := time.Now()
	var gone []any
	w.mu.Lock()
	for len(w.due) > 0 && !w.due[0].deadline.After(now) {
		e := heap.Pop(&w.due).(*entry)
		delete(w.byID, e.id)
		gone = append(gone, e.v)
	}
	w.setDeadlineLocked()
	w.mu.Unlock()
	if len(gone) > 0 {
		// Closing may write (a TLS close_notify): not on the goroutine
		// that reports readable connections.
		go func() {
			for _, v := range gone {
				w.expire(v)
			}
		}()
	}
}

// setDeadlineLocked sets the wait's deadline to the earliest connection's,
// or none.
func (w *Watch) setDeadlineLocked() {
	if w.closed {
		return
	}
	var d time.Time
	if len(w.due) > 0 {
		d = w.due[0].deadline
	}
	_ = w.f.SetReadDeadline(d)
}

// dueHeap orders the entries by deadline (container/heap).
type dueHeap []*entry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}
