package cluster_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/internal/apptest"
)

// cutProxy forwards TCP to PostgreSQL until cut: then it closes every
// connection and refuses new ones, as a database that went away.
type cutProxy struct {
	dsn    string
	target string
	ln     net.Listener

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
	p := &cutProxy{target: u.Host, conns: map[net.Conn]struct{}{}}
	if p.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	p.dsn = u.String()
	go p.serve()
	t.Cleanup(func() { p.cut(); p.ln.Close() })
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
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

func waitFor(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// localSeqs are the seqs of every record in a replica's own trail.
func localSeqs(t *testing.T, r *apptest.Replica) []int64 {
	t.Helper()
	var out []int64
	for rec, err := range audit.Query(r.AuditDir(), audit.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, int64(rec.Seq))
	}
	return out
}

// centralSeqs are the seqs the central table holds for a replica.
func centralSeqs(t *testing.T, db *pgxpool.Pool, replica string) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := db.Query(ctx, `SELECT seq FROM audit_records WHERE replica = $1 ORDER BY seq`, replica)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// needsBinaries skips a test that builds and runs the binaries under
// -short, except with CI=true, where every test runs.
func needsBinaries(t *testing.T) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds and runs the binaries (-short)")
	}
}

// substitute replaces the first occurrence of each pair's first string
// with its second. A string that text (named by what) no longer contains
// fails the test: the example changed and the test must follow it.
func substitute(t *testing.T, what, text string, pairs [][2]string) string {
	t.Helper()
	for _, p := range pairs {
		if !strings.Contains(text, p[0]) {
			t.Fatalf("%s no longer has %s; update this test", what, p[0])
		}
		text = strings.Replace(text, p[0], p[1], 1)
	}
	return text
}
