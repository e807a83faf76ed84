package store

import (
	"context"
	"errors"
	"sync"
)

// Change kinds carried by [Change].
const (
	ChangeRevocation = "revocation" // Seq is the new revocation's
	ChangePolicy     = "policy"     // published by whoever changed the policy
	ChangeUser       = "user"       // ID is the user id
	ChangeDevice     = "device"     // ID is the device id
	ChangeKey        = "key"        // ID is the key id
	// ChangeResync means changes may have been missed (a lost connection,
	// a slow subscriber): reload everything from the store.
	ChangeResync = "resync"
)

// Change tells a subscriber that something it may cache changed.
type Change struct {
	Kind string `json:"kind"`
	Seq  int64  `json:"seq,omitempty"`
	ID   string `json:"id,omitempty"`
}

// Notifier is implemented by stores that can tell other replicas (or
// other parts of this process) about changes.
type Notifier interface {
	// Subscribe delivers changes until ctx ends or the store is closed,
	// then closes the channel. A subscriber that falls behind gets
	// ChangeResync instead of the changes it missed.
	Subscribe(ctx context.Context) (<-chan Change, error)
	// Publish sends c to every subscriber, for changes the store does not
	// see itself (a policy reload).
	Publish(ctx context.Context, c Change) error
}

// subscriberBuffer is how many changes a subscriber may lag behind before
// they are replaced by one ChangeResync.
const subscriberBuffer = 64

// errClosed is returned by Subscribe on a closed store.
var errClosed = errors.New("store: closed")

// hub broadcasts changes to subscribers in this process.
type hub struct {
	mu     sync.Mutex
	subs   map[chan Change]struct{}
	closed bool
	done   chan struct{} // closed by close
}

func newHub() *hub { return &hub{subs: map[chan Change]struct{}{}, done: make(chan struct{})} }

func (h *hub) subscribe(ctx context.Context) (<-chan Change, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errClosed
	}
	ch := make(chan Change, subscriberBuffer)
	h.subs[ch] = struct{}{}
	go func() {
		select {
		case <-ctx.Done():
		case <-h.done:
			return // close closed ch
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}()
	return ch, nil
}

// publish never blocks: a full subscriber's queue is emptied and replaced
// by a single ChangeResync.
func (h *hub) publish(c Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- c:
			continue
		default:
		}
	drain:
		for {
			select {
			case <-ch:
			default:
				break drain
			}
		}
		ch <- Change{Kind: ChangeResync}
	}
}

// close ends every subscription.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.done)
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}
