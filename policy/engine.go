package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	_ "time/tzdata" // Asia/Tokyo even where the system has no zoneinfo
	"unsafe"

	"github.com/fsnotify/fsnotify"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/config"
)

// DefaultTimezone is where office hours are read when the configuration
// names none.
const DefaultTimezone = "Asia/Tokyo"

const defaultCacheSize = 65536

// Engine decides requests. It is safe for concurrent use; Reload swaps
// the whole policy atomically, so no request ever sees half of one.
type Engine struct {
	cfg       *config.Config
	path      string // the policy file
	name      string // its base name, used in positions
	loc       *time.Location
	cacheSize int

	clock func() time.Time
	log   *slog.Logger

	cur      atomic.Pointer[compiled]
	reloadMu sync.Mutex

	reloads   *prometheus.CounterVec
	decisions *prometheus.CounterVec
	loaded    prometheus.Gauge
	// counted[effect][hit] are the decisions counters, resolved once so
	// that the hot path does no label lookups.
	counted [3][2]prometheus.Counter
}

// Option configures an Engine.
type Option func(*Engine)

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(e *Engine) { e.clock = now } }

// WithLogger sets the logger for reloads. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// WithRegisterer registers the engine's metrics. Default: none registered.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(e *Engine) {
		if r != nil {
			r.MustRegister(e.reloads, e.decisions, e.loaded)
		}
	}
}

// PolicyPath returns the policy file a configuration names: Policy.File,
// or policy.csv beside the configuration file.
func PolicyPath(cfg *config.Config) string {
	if cfg.Policy.File != "" {
		return cfg.Policy.File
	}
	if cfg.Path != "" {
		return filepath.Join(filepath.Dir(cfg.Path), "policy.csv")
	}
	return "policy.csv"
}

// Location returns the time zone for office hours: Policy.Location, else
// Policy.Timezone, else Asia/Tokyo.
func Location(cfg *config.Config) (*time.Location, error) {
	if cfg.Policy.Location != nil {
		return cfg.Policy.Location, nil
	}
	tz := cfg.Policy.Timezone
	if tz == "" {
		tz = DefaultTimezone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("policy.timezone %q: %w", tz, err)
	}
	return loc, nil
}

// New loads and checks the policy file that cfg names.
func New(cfg *config.Config, opts ...Option) (*Engine, error) {
	if m := cfg.Policy.Model; m != "" && m != "builtin" {
		return nil, fmt.Errorf("policy.model %q: only \"builtin\" is supported", m)
	}
	loc, err := Location(cfg)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:       cfg,
		path:      PolicyPath(cfg),
		loc:       loc,
		cacheSize: cfg.Policy.CacheSize,
		clock:     time.Now,
		log:       slog.Default(),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sekisho", Subsystem: "policy", Name: "reloads_total",
			Help: "Policy reloads by result (ok, error). An error keeps the old policy.",
		}, []string{"result"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sekisho", Subsystem: "policy", Name: "decisions_total",
			Help: "Policy decisions by effect (allow, deny, stepup) and cache (hit, miss).",
		}, []string{"effect", "cache"}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "sekisho", Subsystem: "policy", Name: "loaded_timestamp_seconds",
			Help: "When the policy in force was loaded.",
		}),
	}
	if e.cacheSize == 0 {
		e.cacheSize = defaultCacheSize
	}
	for _, eff := range []Effect{Deny, Allow, StepUp} {
		e.counted[eff][0] = e.decisions.WithLabelValues(eff.String(), "miss")
		e.counted[eff][1] = e.decisions.WithLabelValues(eff.String(), "hit")
	}
	e.name = filepath.Base(e.path)
	for _, o := range opts {
		o(e)
	}
	c, err := e.load()
	if err != nil {
		return nil, err
	}
	e.install(c)
	return e, nil
}

func (e *Engine) load() (*compiled, error) {
	text, err := os.ReadFile(e.path)
	if err != nil {
		return nil, fmt.Errorf("reading policy %s: %w", e.path, err)
	}
	c, err := compile(e.cfg, e.name, text, e.loc, e.clock())
	if err != nil {
		return nil, fmt.Errorf("loading policy %s: %w", e.path, err)
	}
	if e.cacheSize > 0 {
		c.cache, _ = lru.New[string, cacheEntry](e.cacheSize)
	}
	return c, nil
}

func (e *Engine) install(c *compiled) {
	e.cur.Store(c)
	e.loaded.Set(float64(c.loadedAt.Unix()))
}

// Reload reads the policy file again. A file that does not load keeps the
// policy in force: the error is logged, counted and returned.
func (e *Engine) Reload() error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	c, err := e.load()
	if err != nil {
		e.reloads.WithLabelValues("error").Inc()
		e.log.Error("policy reload failed; keeping the policy in force", "file", e.path, "version", e.Version(), "err", err)
		return err
	}
	e.install(c)
	e.reloads.WithLabelValues("ok").Inc()
	e.log.Info("policy reloaded", "file", e.path, "version", c.version, "rules", len(c.file.Rules))
	return nil
}

// Watch reloads the policy when its file changes, until ctx ends. It
// watches the directory, so editors that replace the file are seen too.
func (e *Engine) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching policy %s: %w", e.path, err)
	}
	defer w.Close()
	dir := filepath.Dir(e.path)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watching policy directory %s: %w", dir, err)
	}
	target := filepath.Clean(e.path)
	// Editors write in bursts; reload once things settle.
	const settle = 100 * time.Millisecond
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			// Any change in the directory may be ours: editors write a
			// temporary file and rename it, Kubernetes swaps a symlinked
			// directory. Whether the text changed is decided after settling.
			if ev.Has(fsnotify.Chmod) && filepath.Clean(ev.Name) != target {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(settle)
			} else {
				timer.Reset(settle)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			if e.changed() {
				_ = e.Reload() // logged and counted by Reload
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			e.log.Warn("policy watch error", "file", e.path, "err", err)
		}
	}
}

// changed reports whether the policy file's text differs from the text
// in force (or cannot be read, which Reload then reports).
func (e *Engine) changed() bool {
	text, err := os.ReadFile(e.path)
	if err != nil {
		return true
	}
	sum := sha256.Sum256(text)
	return !strings.HasPrefix(e.Version(), hex.EncodeToString(sum[:6])+"@")
}

// Version identifies the policy in force: the first 12 hex digits of the
// SHA-256 of its text and when it was loaded ("3f2a…@2026-04-01T00:00:00Z").
func (e *Engine) Version() string {
	if c := e.cur.Load(); c != nil {
		return c.version
	}
	return ""
}

// Text returns the version and the source text of the policy in force,
// which in a cluster is the version read from PostgreSQL rather than the
// local file. The caller must not modify text.
func (e *Engine) Text() (version string, text []byte) {
	if c := e.cur.Load(); c != nil {
		return c.version, c.text
	}
	return "", nil
}

// FileDiffers reports that the policy file no longer holds the text in
// force: it was edited and not (successfully) reloaded, or it cannot be
// read. A replica that follows PostgreSQL (LoadText) differs by design.
func (e *Engine) FileDiffers() bool {
	file, err := os.ReadFile(e.path)
	_, text := e.Text()
	return err != nil || !bytes.Equal(file, text)
}

// File returns the parsed policy in force (read-only).
func (e *Engine) File() *File { return e.cur.Load().file }

type cacheEntry struct {
	d           Decision
	from, until time.Time
}

// Decide decides one request. It never fails: anything it cannot decide
// is a deny.
func (e *Engine) Decide(req *Request) Decision {
	c := e.cur.Load()
	now := req.Time
	if now.IsZero() {
		now = e.clock()
	}
	var keyBuf [256]byte
	var key []byte
	if c.cache != nil {
		key = appendCacheKey(keyBuf[:0], req, c.usesMethodPath)
		// The lookup borrows key's bytes (Get keeps nothing of its
		// argument); only a miss's Add copies them into a string.
		if ent, ok := c.cache.Get(unsafe.String(unsafe.SliceData(key), len(key))); ok && !now.Before(ent.from) && now.Before(ent.until) {
			d := ent.d
			d.Reasons = slices.Clone(d.Reasons)
			e.counted[d.Effect][1].Inc()
			return d
		}
	}
	ec := &evalCtx{req: req, now: now, local: now.In(c.loc)}
	from := now.Truncate(time.Minute)
	ec.until = from.Add(time.Minute)
	d := c.decide(req, ec, nil)
	if c.cache != nil {
		c.cache.Add(string(key), cacheEntry{d: d, from: from, until: ec.until})
		d.Reasons = slices.Clone(d.Reasons)
	}
	e.counted[d.Effect][0].Inc()
	return d
}

// appendCacheKey appends to b the key that holds every input the
// decision depends on, except time, which the entry's validity window
// covers. Every string and list is written with its length first (a
// uvarint), so no two different requests share a key whatever bytes their
// fields contain.
func appendCacheKey(b []byte, r *Request, methodPath bool) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	list := func(l []string) {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, s := range l {
			str(s)
		}
	}
	flags := byte('0')
	if r.Authenticated {
		flags |= 1 << 0
	}
	// The device id itself is never tested; only whether there is one,
	// whether it is registered and whether it belongs to the user.
	if r.Device != "" {
		flags |= 1 << 1
	}
	if r.DeviceRegistered {
		flags |= 1 << 2
	}
	if owned(r) {
		flags |= 1 << 3
	}
	b = append(b, flags)
	str(r.User)
	list(r.Roles)
	str(r.Department)
	str(r.Route)
	str(r.Class)
	str(r.Segment)
	str(r.Action)
	str(r.Mode)
	str(r.Zone)
	list(r.AMR)
	if !r.AuthTime.IsZero() {
		b = strconv.AppendInt(b, r.AuthTime.UnixNano(), 36)
	}
	b = append(b, ';')
	if methodPath {
		str(r.Method)
		str(r.Path)
	}
	return b
}
