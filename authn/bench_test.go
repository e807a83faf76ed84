package authn

import (
	"github.com/sekisho/sekisho/authn/authntest"

	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/sekisho/sekisho/reqctx"
)

// BenchmarkIdentify measures the per-request cost the proxy pays: cookie
// verification (cached by the session manager) and the user (cached for a
// second).
func BenchmarkIdentify(b *testing.B) {
	env := newEnv(b)
	c, a := env.enrolled("bench", "zaimu-user")
	if fin, _ := env.login(c, a, "", authntest.Overrides{}); fin.status != http.StatusOK {
		b.Fatalf("login: %d", fin.status)
	}
	req := httptest.NewRequest(http.MethodGet, testOrigin+"/ledger", nil)
	for _, ck := range c.Jar.Cookies(&url.URL{Scheme: "https", Host: testHost, Path: "/"}) {
		req.AddCookie(ck)
	}
	req = req.WithContext(reqctx.With(req.Context(), &reqctx.Info{Host: testHost, TLS: true}))
	if _, err := env.svc.Identify(req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := env.svc.Identify(req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
