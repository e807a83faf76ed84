package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Shipping to PostgreSQL
//
// In a cluster every replica keeps its own chained trail on local disk: it
// is the source of truth and the only thing a request ever waits for. A
// [PGShipper] copies the trail's lines to the table audit_records, keyed
// by (replica, seq), so that the console and `audit query` see every
// replica in one place and `audit verify` can re-check each replica's
// chain there ([VerifyPostgres]).
//
// The shipper keeps no state of its own: where to resume is max(seq) of
// its replica in the table. Rows are inserted with ON CONFLICT DO NOTHING,
// so a batch sent twice (an acknowledgement lost in an outage, a restart)
// is stored once: no loss, no duplicates. While PostgreSQL is down the
// shipper retries with backoff; the local trail is never blocked.

// PGQuerier is what a *pgxpool.Pool, a *pgx.Conn and a pgx.Tx have in
// common; the PostgreSQL functions of this package take one.
type PGQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pgSchema creates the central audit table. It is idempotent and runs
// under a transaction-scoped advisory lock, so replicas starting together
// do not race.
const pgSchema = `
CREATE TABLE IF NOT EXISTS audit_records (
	replica    text        NOT NULL,
	seq        bigint      NOT NULL,
	time       timestamptz NOT NULL,
	event      text        NOT NULL,
	user_id    text        NOT NULL,
	device     text        NOT NULL,
	route      text        NOT NULL,
	class      text        NOT NULL,
	zone       text        NOT NULL,
	decision   text        NOT NULL,
	enforced   boolean     NOT NULL,
	request_id text        NOT NULL,
	line       text        NOT NULL,
	shipped_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (replica, seq)
);
CREATE INDEX IF NOT EXISTS audit_records_time ON audit_records (time);
CREATE INDEX IF NOT EXISTS audit_records_user ON audit_records (user_id, time);
CREATE INDEX IF NOT EXISTS audit_records_request ON audit_records (request_id) WHERE request_id <> '';
`

// MigratePostgres creates the audit_records table and its indexes in the
// connection's current schema if they do not exist.
func MigratePostgres(ctx context.Context, db PGQuerier) error {
	b, ok := db.(interface {
		Begin(context.Context) (pgx.Tx, error)
	})
	if !ok {
		return errors.New("creating audit_records: need a pool or connection that can begin a transaction")
	}
	tx, err := b.Begin(ctx)
	if err != nil {
		return fmt.Errorf("creating audit_records: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('sekisho.audit.' || current_schema()))`); err != nil {
		return fmt.Errorf("creating audit_records: taking lock: %w", err)
	}
	if _, err := tx.Exec(ctx, pgSchema); err != nil {
		return fmt.Errorf("creating audit_records: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("creating audit_records: %w", err)
	}
	return nil
}

// ConnectPostgres opens a small pool for dsn, for the CLI and the
// console. The error never quotes the DSN (it may hold a password).
func ConnectPostgres(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("connecting to postgres for audit: invalid connection string")
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "sekisho-audit"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to postgres for audit: %w", err)
	}
	return pool, nil
}

// replicaFile holds a replica's id beside its trail.
const replicaFile = "replica.id"

var validReplica = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// ReplicaID returns the id under which the trail in dir is shipped,
// creating it on first use: the host name (a pod's name in Kubernetes)
// and 8 random hex digits, kept in dir/replica.id. A trail that starts
// over (an empty volume) therefore gets a new id, and its seq 1 never
// collides with an older chain's in the central table.
func ReplicaID(dir string) (string, error) {
	p := filepath.Join(dir, replicaFile)
	if b, err := os.ReadFile(p); err == nil {
		id := strings.TrimSpace(string(b))
		if !validReplica.MatchString(id) {
			return "", fmt.Errorf("reading replica id %s: %q is not a valid id", p, id)
		}
		return id, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading replica id: %w", err)
	}
	host, _ := os.Hostname()
	host = regexp.MustCompile(`[^A-Za-z0-9._-]`).ReplaceAllString(host, "-")
	if len(host) > 80 {
		host = host[:80]
	}
	if host == "" {
		host = "sekisho"
	}
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("making replica id: %w", err)
	}
	id := host + "-" + hex.EncodeToString(r[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("writing replica id: %w", err)
	}
	if err := writeFileAtomic(p, []byte(id+"\n"), true); err != nil {
		return "", fmt.Errorf("writing replica id %s: %w", p, err)
	}
	return id, nil
}

// PGShipper copies one local trail to the central table. Create it with
// [NewPGShipper]; run it with [PGShipper.Run].
type PGShipper struct {
	db      PGQuerier
	dir     string
	replica string
	log     *slog.Logger
	batch   int
	poll    time.Duration

	// mu serialises Sync (Run's loop and a final Sync at shutdown).
	mu sync.Mutex
	// cur is the position reached; valid is false until it has been
	// recovered from the table (at start and after every error).
	cur   pgCursor
	valid bool
	buf   []byte // read buffer, reused
}

type pgCursor struct {
	file   string
	offset int64
	seq    uint64 // the last seq known to be in the table
}

// ShipperOption configures a [PGShipper].
type ShipperOption func(*PGShipper)

// ShipperLogger sets the logger for outages. Default slog.Default().
func ShipperLogger(l *slog.Logger) ShipperOption { return func(s *PGShipper) { s.log = l } }

// ShipperPoll sets how often the shipper looks for new lines. Default 250ms.
func ShipperPoll(d time.Duration) ShipperOption { return func(s *PGShipper) { s.poll = d } }

// ShipperBatch sets the most rows per insert. Default 5000.
func ShipperBatch(n int) ShipperOption { return func(s *PGShipper) { s.batch = n } }

// NewPGShipper ships the trail in dir to db as replica (see [ReplicaID]).
// Call [MigratePostgres] once before.
func NewPGShipper(db PGQuerier, dir, replica string, opts ...ShipperOption) (*PGShipper, error) {
	if !validReplica.MatchString(replica) {
		return nil, fmt.Errorf("audit shipper: replica id %q: letters, digits, '.', '_', '-' only", replica)
	}
	s := &PGShipper{db: db, dir: dir, replica: replica, log: slog.Default(), batch: 5000, poll: 250 * time.Millisecond}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Replica is the id this shipper ships under.
func (s *PGShipper) Replica() string { return s.replica }

// Run ships until ctx ends: every poll interval it sends what the trail
// gained; after a failure it retries with backoff (up to 5 s) and catches
// up. It returns nil when ctx ends.
func (s *PGShipper) Run(ctx context.Context) error {
	backoff := s.poll
	down := false
	for {
		_, err := s.Sync(ctx)
		wait := s.poll
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if !down {
				s.log.Warn("audit: cannot ship to postgres; the local trail goes on and will be caught up / PostgreSQL へ監査記録を転送できません（ローカルには記録を継続）", "replica", s.replica, "err", err)
			}
			down = true
			wait = backoff
			backoff = min(2*backoff, 5*time.Second)
		default:
			if down {
				s.log.Info("audit: shipping to postgres resumed / PostgreSQL への転送を再開しました", "replica", s.replica)
			}
			down = false
			backoff = s.poll
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Sync ships every complete record line the trail holds now and returns
// how many rows were sent (some may already have been in the table). It
// is safe to call while Run runs.
func (s *PGShipper) Sync(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.valid {
		if err := s.recover(ctx); err != nil {
			return 0, err
		}
	}
	total := 0
	for {
		n, more, err := s.step(ctx)
		total += n
		if err != nil {
			s.valid = false
			return total, err
		}
		if !more {
			return total, nil
		}
	}
}

// recover finds where to resume: the last seq of this replica in the
// table, and the local file that holds the record after it.
func (s *PGShipper) recover(ctx context.Context) error {
	var last *int64
	if err := s.db.QueryRow(ctx, `SELECT max(seq) FROM audit_records WHERE replica = $1`, s.replica).Scan(&last); err != nil {
		return fmt.Errorf("reading shipped position of %s: %w", s.replica, err)
	}
	seq := uint64(0)
	if last != nil {
		seq = uint64(*last)
	}
	names, err := listFiles(s.dir)
	if err != nil {
		return err
	}
	// The record after seq is in the last file whose first record is at or
	// before seq+1; earlier files are finished.
	file := ""
	for _, n := range names {
		first, ok := firstSeq(filepath.Join(s.dir, n))
		if ok && first > seq+1 && file != "" {
			break
		}
		file = n
	}
	s.cur = pgCursor{file: file, seq: seq}
	s.valid = true
	return nil
}

// firstSeq reads the seq of the first record of a trail file.
func firstSeq(path string) (uint64, bool) {
	var seq uint64
	found := false
	_ = scanLines(path, func(line []byte, _ int64, _ int, terminated bool) bool {
		if r, err := ParseRecord(line); err == nil && terminated {
			seq, found = r.Seq, true
			return false
		}
		return true
	})
	return seq, found
}

// step ships up to one batch from the current file and reports whether
// there may be more right away.
func (s *PGShipper) step(ctx context.Context) (int, bool, error) {
	names, err := listFiles(s.dir)
	if err != nil {
		return 0, false, err
	}
	i := 0
	for i < len(names) && names[i] < s.cur.file {
		i++
	}
	if i == len(names) {
		return 0, false, nil
	}
	if names[i] != s.cur.file {
		if s.cur.file != "" {
			s.log.Warn("audit: a trail file was removed before it was shipped; continuing with the next", "replica", s.replica, "file", s.cur.file)
		}
		s.cur.file, s.cur.offset = names[i], 0
	}
	rows, end, err := s.read(filepath.Join(s.dir, s.cur.file))
	if err != nil {
		return 0, false, err
	}
	if end == 0 {
		// Nothing complete after the position: go on to the next file once
		// this one is finished (a newer file exists).
		if i+1 < len(names) {
			s.cur.file, s.cur.offset = names[i+1], 0
			return 0, true, nil
		}
		return 0, false, nil
	}
	if len(rows) > 0 {
		if err := s.insert(ctx, rows); err != nil {
			return 0, false, err
		}
		s.cur.seq = max(s.cur.seq, rows[len(rows)-1].seq)
	}
	s.cur.offset += end
	return len(rows), true, nil
}

// pgRow is one line to ship with its query columns.
type pgRow struct {
	seq  uint64
	rec  Record
	line string
}

// read returns up to one batch of records after the cursor in path and
// how many bytes of complete lines it consumed. Lines that are not records
// (a torn write sealed after a crash) are skipped: verification of the
// local trail accounts for them.
func (s *PGShipper) read(path string) ([]pgRow, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	if s.buf == nil {
		s.buf = make([]byte, 4<<20)
	}
	buf := s.buf
	n, rerr := f.ReadAt(buf, s.cur.offset)
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		return nil, 0, fmt.Errorf("reading %s: %w", path, rerr)
	}
	chunk := buf[:n]
	var rows []pgRow
	var used int64
	var scratch []byte
	for len(chunk) > 0 && len(rows) < s.batch {
		k := bytes.IndexByte(chunk, '\n')
		if k < 0 {
			if len(chunk) == len(buf) && used == 0 {
				used = int64(len(chunk)) // a line longer than any record: skip it
			}
			break
		}
		line := chunk[:k]
		chunk = chunk[k+1:]
		used += int64(k + 1)
		var r Record
		if scratch, err = parseLine(line, &r, scratch); err != nil {
			continue
		}
		if r.Seq <= s.cur.seq {
			continue
		}
		rows = append(rows, pgRow{seq: r.Seq, rec: r, line: string(line)})
	}
	return rows, used, nil
}

// copier is implemented by *pgxpool.Pool and *pgx.Conn.
type copier interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error)
}

var pgColumns = []string{"replica", "seq", "time", "event", "user_id", "device", "route", "class", "zone", "decision", "enforced", "request_id", "line"}

// insert stores rows; rows already there are left alone. Rows after the
// position recovered from the table are new, so they go in with COPY
// (about three times faster); should some be there after all (another
// process shipping the same trail) the batch is sent again with INSERT …
// ON CONFLICT DO NOTHING.
func (s *PGShipper) insert(ctx context.Context, rows []pgRow) error {
	if c, ok := s.db.(copier); ok {
		_, err := c.CopyFrom(ctx, pgx.Identifier{"audit_records"}, pgColumns, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := &rows[i]
			return []any{s.replica, int64(r.seq), r.rec.Time.UTC(), r.rec.Event, r.rec.User, r.rec.Device, r.rec.Route,
				r.rec.Class, r.rec.Zone, r.rec.Decision, r.rec.Enforced, r.rec.RequestID, r.line}, nil
		}))
		var pe *pgconn.PgError
		if err == nil {
			return nil
		} else if !errors.As(err, &pe) || pe.Code != "23505" { // unique_violation
			return fmt.Errorf("shipping %d audit records of %s (seq %d–%d): %w", len(rows), s.replica, rows[0].seq, rows[len(rows)-1].seq, err)
		}
	}
	return s.insertIgnoring(ctx, rows)
}

// insertIgnoring stores rows in one statement, skipping those already there.
func (s *PGShipper) insertIgnoring(ctx context.Context, rows []pgRow) error {
	n := len(rows)
	var (
		seq                                                 = make([]int64, n)
		tm                                                  = make([]time.Time, n)
		event, user, device, route, class, zone, dec, reqID = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		enforced                                            = make([]bool, n)
		line                                                = make([]string, n)
	)
	for i, r := range rows {
		seq[i], tm[i] = int64(r.seq), r.rec.Time.UTC()
		event[i], user[i], device[i], route[i] = r.rec.Event, r.rec.User, r.rec.Device, r.rec.Route
		class[i], zone[i], dec[i], reqID[i] = r.rec.Class, r.rec.Zone, r.rec.Decision, r.rec.RequestID
		enforced[i], line[i] = r.rec.Enforced, r.line
	}
	_, err := s.db.Exec(ctx, `INSERT INTO audit_records
		(replica, seq, time, event, user_id, device, route, class, zone, decision, enforced, request_id, line)
		SELECT $1, * FROM unnest($2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::boolean[], $12::text[], $13::text[])
		ON CONFLICT (replica, seq) DO NOTHING`,
		s.replica, seq, tm, event, user, device, route, class, zone, dec, enforced, reqID, line)
	if err != nil {
		return fmt.Errorf("shipping %d audit records of %s (seq %d–%d): %w", n, s.replica, rows[0].seq, rows[n-1].seq, err)
	}
	return nil
}

// QueryPostgres iterates over the central table's records that match f,
// in time order (then replica and seq). Each line is parsed and its hash
// checked, as [Query] does for files; a row that does not parse yields
// (nil, *LineError) with File "postgres:<replica>" and Line its seq, and
// the iteration continues. A database error yields (nil, err) and ends
// it. The filter's fields are applied in SQL.
func QueryPostgres(ctx context.Context, db PGQuerier, f Filter) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		var where []string
		var args []any
		add := func(cond string, v any) {
			args = append(args, v)
			where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
		}
		for _, c := range []struct{ col, v string }{
			{"user_id", f.User}, {"device", f.Device}, {"route", f.Route}, {"class", f.Class},
			{"zone", f.Zone}, {"decision", f.Decision}, {"event", f.Event}, {"request_id", f.RequestID},
		} {
			if c.v != "" {
				add(c.col+" = ?", c.v)
			}
		}
		if f.Enforced != nil {
			add("enforced = ?", *f.Enforced)
		}
		if !f.Since.IsZero() {
			add("time >= ?", f.Since.UTC())
		}
		if !f.Until.IsZero() {
			add("time < ?", f.Until.UTC())
		}
		q := `SELECT replica, seq, line FROM audit_records`
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		q += " ORDER BY time, replica, seq"
		if f.Limit > 0 {
			q += " LIMIT " + strconv.Itoa(f.Limit)
		}
		rows, err := db.Query(ctx, q, args...)
		if err != nil {
			yield(nil, fmt.Errorf("querying audit_records: %w", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var replica, line string
			var seq int64
			if err := rows.Scan(&replica, &seq, &line); err != nil {
				yield(nil, fmt.Errorf("reading audit_records: %w", err))
				return
			}
			r, err := ParseRecord([]byte(line))
			if err != nil {
				if !yield(nil, &LineError{File: "postgres:" + replica, Line: int(seq), Err: err}) {
					return
				}
				continue
			}
			if !yield(r, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(nil, fmt.Errorf("reading audit_records: %w", err))
		}
	}
}

// ReplicaVerify is the verification of one replica's chain as shipped.
type ReplicaVerify struct {
	Replica string
	*VerifyResult
}

// VerifyPostgres re-verifies, for every replica in the central table, its
// chain from the shipped canonical lines: each line canonical with the
// right hash, seq contiguous from 1 (or from a retention record), prev
// linking to the previous hash, every checkpoint signed by a key in keys
// and sealing the chain head. Problems name File "postgres:<replica>" and
// the seq as Line. What the table cannot show is a cut tail after the
// last shipped checkpoint: the replica's own trail (its checkpoint.jws)
// answers that. It returns an error only when it could not run.
func VerifyPostgres(ctx context.Context, db PGQuerier, keys jwk.Set) ([]ReplicaVerify, error) {
	if keys == nil || keys.Len() == 0 {
		return nil, errors.New("verifying audit_records: no public key")
	}
	rows, err := db.Query(ctx, `SELECT DISTINCT replica FROM audit_records ORDER BY replica`)
	if err != nil {
		return nil, fmt.Errorf("verifying audit_records: listing replicas: %w", err)
	}
	replicas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("verifying audit_records: listing replicas: %w", err)
	}
	var out []ReplicaVerify
	for _, rep := range replicas {
		res, err := verifyReplica(ctx, db, rep, keys)
		if err != nil {
			return nil, err
		}
		out = append(out, ReplicaVerify{Replica: rep, VerifyResult: res})
	}
	return out, nil
}

// verifyReplica walks one replica's rows in seq order through the same
// chain checks as [Verify], in pages so memory stays flat.
func verifyReplica(ctx context.Context, db PGQuerier, replica string, keys jwk.Set) (*VerifyResult, error) {
	name := "postgres:" + replica
	v := &verifier{keys: keys, res: &VerifyResult{Files: 1}, ckpts: map[uint64]string{}}
	after := int64(-1)
	for v.res.Problem == nil {
		rows, err := db.Query(ctx, `SELECT seq, line FROM audit_records WHERE replica = $1 AND seq > $2 ORDER BY seq LIMIT 5000`, replica, after)
		if err != nil {
			return nil, fmt.Errorf("verifying audit_records of %s: %w", replica, err)
		}
		n := 0
		for rows.Next() && v.res.Problem == nil {
			var seq int64
			var line string
			if err := rows.Scan(&seq, &line); err != nil {
				rows.Close()
				return nil, fmt.Errorf("verifying audit_records of %s: %w", replica, err)
			}
			n++
			after = seq
			lr := lineRes{raw: []byte(line), n: int(seq), terminated: true}
			if _, lr.err = parseLine(lr.raw, &lr.rec, nil); lr.err == nil && lr.rec.Seq != uint64(seq) {
				lr.err = fmt.Errorf("%w: the line's seq %d is stored under seq %d", errSyntax, lr.rec.Seq, seq)
			}
			if lr.err != nil {
				// In the table a line is a row: a bad one cannot be a torn
				// write to be sealed later.
				v.pending = &pendingBad{file: name, line: int(seq), seq: uint64(seq), err: lr.err}
				v.badLine(v.pending)
				v.pending = nil
				break
			}
			v.line(name, &lr)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("verifying audit_records of %s: %w", replica, err)
		}
		if n == 0 {
			break
		}
	}
	if v.res.Problem != nil {
		return v.res, nil
	}
	if !v.have {
		v.problem(name, 0, 0, "記録がありません", "the replica holds no record")
		return v.res, nil
	}
	if v.first.Seq != 1 {
		ok := false
		for _, d := range v.retentions {
			if d.ThroughSeq+1 == v.first.Seq && d.Head == v.first.Prev {
				ok = true
			}
		}
		if !ok {
			v.problem(name, int(v.first.Seq), v.first.Seq, fmt.Sprintf("証跡の先頭（seq 1〜%d）が中央のテーブルにありません", v.first.Seq-1),
				fmt.Sprintf("the start of the chain (seq 1 to %d) is not in the central table", v.first.Seq-1))
			return v.res, nil
		}
		v.res.RetainedFrom = v.first.Seq
	}
	return v.res, nil
}
