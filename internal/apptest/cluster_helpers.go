package apptest

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/internal/app"
)

// Replica is one gateway of a cluster: a World whose store is a shared
// PostgreSQL schema, with its cluster part (audit shipping, policy
// versions).
type Replica struct {
	*World
	Cluster *app.Cluster
	// Name is the replica's label in the test ("a", "b").
	Name string

	clusterDone chan struct{}
}

// ClusterOptions change a cluster.
type ClusterOptions struct {
	Options
	// DSN of the shared schema (storetest.PostgresDSN); each replica may
	// get its own through DSNs (a proxy in front of the database).
	DSN  string
	DSNs []string
	// Replicas: how many. Default 2.
	Replicas int
	// Clock, if set, is every replica's clock (app.WithClock).
	Clock func() time.Time
	// SkipUsers: the schema already has them (a second StartCluster on
	// the same DSN).
	SkipUsers bool
}

// StartCluster runs n gateways that share one PostgreSQL schema, one
// device CA, one server certificate, one upstream and the same policy
// file; each has its own directory (config, audit trail). The users of
// [Users] are created once. Replicas stop, and their clusters close, when
// the test ends.
func StartCluster(t testing.TB, o ClusterOptions) []*Replica {
	t.Helper()
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	base := t.TempDir()
	ca, err := certs.Init(filepath.Join(base, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	certPEM, keyPEM, err := ca.IssueServer([]string{"zaimu.gw.example.lg.jp", "juki.gw.example.lg.jp", "bunsho.gw.example.lg.jp", "127.0.0.1"}, 30)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		t.Helper()
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("server.pem", certPEM)
	write("server-key.pem", keyPEM)
	if err := ca.WriteCRL(filepath.Join(base, "crl.pem"), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if o.Policy == "" {
		o.Policy = DefaultPolicy
	}
	if o.Routes == "" {
		o.Routes = DefaultRoutes
	}
	write("policy.csv", []byte(o.Policy))

	var seenW *World // the upstream records into the first replica's World
	up := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if w := seenW; w != nil {
			w.mu.Lock()
			w.seen = append(w.seen, Seen{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone()})
			w.mu.Unlock()
		}
		fmt.Fprintf(rw, "upstream path=%s user=%s replica-test", r.URL.Path, r.Header.Get("X-Sekisho-User"))
	}))
	t.Cleanup(up.Close)

	var out []*Replica
	for i := range o.Replicas {
		name := string(rune('a' + i))
		dsn := o.DSN
		if i < len(o.DSNs) {
			dsn = o.DSNs[i]
		}
		w := &World{T: t, Dir: filepath.Join(base, "replica-"+name), CA: ca, CAPool: pool, done: make(chan error, 1)}
		w.Write("sekisho.yaml", []byte(fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  http_listen: "127.0.0.1:0"
  metrics_listen: "127.0.0.1:0"
  tls: {cert: ../server.pem, key: ../server-key.pem}
  client_ca: [../ca/ca.pem]
  crl: ../crl.pem
%s
store: {driver: postgres, dsn: %q}
webauthn: {rp_id: gw.example.lg.jp}
zones:
  chonai: [127.0.0.0/8]
routes:
%s
policy: {file: ../policy.csv}
audit: {dir: data/audit, checkpoint_every: 50}
%s
`, indent(o.Server, "  "), dsn, strings.ReplaceAll(o.Routes, "{{UPSTREAM}}", up.URL), o.Extra)))
		cfg, err := config.Load(filepath.Join(w.Dir, "sekisho.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		w.cancel = cancel
		opts := []app.Option{app.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}
		if o.Clock != nil {
			opts = append(opts, app.WithClock(o.Clock))
		}
		if w.App, err = app.New(ctx, cfg, opts...); err != nil {
			cancel()
			t.Fatalf("starting replica %s: %v", name, err)
		}
		r := &Replica{World: w, Name: name, clusterDone: make(chan struct{})}
		r.Cluster = w.App.Cluster
		addrs, err := w.App.Listen()
		if err != nil {
			t.Fatal(err)
		}
		w.HTTPS, w.HTTP, w.Metrics = addrs[0], addrs[1], addrs[2]
		go func() { w.done <- w.App.Run(ctx) }()
		close(r.clusterDone) // App.Run runs the cluster part
		t.Cleanup(r.Stop)
		if i == 0 {
			seenW = w
		}
		if i == 0 && !o.SkipUsers {
			for _, u := range Users {
				c := *u
				if err := w.App.Store.CreateUser(ctx, &c); err != nil {
					t.Fatal(err)
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// Stop shuts the replica down (gateway, then trail, then a last audit
// shipping), as a pod that is terminated.
func (r *Replica) Stop() {
	w := r.World
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
	<-r.clusterDone
	w.App.Close() // closes the cluster part too
	w.cancel = nil
}
