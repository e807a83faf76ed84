package audit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/config"
)

// Defaults for zero fields of config.Audit.
const (
	DefaultDir                = "data/audit"
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 60 * time.Second
	DefaultRotateSize         = 256 << 20
	DefaultRetention          = 365 * 24 * time.Hour
)

// maxQueue bounds the records waiting for the writer; beyond it Append
// refuses rather than growing without limit while the disk is slow.
const maxQueue = 1 << 20

// Errors callers branch on.
var (
	// ErrUnhealthy wraps the write error while the trail cannot be written.
	// Callers that need a durable record fail closed.
	ErrUnhealthy = errors.New("audit trail cannot be written")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("audit trail closed")
	// ErrBacklog is returned when too many records wait for the disk.
	ErrBacklog = errors.New("audit trail backlog full")
	// ErrInvalidRecord is returned for a record the trail refuses to write.
	ErrInvalidRecord = errors.New("invalid audit record")
)

// Option configures [Open].
type Option func(*options)

type options struct {
	clock func() time.Time
	log   *slog.Logger
	reg   prometheus.Registerer
	// openFile opens trail files for writing; tests put a full disk
	// (/dev/full) in its place.
	openFile func(name string, flag int, perm os.FileMode) (*os.File, error)
}

// WithClock replaces time.Now (record times, file days, checkpoint intervals, retention).
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithLogger sets the logger for write failures, recovery and sinks.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the trail's metrics (sekisho_audit_*).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// withDefaults fills zero fields of cfg.
func withDefaults(cfg config.Audit) config.Audit {
	if cfg.Dir == "" {
		cfg.Dir = DefaultDir
	}
	if cfg.Key == "" {
		cfg.Key = filepath.Join(cfg.Dir, "audit.key")
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = DefaultCheckpointEvery
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.RotateSize <= 0 {
		cfg.RotateSize = DefaultRotateSize
	}
	// Retention: config.Load applies DefaultRetention when the file does
	// not set it; an explicit 0 (or a negative value) keeps everything.
	return cfg
}

// The writer reuses its output buffer and queue slice from batch to batch,
// up to these sizes; larger ones (after a burst or a backlog) are dropped
// once written, so that they do not stay allocated while the gateway idles.
const (
	maxKeptOut   = 1 << 20
	maxKeptItems = 1 << 14
)

// A record appended with Append wakes the writer only when it fills a
// batch of wakeBatch; otherwise the writer runs asyncDelay after the first
// record of the batch. Under load the writer then wakes once per batch
// instead of once per request (each wake is a goroutine switch on the
// request path); the delay is far below asyncSyncEvery, the bound on how
// long such a record may wait for the disk anyway.
const (
	wakeBatch  = 256
	asyncDelay = 2 * time.Millisecond
)

// asyncSyncEvery bounds how long records appended with Append (no one
// waiting for durability) stay written but not fsynced.
const asyncSyncEvery = 200 * time.Millisecond

// item is one encoded record waiting for the writer: body is the encoding
// from time to checkpoint (see appendBody); seq, prev and hash are added by
// the writer.
type item struct {
	body []byte
	buf  *[]byte // the pooled buffer body was built in (nil: not pooled)
	res  *result // nil for Append
}

// result is filled by the writer for AppendDurable (arrays, not strings:
// the writer is the serial part, so it does not allocate for them).
type result struct {
	time time.Time
	seq  uint64
	prev [64]byte
	hash [64]byte
}

// batch is what durable appenders wait on: one fsync acknowledges all.
type batch struct {
	done chan struct{}
	err  error
}

// chain is the writer's position: the current file and the chain head.
type chain struct {
	name      string // current file ("" before the first file exists)
	day       string
	idx       int
	size      int64
	seq       uint64
	prev      [64]byte
	sinceCkpt int
}

// Trail is an open audit trail. It is safe for concurrent use.
type Trail struct {
	lock   *os.File // flock held while the trail is open (nil where unsupported)
	cfg    config.Audit
	opts   options
	signer *signer
	redact map[string]bool
	m      *metrics
	pool   sync.Pool

	mu      sync.Mutex
	queue   []item
	cur     *batch
	failErr error
	closed  bool
	wake    chan struct{}
	delay   *time.Timer // runs the writer asyncDelay after the first record of a batch
	armed   bool        // delay is set for the queued records
	quit    chan struct{}
	done    chan struct{}

	// Writer goroutine only.
	f          *os.File
	ch         chain
	acked      chain // the state after the last successful fsync
	out        []byte
	spare      []item
	lastCkpt   time.Time
	lastSync   time.Time // last fsync of the current file
	lastJWS    string    // newest durable checkpoint
	pendingJWS string    // checkpoint in the batch being committed
	headDirty  bool
	lastHead   time.Time
	failSince  time.Time
	failCause  error
	refused    int // durable appends refused during an outage (under mu)
	nextRetry  time.Time
	retryDelay time.Duration
	rotated    bool
	closeErr   error
	sinks      []*syslogSink
	sinkNotify []chan struct{}
	sinkCancel context.CancelFunc
	sinkWG     sync.WaitGroup
}

// Open opens (or creates) the trail in cfg.Dir, recovers from an unclean
// shutdown (sealing a torn last line with a system record), writes an open
// record and a checkpoint durably, and starts the writer and sinks. It fails
// when the trail cannot be written at all.
func Open(cfg config.Audit, opts ...Option) (*Trail, error) {
	cfg = withDefaults(cfg)
	o := options{clock: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil)), openFile: os.OpenFile}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating audit directory %s: %w", cfg.Dir, err)
	}
	if fi, err := os.Stat(cfg.Dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("audit directory %s is not a directory: %w", cfg.Dir, errNotDir(err))
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s, err := loadOrCreateKey(cfg.Key)
	if err != nil {
		lock.Close()
		return nil, err
	}
	t := &Trail{
		lock:       lock,
		cfg:        cfg,
		opts:       o,
		signer:     s,
		redact:     redactSet(cfg.Redact),
		m:          newMetrics(o.reg),
		wake:       make(chan struct{}, 1),
		delay:      time.NewTimer(time.Hour),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		retryDelay: 100 * time.Millisecond,
	}
	t.delay.Stop()
	t.pool.New = func() any { b := make([]byte, 0, 1024); return &b }
	if err := t.buildSinks(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := t.openChain(); err != nil {
		if t.f != nil {
			t.f.Close()
		}
		lock.Close()
		return nil, err
	}
	t.m.healthy.Set(1)
	t.startSinks()
	go t.run()
	return t, nil
}

func errNotDir(err error) error {
	if err != nil {
		return err
	}
	return errors.New("not a directory")
}

// PublicJWKS returns the public key set that verifies this trail's checkpoints.
func (t *Trail) PublicJWKS() jwk.Set { return t.signer.pub }

// Dir is the directory the trail writes.
func (t *Trail) Dir() string { return t.cfg.Dir }

// Append queues rec. It returns once the record is encoded and queued, never
// waiting for the disk; the writer commits it with the next group. It
// returns an error when the trail has failed (wrapping [ErrUnhealthy]), is
// closed, or is too far behind. Append does not modify rec.
func (t *Trail) Append(rec *Record) error {
	_, err := t.enqueue(rec, nil)
	return err
}

// AppendDurable appends rec and returns once it is on stable storage
// (fsync); concurrent callers share one fsync. On success it fills rec.Seq,
// rec.Prev, rec.Hash, and rec.Time when it was zero. When ctx ends first it
// returns ctx's error; the record may still be written.
func (t *Trail) AppendDurable(ctx context.Context, rec *Record) error {
	res := resultPool.Get().(*result)
	b, err := t.enqueue(rec, res)
	if err != nil {
		resultPool.Put(res)
		return err
	}
	if done := ctx.Done(); done == nil {
		<-b.done // a context that never ends: skip the select
	} else {
		select {
		case <-b.done:
		case <-done:
			return fmt.Errorf("waiting for the audit record to be durable: %w", ctx.Err())
		}
	}
	if b.err != nil {
		resultPool.Put(res)
		return b.err
	}
	var pair [128]byte
	copy(pair[:64], res.prev[:])
	copy(pair[64:], res.hash[:])
	both := string(pair[:]) // one allocation for the two
	rec.Seq, rec.Prev, rec.Hash = res.seq, both[:64], both[64:]
	if rec.Time.IsZero() {
		rec.Time = res.time
	}
	resultPool.Put(res) // not on ctx expiry above: the writer may still fill it
	return nil
}

var resultPool = sync.Pool{New: func() any { return new(result) }}

// Healthy returns nil while the trail can be written, otherwise the error
// (wrapping [ErrUnhealthy]).
func (t *Trail) Healthy() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	return t.failErr
}

// Close writes what is queued and a final checkpoint, syncs, and stops the
// writer and sinks. It returns an error if queued records could not be
// written.
func (t *Trail) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	t.closed = true
	t.mu.Unlock()
	close(t.quit)
	<-t.done
	t.stopSinks()
	t.lock.Close() // releases the flock
	return t.closeErr
}

func (t *Trail) enqueue(rec *Record, res *result) (*batch, error) {
	if rec == nil {
		return nil, fmt.Errorf("%w: nil record", ErrInvalidRecord)
	}
	if rec.Event == "" || rec.Event == EventCheckpoint {
		return nil, fmt.Errorf("%w: event %q", ErrInvalidRecord, rec.Event)
	}
	tm := rec.Time
	if tm.IsZero() {
		tm = t.opts.clock()
	}
	tm = tm.UTC().Truncate(time.Microsecond)
	r := *rec // shallow copy: encoded right here, so shared slices are only read
	r.Path = redactPath(r.Path, t.redact)
	if math.IsNaN(r.DurationMS) || math.IsInf(r.DurationMS, 0) {
		r.DurationMS = 0
	}
	bp := t.pool.Get().(*[]byte)
	body := appendBody((*bp)[:0], &r, tm)
	if res != nil {
		res.time = tm
	}

	t.mu.Lock()
	var refuse error
	switch {
	case t.closed:
		refuse = ErrClosed
	case t.failErr != nil:
		refuse = t.failErr
	case len(t.queue) >= maxQueue:
		refuse = ErrBacklog
	}
	if refuse != nil {
		if res != nil && refuse == t.failErr {
			t.refused++ // a durable append refused during the outage
		}
		t.mu.Unlock()
		t.releaseBody(item{body: body, buf: bp})
		return nil, refuse
	}
	t.queue = append(t.queue, item{body: body, buf: bp, res: res})
	var b *batch
	if res != nil {
		if t.cur == nil {
			t.cur = &batch{done: make(chan struct{})}
		}
		b = t.cur
	}
	// A durable append, or a full batch, wakes the writer now. Other
	// records wait up to asyncDelay for the ones after them, so that a
	// busy gateway wakes the writer once per batch, not once per request.
	wake := res != nil || len(t.queue) >= wakeBatch
	if !wake && !t.armed {
		t.armed = true
		t.delay.Reset(asyncDelay)
	}
	t.mu.Unlock()
	if wake {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	return b, nil
}

// releaseBody returns an item's buffer to the pool (putting the pool's own
// pointer back, so that recycling allocates nothing).
func (t *Trail) releaseBody(it item) {
	if it.buf != nil && cap(it.body) <= 64<<10 {
		*it.buf = it.body[:0]
		t.pool.Put(it.buf)
	}
}

// encodeInternal encodes a record the trail writes itself.
func (t *Trail) encodeInternal(r *Record) item {
	tm := r.Time
	if tm.IsZero() {
		tm = t.opts.clock()
	}
	return item{body: appendBody(nil, r, tm.UTC().Truncate(time.Microsecond))}
}

func systemRecord(action string, detail any) *Record {
	d, _ := json.Marshal(detail)
	return &Record{Event: EventSystem, Action: action, Detail: string(d), Decision: "", Enforced: false}
}

// openChain finds the chain head on disk, seals a torn tail, and writes the
// open record and a checkpoint.
func (t *Trail) openChain() error {
	for i := range t.ch.prev {
		t.ch.prev[i] = '0'
	}
	names, err := listFiles(t.cfg.Dir)
	if err != nil {
		return err
	}
	previous := "new"
	var first []item
	// The current file is the newest one holding a record or torn bytes;
	// empty files after it (a rotation that never got a record) are left.
	for i := len(names) - 1; i >= 0; i-- {
		path := filepath.Join(t.cfg.Dir, names[i])
		ts, err := scanTail(path)
		if err != nil {
			return fmt.Errorf("recovering audit trail: %w", err)
		}
		if ts.last == nil && ts.tornFrom == ts.size {
			continue
		}
		if ts.last == nil {
			// Only torn bytes here: the head is in an earlier file.
			for j := i - 1; j >= 0; j-- {
				pts, err := scanTail(filepath.Join(t.cfg.Dir, names[j]))
				if err != nil {
					return fmt.Errorf("recovering audit trail: %w", err)
				}
				if pts.last != nil {
					ts.last = pts.last
					break
				}
			}
		}
		day, idx, _ := parseFileName(names[i])
		t.ch.name, t.ch.day, t.ch.idx, t.ch.size = names[i], day, idx, ts.size
		previous = "unclean"
		if ts.last != nil {
			t.ch.seq = ts.last.Seq
			copy(t.ch.prev[:], ts.last.Hash)
			if ts.last.Event == EventCheckpoint && ts.last.Action == "close" {
				previous = "clean"
			}
		}
		f, err := t.opts.openFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("opening audit file %s: %w", path, err)
		}
		t.f = f
		if ts.tornFrom < ts.size {
			region := make([]byte, ts.size-ts.tornFrom)
			rf, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("reading torn tail of %s: %w", path, err)
			}
			_, err = rf.ReadAt(region, ts.tornFrom)
			rf.Close()
			if err != nil {
				return fmt.Errorf("reading torn tail of %s: %w", path, err)
			}
			added := region[len(region)-1] != '\n'
			if added {
				if _, err := f.Write([]byte{'\n'}); err != nil {
					return fmt.Errorf("sealing torn tail of %s: %w", path, err)
				}
				region = append(region, '\n')
				t.ch.size++
			}
			tr := tornRegion{File: names[i], Offset: ts.tornFrom, Length: int64(len(region)), SHA256: hashBytes(region), NewlineAdded: added}
			t.opts.log.Warn("audit: torn tail sealed after unclean shutdown / 不完全な末尾を封印しました",
				"file", path, "offset", tr.Offset, "bytes", tr.Length)
			first = append(first, t.encodeInternal(systemRecord(ActionTornSealed, tr)))
			previous = "unclean, torn tail sealed"
		}
		break
	}
	t.acked = t.ch
	first = append(first, t.encodeInternal(systemRecord(ActionOpen, map[string]any{"previous": previous, "pid": os.Getpid()})))
	// The open batch must land in the current file: a seal record follows
	// the bytes it seals.
	if err := t.writeBatch(first, t.f == nil, "open"); err != nil {
		return fmt.Errorf("writing the audit trail's open record: %w", err)
	}
	t.acked = t.ch
	t.rotated = false
	if err := t.writeHead(true); err != nil {
		t.opts.log.Warn("audit: writing checkpoint head file", "err", err)
	}
	if err := t.applyRetention(); err != nil {
		return err
	}
	return nil
}

// run is the writer goroutine.
func (t *Trail) run() {
	defer close(t.done)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	t.lastCkpt = t.opts.clock()
	for {
		quitting := false
		select {
		case <-t.wake:
		case <-t.delay.C:
		case <-tick.C:
		case <-t.quit:
			quitting = true
		}
		if t.failing() {
			if quitting || !time.Now().Before(t.nextRetry) {
				t.tryRecover()
			}
			if quitting {
				t.finish()
				return
			}
			continue
		}
		t.flushQueue()
		if !t.failing() && t.ch.sinceCkpt > 0 && t.opts.clock().Sub(t.lastCkpt) >= t.cfg.CheckpointInterval {
			if err := t.writeBatch(nil, true, "interval"); err != nil {
				t.fail(err, nil, nil)
			} else {
				t.committed(nil)
			}
		}
		if quitting {
			t.finish()
			return
		}
	}
}

func (t *Trail) failing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failErr != nil
}

// flushQueue writes everything queued, one group commit per round.
func (t *Trail) flushQueue() {
	for !t.failing() {
		t.mu.Lock()
		items := t.queue
		if len(items) == 0 {
			t.mu.Unlock()
			return
		}
		t.queue = t.spare[:0]
		b := t.cur
		t.cur = nil
		t.armed = false
		t.mu.Unlock()

		if err := t.writeBatch(items, true, ""); err != nil {
			t.fail(err, items, b)
			return
		}
		t.committed(items)
		if b != nil {
			close(b.done)
		}
		for i := range items {
			t.releaseBody(items[i])
			items[i] = item{}
		}
		if cap(items) <= maxKeptItems {
			t.spare = items[:0]
		} else {
			t.spare = nil // a backlog's queue is not kept once it is written
		}
	}
}

// committed runs after a successful fsync.
func (t *Trail) committed(items []item) {
	t.acked = t.ch
	if len(items) > 0 {
		t.m.records.Add(float64(len(items)))
		t.m.batch.Observe(float64(len(items)))
	}
	if t.headDirty && time.Since(t.lastHead) >= time.Second {
		if err := t.writeHead(false); err != nil {
			t.opts.log.Warn("audit: writing checkpoint head file", "err", err)
		}
	}
	if t.rotated {
		t.rotated = false
		if err := t.applyRetention(); err != nil {
			t.fail(err, nil, nil)
		}
	}
	t.notifySinks()
}

// writeBatch encodes items onto the chain, adds a checkpoint where due (and
// one at the end when ckpt names a reason), writes them with one write and
// one fsync. On error the chain position is left for fail to roll back.
func (t *Trail) writeBatch(items []item, allowRotate bool, ckpt string) error {
	if t.f == nil || (allowRotate && t.needRotate()) {
		if err := t.rotate(); err != nil {
			return err
		}
	}
	out := t.out[:0]
	var err error
	for i := range items {
		out = t.appendRecord(out, items[i].body, items[i].res)
		if t.ch.sinceCkpt >= t.cfg.CheckpointEvery {
			if out, err = t.appendCheckpoint(out, "every"); err != nil {
				return err
			}
		}
	}
	if ckpt != "" && (t.ch.sinceCkpt > 0 || ckpt == "close" || ckpt == "open") {
		if out, err = t.appendCheckpoint(out, ckpt); err != nil {
			return err
		}
	}
	// Keep the buffer for the next batch unless a burst grew it: an idle
	// gateway should not hold the largest batch it ever wrote.
	if cap(out) <= maxKeptOut {
		t.out = out
	} else {
		t.out = nil
	}
	if len(out) == 0 {
		return nil
	}
	if _, err := t.f.Write(out); err != nil {
		return fmt.Errorf("writing %s: %w", t.ch.name, err)
	}
	// fsync when someone waits for durability (AppendDurable), when a
	// checkpoint is sealed, and at least every asyncSyncEvery otherwise. A
	// batch of plain Appends is already in the page cache, which survives
	// kill -9; only a power loss could take the last asyncSyncEvery of it.
	start := time.Now()
	needSync := ckpt != "" || t.pendingJWS != "" || start.Sub(t.lastSync) >= asyncSyncEvery
	for i := range items {
		if items[i].res != nil {
			needSync = true
			break
		}
	}
	if needSync {
		if err := t.f.Sync(); err != nil {
			return fmt.Errorf("syncing %s: %w", t.ch.name, err)
		}
		t.lastSync = time.Now()
		t.m.fsync.Observe(t.lastSync.Sub(start).Seconds())
	}
	t.ch.size += int64(len(out))
	if t.pendingJWS != "" {
		t.lastJWS, t.pendingJWS, t.headDirty = t.pendingJWS, "", true
	}
	return nil
}

// appendRecord puts one record on the chain.
func (t *Trail) appendRecord(out, body []byte, res *result) []byte {
	t.ch.seq++
	start := len(out)
	out = appendUnhashed(out, t.ch.seq, body, t.ch.prev[:])
	var sum [32]byte
	if res != nil {
		res.seq = t.ch.seq
		res.prev = t.ch.prev
	}
	out, sum = appendHashed(out, start)
	hex.Encode(t.ch.prev[:], sum[:])
	if res != nil {
		res.hash = t.ch.prev
	}
	t.ch.sinceCkpt++
	return out
}

// appendCheckpoint seals the chain head with a signed checkpoint record.
// reason is "every", "interval", "open", "close" or "recovered"; "close"
// marks the payload final.
func (t *Trail) appendCheckpoint(out []byte, reason string) ([]byte, error) {
	now := t.opts.clock().UTC().Truncate(time.Microsecond)
	p := checkpointPayload{Seq: t.ch.seq, Head: string(t.ch.prev[:]), Time: now.Format(TimeLayout), Final: reason == "close"}
	jws, err := t.signer.sign(&p)
	if err != nil {
		return out, err
	}
	rec := Record{Time: now, Event: EventCheckpoint, Action: reason, Checkpoint: jws}
	out = t.appendRecord(out, appendBody(nil, &rec, now), nil)
	t.ch.sinceCkpt = 0
	t.lastCkpt = t.opts.clock()
	t.pendingJWS = jws // becomes the head once its batch is fsynced
	return out, nil
}

func (t *Trail) writeHead(sync bool) error {
	if t.lastJWS == "" {
		return nil
	}
	t.lastHead = time.Now()
	t.headDirty = false
	return writeFileAtomic(filepath.Join(t.cfg.Dir, headFile), []byte(t.lastJWS+"\n"), sync)
}

func (t *Trail) needRotate() bool {
	return t.ch.size >= t.cfg.RotateSize || t.ch.day < t.opts.clock().UTC().Format("20060102")
}

// fileDay is the day for a new file: today, but never before the current
// file's day, so that file names stay in chain order when the clock steps
// back.
func (t *Trail) fileDay() string {
	return max(t.opts.clock().UTC().Format("20060102"), t.ch.day)
}

// rotate closes the current file and starts the next one.
func (t *Trail) rotate() error {
	day := t.fileDay()
	if t.f != nil {
		if err := t.f.Sync(); err != nil {
			return fmt.Errorf("syncing %s before rotation: %w", t.ch.name, err)
		}
		t.f.Close()
		t.f = nil
	}
	names, err := listFiles(t.cfg.Dir)
	if err != nil {
		return err
	}
	idx := 1
	for _, n := range names {
		if d, i, _ := parseFileName(n); d == day && i >= idx {
			idx = i + 1
		}
	}
	name := fileName(day, idx)
	f, err := t.opts.openFile(filepath.Join(t.cfg.Dir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("creating audit file %s: %w", name, err)
	}
	if err := syncDir(t.cfg.Dir); err != nil {
		f.Close()
		return fmt.Errorf("syncing audit directory: %w", err)
	}
	t.f = f
	t.ch.name, t.ch.day, t.ch.idx, t.ch.size = name, day, idx, 0
	t.rotated = true
	return nil
}

// fail handles a write error: the trail turns unhealthy, the chain position
// rolls back to the last fsync, durable waiters get the error, and records
// from Append stay queued for the retry.
func (t *Trail) fail(err error, items []item, b *batch) {
	t.m.writeErrors.Inc()
	t.m.healthy.Set(0)
	t.opts.log.Error("audit: write failed; durable appends refused until it recovers / 監査証跡に書き込めません", "err", err)
	t.ch = t.acked
	t.pendingJWS = "" // its checkpoint was not made durable
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	now := time.Now()
	t.mu.Lock()
	if t.failErr == nil {
		t.failErr = fmt.Errorf("%w: %w", ErrUnhealthy, err)
		t.failSince = t.opts.clock()
		t.failCause = err
		t.retryDelay = 100 * time.Millisecond
	}
	t.nextRetry = now.Add(t.retryDelay)
	failErr := t.failErr
	var keep []item
	for _, it := range items {
		if it.res == nil {
			keep = append(keep, it)
		} else {
			t.refused++
		}
	}
	for _, it := range t.queue {
		if it.res == nil {
			keep = append(keep, it)
		} else {
			t.refused++
		}
	}
	t.queue = keep
	cur := t.cur
	t.cur = nil
	t.mu.Unlock()
	for _, bb := range []*batch{b, cur} {
		if bb != nil {
			bb.err = failErr
			close(bb.done)
		}
	}
}

// tryRecover reopens the file of the last fsync, cuts off anything written
// after it (never acknowledged), records the outage, and writes what Append
// queued meanwhile.
func (t *Trail) tryRecover() {
	err := t.reopenAcked()
	if err == nil {
		t.mu.Lock()
		items := t.queue
		t.queue = nil
		refused := t.refused
		t.mu.Unlock()
		sys := t.encodeInternal(systemRecord(ActionWriteFailed, map[string]any{
			"since":           t.failSince.UTC().Format(TimeLayout),
			"until":           t.opts.clock().UTC().Format(TimeLayout),
			"error":           t.failCause.Error(),
			"refused_durable": refused,
		}))
		all := append([]item{sys}, items...)
		if err = t.writeBatch(all, true, "recovered"); err == nil {
			t.mu.Lock()
			t.failErr = nil
			late := t.refused - refused // refused while the record was written
			t.refused = 0
			t.mu.Unlock()
			if late > 0 {
				t.opts.log.Warn("audit: durable appends refused while recovering, not counted in the write_failed record", "count", late)
			}
			t.m.healthy.Set(1)
			t.opts.log.Info("audit: writing recovered / 監査証跡の書き込みが回復しました")
			t.committed(items)
			for _, it := range items {
				t.releaseBody(it)
			}
			return
		}
		t.mu.Lock()
		t.queue = append(items, t.queue...)
		t.mu.Unlock()
	}
	t.m.writeErrors.Inc()
	t.ch = t.acked
	t.pendingJWS = ""
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	t.retryDelay = min(t.retryDelay*2, 5*time.Second)
	t.nextRetry = time.Now().Add(t.retryDelay)
	t.opts.log.Debug("audit: recovery attempt failed", "err", err)
}

func (t *Trail) reopenAcked() error {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	t.ch = t.acked
	if t.acked.name == "" {
		return nil // no file yet: writeBatch rotates into a new one
	}
	path := filepath.Join(t.cfg.Dir, t.acked.name)
	f, err := t.opts.openFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("reopening %s: %w", path, err)
	}
	if err := f.Truncate(t.acked.size); err != nil {
		f.Close()
		return fmt.Errorf("cutting unacknowledged bytes off %s: %w", path, err)
	}
	t.f = f
	return nil
}

// finish runs on Close in the writer goroutine.
func (t *Trail) finish() {
	if t.failing() {
		t.mu.Lock()
		n := len(t.queue)
		err := t.failErr
		t.mu.Unlock()
		if t.f != nil {
			t.f.Close()
		}
		t.closeErr = fmt.Errorf("closing audit trail: %d queued records could not be written: %w", n, err)
		return
	}
	t.flushQueue()
	if t.failing() {
		t.closeErr = fmt.Errorf("closing audit trail: %w", t.Healthy())
		return
	}
	if err := t.writeBatch(nil, false, "close"); err != nil {
		t.fail(err, nil, nil)
		t.closeErr = fmt.Errorf("closing audit trail: writing the final checkpoint: %w", err)
		return
	}
	t.acked = t.ch
	t.notifySinks()
	if err := t.writeHead(true); err != nil {
		t.closeErr = fmt.Errorf("closing audit trail: writing %s: %w", headFile, err)
	}
	if err := t.f.Close(); err != nil && t.closeErr == nil {
		t.closeErr = fmt.Errorf("closing audit trail: %w", err)
	}
	t.f = nil
	if err := syncDir(t.cfg.Dir); err != nil && t.closeErr == nil {
		t.closeErr = fmt.Errorf("closing audit trail: syncing directory: %w", err)
	}
}

// applyRetention removes files older than the retention period, oldest
// first and never the current one. It first records, durably, what it
// removes and the chain head at the cut, so that Verify accepts a trail that
// no longer starts at seq 1.
func (t *Trail) applyRetention() error {
	if t.cfg.Retention <= 0 {
		return nil
	}
	names, err := listFiles(t.cfg.Dir)
	if err != nil {
		return err
	}
	cutoff := t.opts.clock().Add(-t.cfg.Retention)
	var remove []string
	for _, n := range names {
		if n == t.ch.name {
			break
		}
		fi, err := os.Stat(filepath.Join(t.cfg.Dir, n))
		if err != nil || !fi.ModTime().Before(cutoff) {
			break
		}
		remove = append(remove, n)
	}
	if len(remove) == 0 {
		return nil
	}
	through, head := uint64(0), Genesis
	for i := len(remove) - 1; i >= 0; i-- {
		ts, err := scanTail(filepath.Join(t.cfg.Dir, remove[i]))
		if err != nil {
			return err
		}
		if ts.last != nil {
			through, head = ts.last.Seq, ts.last.Hash
			break
		}
	}
	rec := systemRecord(ActionRetention, retentionDetail{Removed: remove, ThroughSeq: through, Head: head, Retention: t.cfg.Retention.String()})
	if err := t.writeBatch([]item{t.encodeInternal(rec)}, false, ""); err != nil {
		return fmt.Errorf("recording audit retention: %w", err)
	}
	t.acked = t.ch
	for _, n := range remove {
		if err := os.Remove(filepath.Join(t.cfg.Dir, n)); err != nil {
			t.opts.log.Warn("audit: removing old file", "file", n, "err", err)
		}
	}
	_ = syncDir(t.cfg.Dir)
	t.opts.log.Info("audit: retention removed old files / 保存期間を過ぎたファイルを削除しました", "files", len(remove), "through_seq", through)
	return nil
}

// retentionDetail is the detail of an [ActionRetention] record.
type retentionDetail struct {
	Removed    []string `json:"removed"`
	ThroughSeq uint64   `json:"through_seq"`
	Head       string   `json:"head"`
	Retention  string   `json:"retention"`
}
