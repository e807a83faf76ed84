package mtls

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/config"
)

var t0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testCA is a CA made for one test.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randSerial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

// newTestCA makes a root (parent nil) or an intermediate CA.
func newTestCA(t testing.TB, name string, parent *testCA, mod ...func(*x509.Certificate)) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Test City"}},
		NotBefore:             t0.Add(-24 * time.Hour),
		NotAfter:              t0.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, m := range mod {
		m(tmpl)
	}
	signer, parentCert := crypto.Signer(key), tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: c, key: key}
}

// leafTemplate is a device certificate in sekisho's profile.
func leafTemplate(t testing.TB, device string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: randSerial(t),
		Subject:      pkix.Name{CommonName: device},
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     t0.AddDate(0, 0, 30),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{{Scheme: "urn", Opaque: "sekisho:device:" + device}},
	}
}

// issue signs a leaf; mod adjusts the default template.
func (ca *testCA) issue(t testing.TB, device string, mod ...func(*x509.Certificate)) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	tmpl := leafTemplate(t, device)
	for _, m := range mod {
		m(tmpl)
	}
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// crl signs a CRL listing serials.
func (ca *testCA) crl(t testing.TB, number int64, serials ...*big.Int) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: t0.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(number),
		ThisUpdate:                t0.Add(-time.Hour),
		NextUpdate:                t0.Add(7 * 24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pemOf(typ string, ders ...[]byte) []byte {
	var b bytes.Buffer
	for _, d := range ders {
		pem.Encode(&b, &pem.Block{Type: typ, Bytes: d})
	}
	return b.Bytes()
}

// writeFile writes data to a fresh file in dir and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// replaceFile puts data at path by rename, as `sekisho certs crl` does.
func replaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// testConfig trusts cas (written as one bundle) with an optional CRL.
func testConfig(t testing.TB, crl []byte, cas ...*testCA) *config.Config {
	t.Helper()
	dir := t.TempDir()
	var ders [][]byte
	for _, ca := range cas {
		ders = append(ders, ca.cert.Raw)
	}
	cfg := &config.Config{}
	cfg.Server.ClientCA = []string{writeFile(t, dir, "client-ca.pem", pemOf("CERTIFICATE", ders...))}
	if crl != nil {
		cfg.Server.CRL = writeFile(t, dir, "crl.pem", crl)
	}
	return cfg
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newVerifier builds a Verifier on a fake clock at t0 and closes it at the end.
func newVerifier(t testing.TB, cfg *config.Config, opts ...Option) (*Verifier, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: t0}
	v, err := New(cfg, append([]Option{WithClock(clock.Now), WithLogger(quietLogger())}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { v.Close() })
	return v, clock
}

// sanExtension builds a subjectAltName extension holding the given
// GeneralNames; tests use it for the UPN otherName that crypto/x509 cannot
// write. asn1.Marshal does the encoding.
func sanExtension(t testing.TB, names ...asn1.RawValue) pkix.Extension {
	t.Helper()
	val, err := asn1.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oidSubjectAltName, Value: val}
}

func upnName(t testing.TB, upn string) asn1.RawValue {
	t.Helper()
	inner, err := asn1.MarshalWithParams(upn, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	on := otherName{TypeID: oidUPN, Value: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}}
	der, err := asn1.MarshalWithParams(on, "tag:0")
	if err != nil {
		t.Fatal(err)
	}
	return asn1.RawValue{FullBytes: der}
}

func dnsName(name string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(name)}
}

func pemDecode(data []byte) []byte {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil
	}
	return block.Bytes
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// waitFor polls cond for up to 5 seconds (file-system events are
// asynchronous).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func writeFileErr(path string, data []byte) error { return os.WriteFile(path, data, 0o644) }
