package authn

import (
	"github.com/sekisho/sekisho/authn/authntest"

	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

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

// BenchmarkLoginFinish measures the server's side of a passkey sign-in:
// the finish request over TLS (open the sealed ceremony, consume the
// challenge in the store, verify the ES256 assertion, update the sign
// counter, issue the session cookie). The begin request and the
// authenticator's signature are made with the timer stopped.
func BenchmarkLoginFinish(b *testing.B) {
	env := newEnv(b)
	_, a := env.enrolled("bench", "zaimu-user")
	c := env.client()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		env.clock.Advance(10 * time.Millisecond) // keep the rate limits out of it
		begin := env.post(c, PathLoginBegin, nil)
		if begin.status != http.StatusOK {
			b.Fatalf("begin: %d %s", begin.status, begin.body)
		}
		assertion, err := a.Get(begin.body, testOrigin, authntest.Overrides{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if fin := env.post(c, PathLoginFinish, assertion); fin.status != http.StatusOK {
			b.Fatalf("finish: %d %s", fin.status, fin.body)
		}
	}
}
