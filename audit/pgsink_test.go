package audit_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/store/storetest"
)

// pgWorld is a trail in a temporary directory and a pool on a private
// schema, optionally through a TCP proxy that the test can cut.
type pgWorld struct {
	t     *testing.T
	trail *audit.Trail
	dir   string
	pool  *pgxpool.Pool
	proxy *cutProxy
}

func newPGWorld(t *testing.T) *pgWorld {
	t.Helper()
	dsn := storetest.PostgresDSN(t)
	w := &pgWorld{t: t, dir: t.TempDir()}
	w.proxy = startCutProxy(t, dsn)
	var err error
	if w.pool, err = pgxpool.New(t.Context(), w.proxy.dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.pool.Close)
	if err := audit.MigratePostgres(t.Context(), w.pool); err != nil {
		t.Fatal(err)
	}
	if w.trail, err = audit.Open(config.Audit{Dir: w.dir, CheckpointEvery: 40}, audit.WithLogger(quiet())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.trail.Close() })
	return w
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (w *pgWorld) append(n int, user string) {
	w.t.Helper()
	for i := range n {
		rec := &audit.Record{Event: audit.EventAccess, User: user, Route: "zaimu", Class: "2", Zone: "chonai",
			Decision: audit.DecisionAllow, Enforced: true, RequestID: fmt.Sprintf("%s-%d", user, i), Path: "/"}
		if err := w.trail.AppendDurable(context.Background(), rec); err != nil {
			w.t.Fatal(err)
		}
	}
}

// localSeqs are the seqs of every record in the local trail.
func (w *pgWorld) localSeqs() []int64 {
	w.t.Helper()
	var out []int64
	for r, err := range audit.Query(w.dir, audit.Filter{}) {
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, int64(r.Seq))
	}
	return out
}

// centralSeqs are the seqs stored for replica, with duplicates (there can
// be none: the primary key forbids them, and the test checks the count).
func (w *pgWorld) centralSeqs(replica string) []int64 {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := w.pool.Query(ctx, `SELECT seq FROM audit_records WHERE replica = $1 ORDER BY seq`, replica)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var s int64
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

func TestPGShipperShipsEveryRecordOnce(t *testing.T) {
	w := newPGWorld(t)
	ctx := t.Context()
	w.append(120, "sato")
	s, err := audit.NewPGShipper(w.pool, w.dir, "gw-a", audit.ShipperLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(w.localSeqs(), w.centralSeqs("gw-a")); diff != "" {
		t.Fatalf("central table differs from the local trail (-local +central):\n%s", diff)
	}
	// More records, and a restarted shipper (no memory of its position):
	// it resumes from max(seq) and sends nothing twice.
	w.append(70, "suzuki")
	s2, _ := audit.NewPGShipper(w.pool, w.dir, "gw-a", audit.ShipperLogger(quiet()), audit.ShipperBatch(25))
	n, err := s2.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n < 70 || n > 75 { // 70 records and the checkpoints among them
		t.Errorf("restarted shipper sent %d rows, want the ~70 new ones only", n)
	}
	if diff := cmp.Diff(w.localSeqs(), w.centralSeqs("gw-a")); diff != "" {
		t.Fatalf("after restart (-local +central):\n%s", diff)
	}
	// Sending everything again (a lost acknowledgement) changes nothing.
	if _, err := w.pool.Exec(ctx, `DELETE FROM audit_records WHERE replica = 'gw-a' AND seq > 150`); err != nil {
		t.Fatal(err)
	}
	s3, _ := audit.NewPGShipper(w.pool, w.dir, "gw-a", audit.ShipperLogger(quiet()))
	if _, err := s3.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(w.localSeqs(), w.centralSeqs("gw-a")); diff != "" {
		t.Fatalf("after re-shipping (-local +central):\n%s", diff)
	}

	// Two shippers on one trail (a second process by mistake): the one
	// that is behind finds its rows already there and adds none twice.
	behind, _ := audit.NewPGShipper(w.pool, w.dir, "gw-a", audit.ShipperLogger(quiet()))
	if _, err := behind.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	w.append(30, "tanaka")
	if _, err := s3.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := behind.Sync(ctx); err != nil || n < 30 {
		t.Fatalf("the shipper that was behind: %d rows, %v; want the 30 new ones sent again without error", n, err)
	}
	if diff := cmp.Diff(w.localSeqs(), w.centralSeqs("gw-a")); diff != "" {
		t.Fatalf("after two shippers (-local +central):\n%s", diff)
	}

	// The central copy verifies with the trail's key; the query sees the
	// records with their parsed columns.
	res, err := audit.VerifyPostgres(ctx, w.pool, w.trail.PublicJWKS())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Replica != "gw-a" || !res[0].OK() || res[0].Checkpoints == 0 {
		t.Fatalf("VerifyPostgres = %+v, want gw-a intact with checkpoints", res)
	}
	var got []string
	for r, err := range audit.QueryPostgres(ctx, w.pool, audit.Filter{User: "suzuki", Limit: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.RequestID)
	}
	if diff := cmp.Diff([]string{"suzuki-0", "suzuki-1", "suzuki-2"}, got); diff != "" {
		t.Errorf("QueryPostgres user=suzuki (-want +got):\n%s", diff)
	}
}

func TestPGShipperCatchesUpAfterOutage(t *testing.T) {
	w := newPGWorld(t)
	s, err := audit.NewPGShipper(w.pool, w.dir, "gw-b", audit.ShipperLogger(quiet()), audit.ShipperPoll(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	w.append(30, "sato")
	waitFor(t, "first records shipped", func() bool { return len(w.centralSeqs("gw-b")) >= 30 })

	w.proxy.cut()
	// The trail goes on writing durably while the database is away.
	start := time.Now()
	w.append(200, "tanaka")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("appending 200 records during the outage took %v: the trail was blocked", d)
	}
	time.Sleep(300 * time.Millisecond) // the shipper fails a few times
	w.proxy.restore()
	waitFor(t, "catch-up after the outage", func() bool { return len(w.centralSeqs("gw-b")) == len(w.localSeqs()) })
	cancel()
	<-done
	if diff := cmp.Diff(w.localSeqs(), w.centralSeqs("gw-b")); diff != "" {
		t.Fatalf("after the outage (-local +central):\n%s", diff)
	}
}

func TestVerifyPostgresFindsTampering(t *testing.T) {
	w := newPGWorld(t)
	ctx := t.Context()
	w.append(60, "sato")
	s, _ := audit.NewPGShipper(w.pool, w.dir, "gw-c", audit.ShipperLogger(quiet()))
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, sql string
		seq       uint64
		reason    string
	}{
		{"edit", `UPDATE audit_records SET line = replace(line, '"user":"sato"', '"user":"kato"') WHERE seq = 10`, 10, "hash does not match"},
		{"delete", `DELETE FROM audit_records WHERE seq = 20`, 21, "records missing"},
		{"reorder", `UPDATE audit_records SET seq = -30 WHERE seq = 30; UPDATE audit_records SET seq = 30 WHERE seq = 31; UPDATE audit_records SET seq = 31 WHERE seq = -30`, 30, "stored under seq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := w.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, tc.sql); err != nil {
				t.Fatal(err)
			}
			res, err := audit.VerifyPostgres(ctx, tx, w.trail.PublicJWKS())
			if err != nil {
				t.Fatal(err)
			}
			p := res[0].Problem
			if p == nil || p.Seq != tc.seq || !contains(p.ReasonEN, tc.reason) || p.File != "postgres:gw-c" {
				t.Fatalf("problem = %+v, want seq %d %q", p, tc.seq, tc.reason)
			}
		})
	}
}

func TestNewPGShipperRefusesBadReplica(t *testing.T) {
	for _, id := range []string{"", "a b", "x'; DROP TABLE audit_records; --", string(make([]byte, 101))} {
		if _, err := audit.NewPGShipper(nil, t.TempDir(), id); err == nil {
			t.Errorf("NewPGShipper(%q) accepted", id)
		}
	}
}

func TestReplicaIDIsKept(t *testing.T) {
	dir := t.TempDir()
	a, err := audit.ReplicaID(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := audit.ReplicaID(dir)
	if err != nil || a != b {
		t.Fatalf("ReplicaID twice = %q, %q, %v", a, b, err)
	}
	c, _ := audit.ReplicaID(t.TempDir())
	if c == a {
		t.Fatalf("two trails share replica id %q", a)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cutProxy forwards TCP to PostgreSQL until cut: then it closes every
// connection and refuses new ones, as a database that went away.
type cutProxy struct {
	t      *testing.T
	dsn    string
	target string
	ln     net.Listener
	addr   string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func startCutProxy(t *testing.T, dsn string) *cutProxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, target: u.Host, conns: map[net.Conn]struct{}{}}
	if p.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	p.addr = p.ln.Addr().String()
	u.Host = p.addr
	p.dsn = u.String()
	go p.serve(p.ln)
	t.Cleanup(func() { p.cut(); p.ln.Close() })
	return p
}

func (p *cutProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close(); c.Close() }()
		go func() { io.Copy(c, up); up.Close(); c.Close() }()
	}
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// BenchmarkPGShipper measures shipping throughput: records of a trail
// sent to PostgreSQL per second (batches of 1000 through unnest).
func BenchmarkPGShipper(b *testing.B) {
	dsn := storetest.PostgresDSN(b)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if err := audit.MigratePostgres(context.Background(), pool); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	tr, err := audit.Open(config.Audit{Dir: dir}, audit.WithLogger(quiet()))
	if err != nil {
		b.Fatal(err)
	}
	const n = 20000
	for i := range n {
		rec := &audit.Record{Event: audit.EventAccess, User: "sato", Route: "zaimu", Class: "2", Zone: "chonai",
			Decision: audit.DecisionAllow, Enforced: true, RequestID: fmt.Sprint(i), Method: "GET", Host: "zaimu.gw.example.lg.jp", Path: "/ledger?page=2"}
		if err := tr.Append(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := tr.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	total := 0
	for i := 0; b.Loop(); i++ {
		s, _ := audit.NewPGShipper(pool, dir, fmt.Sprintf("bench-%d", i), audit.ShipperLogger(quiet()))
		k, err := s.Sync(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		total += k
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
}
