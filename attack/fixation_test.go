package attack

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/authn"
	"github.com/sekisho/sekisho/authn/authntest"
	"github.com/sekisho/sekisho/internal/apptest"
)

// TestSessionFixation: an attacker who managed to put a session cookie of
// their choosing into the victim's browser (their own valid session, or a
// value they made up) gains nothing when the victim signs in with a
// passkey through the real WebAuthn ceremonies: the victim gets a new
// session cookie, the planted one never becomes the victim's, and a
// planted live session is ended.
func TestSessionFixation(t *testing.T) {
	w := apptest.Start(t, apptest.Options{Server: "public_port: 8443"})
	port := apptest.Port(t, w.HTTPS)
	origin := "https://" + zaimu + ":8443"
	tc := &tls.Config{RootCAs: w.CAPool, ServerName: zaimu}
	page := &url.URL{Scheme: "https", Host: zaimu + ":8443", Path: "/"}

	// sato registers a passkey.
	token, err := authn.CreateInvitation(t.Context(), w.App.Store, "sato", "test", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	passkey := authntest.New()
	apptest.NewBrowser(t, origin, tc).Register(port, token, passkey)

	attackers := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	for name, planted := range map[string]string{
		"the attacker's own session": attackers,
		"a value the attacker chose": "eyJhbGciOiJFUzI1NiJ9.fixed-by-the-attacker.x",
	} {
		t.Run(name, func(t *testing.T) {
			victim := apptest.NewBrowser(t, origin, tc)
			victim.Jar.SetCookies(page, []*http.Cookie{{Name: "__Host-sekisho", Value: planted, Path: "/", Secure: true}})
			if st, res := victim.SignIn(port, port, passkey, authntest.Overrides{}); st != http.StatusOK {
				t.Fatalf("sign-in: %d %s", st, res)
			}
			var got string
			for _, c := range victim.Jar.Cookies(page) {
				if c.Name == "__Host-sekisho" {
					got = c.Value
				}
			}
			if got == "" || got == planted {
				t.Fatalf("after signing in the victim's cookie is %q: the planted value was kept", got)
			}
			// The victim's requests are the victim's.
			if st, body := victim.Get(port, "/"); st != http.StatusOK || !strings.Contains(string(body), "user=sato") {
				t.Errorf("victim after sign-in: %d %q, want the upstream page for sato", st, body)
			}
			// The planted cookie did not become sato's session.
			r := w.Get(zaimu, "/", planted, nil)
			if strings.Contains(r.Body, "user=sato") {
				t.Fatalf("the planted cookie now acts as sato: %d %q", r.Status, r.Body)
			}
			// A live session found in the browser at sign-in is ended
			// ("replaced by a new login"): the attacker loses it too.
			if planted == attackers && r.Status != http.StatusSeeOther {
				t.Errorf("the attacker's planted session after the victim's sign-in: %d %q, want it ended (303 to sign-in)", r.Status, r.Body)
			}
			decisionRecord(t, w, rid(t, r))
		})
	}
}
