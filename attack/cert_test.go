package attack

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/internal/apptest"
)

// caSigner reads the world's CA key, as only the CA itself may; the test
// uses it to issue certificates the certs package would never issue.
func caSigner(t *testing.T, w *apptest.World) crypto.Signer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w.Dir, "ca", certs.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

// deviceTemplate is a device certificate as certs issues it, for tests to
// spoil one property at a time.
func deviceTemplate(device, user string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	du, _ := url.Parse(certs.DeviceURIPrefix + device)
	uu, _ := url.Parse(certs.UserURIPrefix + user)
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: device, OrganizationalUnit: []string{"sekisho device"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{du, uu},
	}
}

// makeCert signs tmpl by parent/parentKey (nil: self-signed) and returns
// a TLS certificate carrying chain after the leaf.
func makeCert(t *testing.T, tmpl, parent *x509.Certificate, parentKey crypto.Signer, chain ...[]byte) (tls.Certificate, *x509.Certificate, crypto.Signer) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: append([][]byte{der}, chain...), PrivateKey: key, Leaf: cert}, cert, key
}

// TestBadCertificates: on juki (client_cert: required, 3B) sato with a
// fresh UV passkey session is refused with every kind of bad device
// certificate, the request is never forwarded, and the refusal is audited
// with the certificate problem.
func TestBadCertificates(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	cookie := w.Login("sato", apptest.UV, time.Minute, "", "")
	ca := w.CA.Certificate()
	caKey := caSigner(t, w)

	// Control: a good certificate and a session bound to it get through.
	good, fp := w.Device("PC-0100", "sato")
	bound := w.Login("sato", append(apptest.UV, "mtls"), time.Minute, "PC-0100", fp)
	if r := w.Get(juki, "/records", bound, &good); r.Status != 200 {
		t.Fatalf("control: a good certificate is refused: %d %.200s", r.Status, r.Body)
	}

	type bad struct {
		name string
		cert tls.Certificate
	}
	var cases []bad
	add := func(name string, mod func(*x509.Certificate)) {
		tmpl := deviceTemplate("PC-0100", "sato")
		mod(tmpl)
		c, _, _ := makeCert(t, tmpl, ca, caKey)
		cases = append(cases, bad{name, c})
	}
	add("expired", func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	})
	add("not yet valid", func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(time.Hour), time.Now().Add(48*time.Hour)
	})
	add("serverAuth only", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })
	add("no extended key usage", func(c *x509.Certificate) { c.ExtKeyUsage = nil })
	// anyExtendedKeyUsage is accepted on purpose (RFC 5280 §4.2.1.12;
	// authn/mtls hasClientAuth): only the trusted CA can issue it.
	add("key usage without digitalSignature", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment })
	add("a CA certificate", func(c *x509.Certificate) {
		c.IsCA, c.KeyUsage = true, x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature
	})
	add("no device id", func(c *x509.Certificate) { c.URIs = nil })

	// Self-signed, with the CA's and the good device's subject copied.
	tmpl := deviceTemplate("PC-0100", "sato")
	tmpl.Issuer = ca.Subject
	self, _, _ := makeCert(t, tmpl, nil, nil)
	cases = append(cases, bad{"self-signed with copied subject", self})
	fakeTmpl := &x509.Certificate{
		SerialNumber: ca.SerialNumber, Subject: ca.Subject, NotBefore: ca.NotBefore, NotAfter: ca.NotAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId: ca.SubjectKeyId,
	}
	_, fakeCACert, fakeCAKey := makeCert(t, fakeTmpl, nil, nil)
	imp, _, _ := makeCert(t, deviceTemplate("PC-0100", "sato"), fakeCACert, fakeCAKey, fakeCACert.Raw)
	cases = append(cases, bad{"issued by a CA with the same name and key id", imp})

	// Another CA altogether (a real certs CA, elsewhere).
	otherCA, err := certs.Init(filepath.Join(t.TempDir(), "other-ca"))
	if err != nil {
		t.Fatal(err)
	}
	is, err := otherCA.IssueDevice(certs.DeviceRequest{Device: "PC-0100", User: "sato", Days: 30})
	if err != nil {
		t.Fatal(err)
	}
	wrongCA, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, bad{"wrong CA", wrongCA})

	// A chain through a device certificate: the good device's key signs a
	// "device" certificate for another PC.
	goodLeaf, _ := x509.ParseCertificate(good.Certificate[0])
	sub, _, _ := makeCert(t, deviceTemplate("PC-9999", "sato"), goodLeaf, good.PrivateKey.(crypto.Signer), good.Certificate[0])
	cases = append(cases, bad{"issued by a device certificate", sub})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(w.Seen())
			r := do(t, client(t, w, juki, &c.cert), getReq(w, juki, "/records", cookie))
			if r.Status != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %.200s", r.Status, r.Body)
			}
			if len(w.Seen()) != before {
				t.Fatal("forwarded to the upstream")
			}
			rec := decisionRecord(t, w, rid(t, r))
			if rec.Decision != audit.DecisionDeny || rec.Device != "" {
				t.Errorf("audit: decision %q device %q reasons %v", rec.Decision, rec.Device, rec.Reasons)
			}
		})
	}

	// Revoked in the CRL: refused once the CRL file changes.
	rev, _ := w.Device("PC-0200", "sato")
	if r := do(t, client(t, w, juki, &rev), getReq(w, juki, "/records", cookie)); r.Status == http.StatusForbidden && strings.Contains(r.Body, "失効") {
		t.Fatal("refused before revocation")
	}
	if _, err := w.CA.RevokeDevice("PC-0200", "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	if err := w.CA.WriteCRL(filepath.Join(w.Dir, "crl.pem"), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(6 * time.Second)
	for {
		before := len(w.Seen())
		r := do(t, client(t, w, juki, &rev), getReq(w, juki, "/records", cookie))
		if r.Status == http.StatusForbidden && len(w.Seen()) == before {
			decisionRecord(t, w, rid(t, r))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a certificate revoked in the CRL is still accepted: %d", r.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getReq(w *apptest.World, host, path, cookie string) *http.Request {
	req, _ := http.NewRequest("GET", "https://"+w.HTTPS+path, nil)
	req.Host = host
	req.Header.Set("Accept", "text/html")
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "__Host-sekisho", Value: cookie})
	}
	return req
}
