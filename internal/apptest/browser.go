package apptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"testing"
	"time"

	"github.com/sekisho/sekisho/authn/authntest"
)

// Browser is one browser profile (a cookie jar) at an origin, whose
// requests the test sends to a chosen gateway port, as a load balancer
// would. With a software authenticator (authntest) it runs the real
// WebAuthn ceremonies against the gateway.
type Browser struct {
	T      testing.TB
	Jar    http.CookieJar
	Origin string      // the origin it shows, e.g. https://zaimu.gw.example.lg.jp:8443
	TLS    *tls.Config // nil for plain HTTP
}

// NewBrowser is a browser with an empty cookie jar.
func NewBrowser(t testing.TB, origin string, tc *tls.Config) *Browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Browser{T: t, Jar: jar, Origin: origin, TLS: tc}
}

// Client reaches the browser's origin at the gateway listening on port.
func (b *Browser) Client(port int) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Jar:     b.Jar,
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: b.TLS,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Post sends a same-origin JSON POST, as the sign-in page's script does.
func (b *Browser) Post(port int, path string, body []byte) (int, []byte) {
	b.T.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.Origin+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", b.Origin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.Do(port, req)
}

// Get fetches a page as a browser navigation does.
func (b *Browser) Get(port int, path string) (int, []byte) {
	b.T.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.Origin+path, nil)
	req.Header.Set("Accept", "text/html")
	return b.Do(port, req)
}

// Do sends req through port and returns the status and body.
func (b *Browser) Do(port int, req *http.Request) (int, []byte) {
	b.T.Helper()
	res, err := b.Client(port).Do(req)
	if err != nil {
		b.T.Fatalf("%s %s via port %d: %v", req.Method, req.URL.Path, port, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, body
}

// Register runs the registration ceremony with an invitation token
// through the gateway on port; the authenticator keeps the passkey.
func (b *Browser) Register(port int, token string, auth *authntest.Authenticator) {
	b.T.Helper()
	body, _ := json.Marshal(map[string]string{"token": token})
	st, opts := b.Post(port, "/.sekisho/webauthn/register/begin", body)
	if st != http.StatusOK {
		b.T.Fatalf("register begin on port %d: %d %s", port, st, opts)
	}
	cred, sc, err := auth.Create(opts, b.Origin, authntest.Overrides{})
	if err != nil {
		b.T.Fatal(err)
	}
	if st, res := b.Post(port, "/.sekisho/webauthn/register/finish", cred); st != http.StatusOK {
		b.T.Fatalf("register finish on port %d: %d %s", port, st, res)
	}
	auth.Keep(sc)
}

// SignIn begins a login on beginPort and finishes it on finishPort with a
// passkey of auth; it returns the finish answer.
func (b *Browser) SignIn(beginPort, finishPort int, auth *authntest.Authenticator, o authntest.Overrides) (int, []byte) {
	b.T.Helper()
	st, opts := b.Post(beginPort, "/.sekisho/webauthn/login/begin", nil)
	if st != http.StatusOK {
		b.T.Fatalf("login begin on port %d: %d %s", beginPort, st, opts)
	}
	assertion, err := auth.Get(opts, b.Origin, o)
	if err != nil {
		b.T.Fatal(err)
	}
	return b.Post(finishPort, "/.sekisho/webauthn/login/finish", assertion)
}

// Port is the port of a listener address ("127.0.0.1:8443" → 8443).
func Port(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
