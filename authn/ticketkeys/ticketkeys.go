package ticketkeys

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/sekisho/sekisho/store"
)

// Use is the store key use of TLS session ticket keys.
const Use = "tls-ticket"

// The key periods (see the package documentation).
const (
	// Rotation: how long a key encrypts new tickets.
	Rotation = 24 * time.Hour
	// Lifetime: how long after its CreatedAt a key decrypts tickets; then
	// it is deleted.
	Lifetime = 7 * 24 * time.Hour
	// Prepublish: how long before it starts encrypting a successor is
	// written to the store. Refresh more often than this.
	Prepublish = time.Hour
)

// Ring reads, rotates and deletes the ticket keys of one replica. Its
// methods are not safe for concurrent use; Run calls Refresh from one
// goroutine.
type Ring struct {
	st   store.Store
	now  func() time.Time
	rand io.Reader
	log  *slog.Logger
}

// Option configures a Ring.
type Option func(*Ring)

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(r *Ring) { r.now = now } }

// WithRand replaces crypto/rand as the source of new keys.
func WithRand(src io.Reader) Option { return func(r *Ring) { r.rand = src } }

// WithLogger sets the logger (slog.Default() if unset).
func WithLogger(l *slog.Logger) Option { return func(r *Ring) { r.log = l } }

// New returns a Ring on st.
func New(st store.Store, opts ...Option) *Ring {
	r := &Ring{st: st, now: time.Now, rand: rand.Reader, log: slog.Default()}
	for _, o := range opts {
		o(r)
	}
	return r
}

// key is one ticket key as read from the store.
type key struct {
	id       string
	secret   [32]byte
	created  time.Time
	notAfter time.Time
}

// jwk is a key's form in the store: a symmetric JWK.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	K   string `json:"k"`
}

// Refresh reads the keys, writes the successor of the key in use when it
// is due (or a first key), deletes the expired keys, and returns the live
// keys with the one that encrypts first, the others newest first. A key
// in the store that cannot be read is skipped and logged; an error means
// no key could be read or written, and the caller keeps the keys it has.
func (r *Ring) Refresh(ctx context.Context) ([][32]byte, error) {
	now := r.now()
	stored, err := r.st.ListKeys(ctx, Use)
	if err != nil {
		return nil, fmt.Errorf("reading TLS ticket keys: %w", err)
	}
	var live []key
	for _, s := range stored {
		k, err := decode(s)
		if err != nil {
			r.log.Error("TLS ticket key skipped", "kid", s.ID, "err", err)
			continue
		}
		if now.Before(k.notAfter) {
			live = append(live, k)
		}
	}
	// Newest first: by start, then id, so that every replica orders the
	// same keys alike.
	slices.SortFunc(live, func(a, b key) int {
		return cmp.Or(b.created.Compare(a.created), cmp.Compare(b.id, a.id))
	})
	started := func(k key) bool { return !now.Before(k.created) }
	cur := slices.IndexFunc(live, started)
	switch {
	case cur < 0:
		// No key has started (a first start, or every replica was down
		// for longer than Lifetime): one that encrypts now.
		k, err := r.create(ctx, now)
		if err != nil {
			return nil, err
		}
		live = append([]key{k}, live...)
	case cur == 0 && !now.Before(live[0].created.Add(Rotation-Prepublish)):
		// The key in use has no successor and is due for one: it starts
		// when the key in use stops, or now if that has passed.
		start := live[0].created.Add(Rotation)
		if start.Before(now) {
			start = now
		}
		if k, err := r.create(ctx, start); err != nil {
			r.log.Error("writing the next TLS ticket key", "err", err)
		} else {
			live = append([]key{k}, live...)
		}
	}
	// The key that encrypts: a new one at the front if it has started,
	// otherwise the newest that has.
	cur = slices.IndexFunc(live, started)
	if n, err := r.st.DeleteKeys(ctx, Use, now); err != nil {
		r.log.Error("deleting expired TLS ticket keys", "err", err)
	} else if n > 0 {
		r.log.Info("expired TLS ticket keys deleted", "count", n)
	}
	out := make([][32]byte, 0, len(live))
	out = append(out, live[cur].secret)
	for i, k := range live {
		if i != cur {
			out = append(out, k.secret)
		}
	}
	return out, nil
}

// create writes a new key that starts encrypting at start.
func (r *Ring) create(ctx context.Context, start time.Time) (key, error) {
	var raw [48]byte // 16 bytes of id, 32 of secret
	if _, err := io.ReadFull(r.rand, raw[:]); err != nil {
		return key{}, fmt.Errorf("making a TLS ticket key: %w", err)
	}
	k := key{id: base64.RawURLEncoding.EncodeToString(raw[:16]), created: start, notAfter: start.Add(Lifetime)}
	copy(k.secret[:], raw[16:])
	body, err := json.Marshal(jwk{Kty: "oct", Kid: k.id, K: base64.RawURLEncoding.EncodeToString(k.secret[:])})
	if err != nil {
		return key{}, err
	}
	if err := r.st.PutKey(ctx, &store.Key{ID: k.id, Use: Use, JWK: body, CreatedAt: k.created, NotAfter: k.notAfter}); err != nil {
		return key{}, fmt.Errorf("writing a TLS ticket key: %w", err)
	}
	r.log.Info("new TLS ticket key", "kid", k.id, "from", k.created, "until", k.notAfter)
	return k, nil
}

// decode reads a stored ticket key.
func decode(s *store.Key) (key, error) {
	var j jwk
	if err := json.Unmarshal(s.JWK, &j); err != nil {
		return key{}, fmt.Errorf("key %s: %w", s.ID, err)
	}
	if j.Kty != "oct" || j.Kid != s.ID {
		return key{}, fmt.Errorf("key %s: kty %q, kid %q: not a ticket key of this id", s.ID, j.Kty, j.Kid)
	}
	b, err := base64.RawURLEncoding.DecodeString(j.K)
	if err != nil || len(b) != 32 {
		return key{}, fmt.Errorf("key %s: the secret is not 32 bytes of base64url", s.ID)
	}
	if s.CreatedAt.IsZero() || s.NotAfter.IsZero() {
		return key{}, fmt.Errorf("key %s: no start or end", s.ID)
	}
	k := key{id: s.ID, created: s.CreatedAt, notAfter: s.NotAfter}
	copy(k.secret[:], b)
	return k, nil
}

// Run calls Refresh every interval until ctx ends and hands each result to
// set. A failed refresh is logged and the keys in force stay; set is
// never called with no keys.
func (r *Ring) Run(ctx context.Context, every time.Duration, set func([][32]byte)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		keys, err := r.Refresh(ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				r.log.Warn("TLS ticket keys not refreshed; the current ones stay", "err", err)
			}
			continue
		}
		set(keys)
	}
}
