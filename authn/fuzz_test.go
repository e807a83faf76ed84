package authn

import (
	"github.com/sekisho/sekisho/authn/authntest"

	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/time/rate"
)

// fuzzEnv is a service without rate limits (the fuzzer's clock stands
// still, so buckets would never refill), with one enrolled user.
func fuzzEnv(f *testing.F) (*testEnv, http.Handler, string, *authntest.Authenticator) {
	env := newEnvWith(f, testConfig(), WithRateLimits(RateLimits{PerIP: rate.Inf, IPBurst: 1, PerUser: rate.Inf, UserBurst: 1}))
	_, a := env.enrolled("fuzz")
	env.addUser("newcomer", "新人")
	tok, err := env.svc.Invite(context.Background(), "newcomer", 0)
	if err != nil {
		f.Fatal(err)
	}
	return env, env.handler(), tok, a
}

// ceremonyRequest is a same-origin JSON POST as the page's script sends it.
func ceremonyRequest(path string, body []byte, cookies []*http.Cookie) *http.Request {
	req := httptest.NewRequest(http.MethodPost, testOrigin+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", testOrigin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	return req
}

// finishWith begins a ceremony, then finishes it with body.
func finishWith(t *testing.T, h http.Handler, begin, finish string, beginBody, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, ceremonyRequest(begin, beginBody, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("begin: %d %s", rec.Code, rec.Body)
	}
	out := httptest.NewRecorder()
	h.ServeHTTP(out, ceremonyRequest(finish, body, rec.Result().Cookies()))
	return out
}

// assertNoSession fails if the response authenticated anyone.
func assertNoSession(t *testing.T, env *testEnv, rec *httptest.ResponseRecorder, body []byte) {
	if rec.Code == http.StatusOK {
		t.Fatalf("finish accepted fuzz input %q: %s", body, rec.Body)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == env.sm.CookieName(true) && c.Value != "" {
			t.Fatalf("finish set a session cookie for %q", body)
		}
	}
	if rec.Code >= 500 && rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d for %q", rec.Code, body)
	}
	if strings.Contains(rec.Body.String(), "panic") {
		t.Fatalf("panic text in response: %s", rec.Body)
	}
}

// FuzzLoginFinish feeds arbitrary bytes as the PublicKeyCredential JSON of
// a login: it must never panic and never authenticate. Seeds (valid shapes
// signed for other challenges, truncations, wrong types) are in
// testdata/fuzz/FuzzLoginFinish.
func FuzzLoginFinish(f *testing.F) {
	env, h, _, a := fuzzEnv(f)
	f.Add([]byte(`{}`))
	// A real assertion by the enrolled passkey, over a challenge the server
	// never issued: it reaches signature and challenge verification.
	stale, err := a.Get([]byte(`{"publicKey":{"challenge":"c3RhbGUtY2hhbGxlbmdlLXN0YWxlLWNoYWxsZW5nZQ","rpId":"`+testRPID+`"}}`), testOrigin, authntest.Overrides{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(stale)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := finishWith(t, h, PathLoginBegin, PathLoginFinish, []byte(`{}`), body)
		assertNoSession(t, env, rec, body)
	})
}

// FuzzRegisterFinish does the same for the registration finish, begun with
// a valid invitation: it must never panic, never store a credential and
// never consume the invitation.
func FuzzRegisterFinish(f *testing.F) {
	env, h, tok, _ := fuzzEnv(f)
	f.Add([]byte(`{}`))
	begin := []byte(`{"token":"` + tok + `"}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := finishWith(t, h, PathRegisterBegin, PathRegisterFinish, begin, body)
		assertNoSession(t, env, rec, body)
		creds, err := env.st.ListCredentials(context.Background(), "newcomer")
		if err != nil || len(creds) != 0 {
			t.Fatalf("fuzz input %q stored a credential (%v)", body, err)
		}
	})
}

// FuzzOpenCeremony feeds arbitrary cookie values to the ceremony-state
// opener: only a value this service sealed opens, nothing panics.
func FuzzOpenCeremony(f *testing.F) {
	env := newEnv(f)
	sealed, err := env.svc.seal.seal(kindLogin, &ceremonyState{Kind: kindLogin, Origin: testOrigin})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(kindLogin, sealed)
	f.Add(kindRegister, sealed)
	f.Add(kindLogin, "")
	f.Add(kindLogin, "AAAA")
	f.Add(kindLogin, sealed[:len(sealed)-2])
	f.Fuzz(func(t *testing.T, kind, value string) {
		var st ceremonyState
		err := env.svc.seal.open(kind, value, &st)
		if err != nil {
			return
		}
		// The decoder skips newlines, so another spelling of the same
		// sealed bytes may open; other bytes or another kind must not.
		raw, _ := base64.RawURLEncoding.DecodeString(value)
		want, _ := base64.RawURLEncoding.DecodeString(sealed)
		if kind != kindLogin || !bytes.Equal(raw, want) {
			t.Fatalf("opened a value it did not seal: kind %q value %q", kind, value)
		}
	})
}
