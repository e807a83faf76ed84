package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/internal/app"
	"github.com/sekisho/sekisho/store"
)

// BenchmarkGatewayRequest measures one authenticated, authorised, audited
// request through the whole gateway handler (no client network), against
// a real upstream: the cost sekisho adds per request.
func BenchmarkGatewayRequest(b *testing.B) {
	b.Run("bare-reverseproxy", func(b *testing.B) { benchBare(b, false) })
	b.Run("bare-reverseproxy-pooled", func(b *testing.B) { benchBare(b, true) })
	for _, path := range []string{"/", "/sync/"} {
		b.Run(strings.Trim(path, "/")+"class", func(b *testing.B) { benchGateway(b, path) })
	}
}

// benchBare is the floor: httputil.ReverseProxy alone, same upstream, same
// harness, for the ratio that docs/performance.md reports; pooled, with a
// BufferPool for its 32 KiB copy buffers as sekisho has.
func benchBare(b *testing.B, pooled bool) {
	payload := []byte(strings.Repeat("x", 1024))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(payload) }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256}
	if pooled {
		rp.BufferPool = &benchPool{}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "http://bench.gw.localhost/", nil)
			w := httptest.NewRecorder()
			rp.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}

func benchGateway(b *testing.B, path string) {
	payload := []byte(strings.Repeat("x", 1024))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(payload) }))
	defer up.Close()
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "policy.csv"), []byte("condition, 庁内, zone=chonai\nallow, *, class:2, read|write, 庁内\nallow, *, class:3S, read|write, 庁内\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "sekisho.yaml"), []byte(fmt.Sprintf(`
server: {http_listen: "127.0.0.1:0"}
store: {driver: sqlite, dsn: data/s.db}
webauthn: {rp_id: gw.localhost}
zones: {chonai: [127.0.0.0/8, 192.0.2.0/24]}
classes: {"3S": {require: [passkey], audit: sync}}
routes:
  - {name: bench, host: bench.gw.localhost, upstream: %s, segment: lgwan, class: "2", paths: [{prefix: /sync/, class: "3S"}]}
policy: {file: policy.csv}
audit: {dir: data/audit}
`, up.URL)), 0o600)
	cfg, err := config.Load(filepath.Join(dir, "sekisho.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	a, err := app.New(ctx, cfg, app.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	a.Store.CreateUser(ctx, &store.User{ID: "bench", Roles: []string{"staff"}})
	tok, err := a.Sessions.Issue(ctx, &session.Claims{User: "bench", AMR: []string{"hwk", "uv"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "http://bench.gw.localhost"+path, nil)
			req.Header.Set("Cookie", "__Host-sekisho="+tok)
			w := httptest.NewRecorder()
			a.Gateway.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// benchPool recycles ReverseProxy's copy buffers for the pooled floor.
type benchPool struct{ p sync.Pool }

func (bp *benchPool) Get() []byte {
	if v, ok := bp.p.Get().(*[32 << 10]byte); ok {
		return v[:]
	}
	return make([]byte, 32<<10)
}

func (bp *benchPool) Put(v []byte) {
	if len(v) == 32<<10 {
		bp.p.Put((*[32 << 10]byte)(v))
	}
}
