package mtls

import (
	"crypto/x509"
	"errors"
	"math/big"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/internal/testlog"
)

// TestVerifySekishoCA runs the real pair: a certificate issued by package
// certs, verified here.
func TestVerifySekishoCA(t *testing.T) {
	ca, err := certs.Init(filepath.Join(t.TempDir(), "ca"), certs.WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.IssueDevice(certs.DeviceRequest{Device: "PC-0123", User: "tanaka.taro"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{}
	cfg.Server.ClientCA = []string{filepath.Join(ca.Dir(), certs.CertFile)}
	v, _ := newVerifier(t, cfg)
	leaf, _ := x509.ParseCertificate(mustPEM(t, is.CertPEM))
	dev, err := v.Verify([]*x509.Certificate{leaf})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := &Device{
		ID: "PC-0123", User: "tanaka.taro", Fingerprint: is.Fingerprint, Serial: is.Serial,
		Issuer: ca.Certificate().Subject.String(), Subject: leaf.Subject.String(), NotAfter: leaf.NotAfter,
	}
	if diff := cmp.Diff(want, dev); diff != "" {
		t.Errorf("Device (-want +got):\n%s", diff)
	}

	// Revoked through the CA's own CRL.
	if _, err := ca.RevokeDevice("PC-0123", "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	crlPath := filepath.Join(t.TempDir(), "crl.pem")
	if err := ca.WriteCRL(crlPath, 0); err != nil {
		t.Fatal(err)
	}
	cfg.Server.CRL = crlPath
	v2, _ := newVerifier(t, cfg)
	if _, err := v2.Verify([]*x509.Certificate{leaf}); !errors.Is(err, ErrRevoked) {
		t.Errorf("after revocation: err = %v, want ErrRevoked", err)
	}
}

func mustPEM(t *testing.T, data []byte) []byte {
	t.Helper()
	der := pemDecode(data)
	if der == nil {
		t.Fatal("no PEM block")
	}
	return der
}

func TestVerifyRefusals(t *testing.T) {
	root := newTestCA(t, "Test City Device CA", nil)
	other := newTestCA(t, "Someone Else CA", nil)
	v, _ := newVerifier(t, testConfig(t, nil, root))

	good, _ := root.issue(t, "PC-1")
	if _, err := v.Verify([]*x509.Certificate{good}); err != nil {
		t.Fatalf("good certificate refused: %v", err)
	}

	expired, _ := root.issue(t, "PC-2", func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = t0.AddDate(-1, 0, 0), t0.Add(-time.Second)
	})
	notYet, _ := root.issue(t, "PC-3", func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = t0.Add(time.Hour), t0.AddDate(1, 0, 0)
	})
	wrongCA, _ := other.issue(t, "PC-4")
	serverEKU, _ := root.issue(t, "PC-5", func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	noEKU, _ := root.issue(t, "PC-6", func(c *x509.Certificate) { c.ExtKeyUsage = nil })
	noDigSig, _ := root.issue(t, "PC-7", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment })
	noID, _ := root.issue(t, "PC-8", func(c *x509.Certificate) { c.URIs = nil })
	badID, _ := root.issue(t, "PC-9", func(c *x509.Certificate) {
		c.URIs = []*url.URL{{Scheme: "urn", Opaque: "sekisho:device:PC-9 "}}
	})
	// An attacker's self-signed certificate copying the CA's subject, and a
	// leaf whose issuer name is the CA's but is signed by another key.
	impostorCA := newTestCA(t, "Test City Device CA", nil, func(c *x509.Certificate) {
		c.Subject = root.cert.Subject
	})
	forged, _ := impostorCA.issue(t, "PC-1")
	selfSigned := newTestCA(t, "PC-1", nil, func(c *x509.Certificate) {
		c.Subject = root.cert.Subject
		c.IsCA = false
		c.KeyUsage = x509.KeyUsageDigitalSignature
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		c.URIs = []*url.URL{{Scheme: "urn", Opaque: "sekisho:device:PC-1"}}
	}).cert

	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		want  error
	}{
		{"empty chain", nil, ErrNoCertificate},
		{"expired", []*x509.Certificate{expired}, ErrExpired},
		{"not yet valid", []*x509.Certificate{notYet}, ErrNotYetValid},
		{"wrong CA", []*x509.Certificate{wrongCA}, ErrUntrusted},
		{"wrong CA with its root presented", []*x509.Certificate{wrongCA, other.cert}, ErrUntrusted},
		{"serverAuth only", []*x509.Certificate{serverEKU}, ErrUsage},
		{"no extended key usage", []*x509.Certificate{noEKU}, ErrUsage},
		{"no digitalSignature", []*x509.Certificate{noDigSig}, ErrUsage},
		{"CA certificate as leaf", []*x509.Certificate{root.cert}, ErrUsage},
		{"no device id", []*x509.Certificate{noID}, ErrNoDeviceID},
		{"unusable device id", []*x509.Certificate{badID}, ErrNoDeviceID},
		{"forged issuer name", []*x509.Certificate{forged}, ErrUntrusted},
		{"forged issuer with impostor CA presented", []*x509.Certificate{forged, impostorCA.cert}, ErrUntrusted},
		{"self-signed copying the CA subject", []*x509.Certificate{selfSigned}, ErrUntrusted},
		{"too many certificates", []*x509.Certificate{good, root.cert, root.cert, root.cert, root.cert, root.cert, root.cert, root.cert, root.cert}, ErrUntrusted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev, err := v.Verify(tc.chain)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %+v, %v; want %v", dev, err, tc.want)
			}
			if dev != nil {
				t.Errorf("Device %+v returned with an error", dev)
			}
		})
	}
}

func TestNoClientCA(t *testing.T) {
	v, _ := newVerifier(t, &config.Config{})
	if v.ClientCAs() != nil {
		t.Error("ClientCAs not nil without client CAs")
	}
	root := newTestCA(t, "CA", nil)
	leaf, _ := root.issue(t, "PC-1")
	if _, err := v.Verify([]*x509.Certificate{leaf}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("err = %v, want ErrUntrusted", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	root := newTestCA(t, "CA", nil)
	other := newTestCA(t, "Other", nil)
	dir := t.TempDir()
	for name, cfg := range map[string]*config.Config{
		"missing client CA": {Server: config.Server{ClientCA: []string{filepath.Join(dir, "nope.pem")}}},
		"client CA not PEM": {Server: config.Server{ClientCA: []string{writeFile(t, dir, "x.pem", []byte("hello"))}}},
		"missing CRL":       {Server: config.Server{ClientCA: testConfig(t, nil, root).Server.ClientCA, CRL: filepath.Join(dir, "nope.crl")}},
		"CRL of another CA": testConfig(t, pemOf("X509 CRL", other.crl(t, 1)), root),
		"CRL garbage":       testConfig(t, []byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), root),
		"CRL without CA":    {Server: config.Server{CRL: writeFile(t, dir, "c.pem", pemOf("X509 CRL", root.crl(t, 1)))}},
		"unknown id_from":   {Devices: config.Devices{IDFrom: "serial"}},
	} {
		if _, err := New(cfg, WithLogger(quietLogger())); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestIntermediateChains(t *testing.T) {
	root := newTestCA(t, "Root CA", nil)
	inter := newTestCA(t, "Issuing CA", root, func(c *x509.Certificate) { c.MaxPathLenZero = true })
	leaf, _ := inter.issue(t, "PC-1")

	v, clock := newVerifier(t, testConfig(t, nil, root))
	if _, err := v.Verify([]*x509.Certificate{leaf}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("leaf without intermediate: err = %v, want ErrUntrusted", err)
	}
	if _, err := v.Verify([]*x509.Certificate{leaf, inter.cert}); err != nil {
		t.Errorf("leaf + presented intermediate: %v", err)
	}
	// Past the intermediate's expiry the chain is expired even though the
	// leaf is not (and the earlier success is not served from the cache).
	expInter := newTestCA(t, "Short CA", root, func(c *x509.Certificate) { c.NotAfter = t0.Add(24 * time.Hour) })
	leaf2, _ := expInter.issue(t, "PC-2")
	if _, err := v.Verify([]*x509.Certificate{leaf2, expInter.cert}); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	clock.Advance(25 * time.Hour)
	if _, err := v.Verify([]*x509.Certificate{leaf2, expInter.cert}); !errors.Is(err, ErrExpired) {
		t.Errorf("expired intermediate: err = %v, want ErrExpired", err)
	}

	// An issuing CA listed alone in client_ca is an anchor.
	v2, _ := newVerifier(t, testConfig(t, nil, inter))
	if _, err := v2.Verify([]*x509.Certificate{leaf}); err != nil {
		t.Errorf("issuing CA as anchor: %v", err)
	}
	// A revoked intermediate (root's CRL) refuses the leaf.
	v3, _ := newVerifier(t, testConfig(t, pemOf("X509 CRL", root.crl(t, 1, inter.cert.SerialNumber), inter.crl(t, 1)), root, inter))
	if _, err := v3.Verify([]*x509.Certificate{leaf, inter.cert}); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked intermediate: err = %v, want ErrRevoked", err)
	}
}

func TestCRL(t *testing.T) {
	root := newTestCA(t, "CA", nil)
	revoked, _ := root.issue(t, "PC-1")
	fine, _ := root.issue(t, "PC-2")
	for _, form := range []string{"PEM", "DER"} {
		t.Run(form, func(t *testing.T) {
			crl := root.crl(t, 1, revoked.SerialNumber, big.NewInt(12345))
			if form == "PEM" {
				crl = pemOf("X509 CRL", crl)
			}
			v, _ := newVerifier(t, testConfig(t, crl, root))
			if _, err := v.Verify([]*x509.Certificate{revoked}); !errors.Is(err, ErrRevoked) {
				t.Errorf("revoked: err = %v, want ErrRevoked", err)
			}
			if _, err := v.Verify([]*x509.Certificate{fine}); err != nil {
				t.Errorf("not revoked: %v", err)
			}
		})
	}
	// Same serial from another issuer is a different certificate.
	other := newTestCA(t, "Other", nil)
	twin, _ := other.issue(t, "PC-3", func(c *x509.Certificate) { c.SerialNumber = revoked.SerialNumber })
	v, _ := newVerifier(t, testConfig(t, pemOf("X509 CRL", root.crl(t, 1, revoked.SerialNumber)), root, other))
	if _, err := v.Verify([]*x509.Certificate{twin}); err != nil {
		t.Errorf("same serial, other issuer: %v", err)
	}
}

func TestCRLReload(t *testing.T) {
	root := newTestCA(t, "CA", nil)
	leaf, _ := root.issue(t, "PC-1")
	cfg := testConfig(t, pemOf("X509 CRL", root.crl(t, 1)), root)
	var logs testlog.Buffer
	v, err := New(cfg, WithClock(func() time.Time { return t0 }), WithCache(100, time.Hour), WithCRLPoll(time.Hour),
		WithLogger(slogTo(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.Verify([]*x509.Certificate{leaf}); err != nil {
		t.Fatal(err)
	}
	// The success is cached for an hour, but the new CRL must win at once.
	replaceFile(t, cfg.Server.CRL, pemOf("X509 CRL", root.crl(t, 2, leaf.SerialNumber)))
	waitFor(t, "revocation after the CRL file changed", func() bool {
		_, err := v.Verify([]*x509.Certificate{leaf})
		return errors.Is(err, ErrRevoked)
	})

	// A broken CRL is refused and the previous one stays in force.
	replaceFile(t, cfg.Server.CRL, []byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"))
	waitFor(t, "the broken CRL to be logged", func() bool {
		return strings.Contains(logs.String(), "CRL reload refused")
	})
	if _, err := v.Verify([]*x509.Certificate{leaf}); !errors.Is(err, ErrRevoked) {
		t.Errorf("after a broken CRL: err = %v, want ErrRevoked (old CRL kept)", err)
	}
	if err := v.Reload(); err == nil {
		t.Error("Reload of a broken CRL returned nil")
	}
	// An empty CRL lifts the revocation (explicit Reload, as on SIGHUP).
	if err := writeFileErr(cfg.Server.CRL, pemOf("X509 CRL", root.crl(t, 3))); err != nil {
		t.Fatal(err)
	}
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify([]*x509.Certificate{leaf}); err != nil {
		t.Errorf("after an empty CRL: %v", err)
	}
}

func TestCRLPollWithoutEvents(t *testing.T) {
	// The poll alone (no event for the change) also reloads.
	root := newTestCA(t, "CA", nil)
	leaf, _ := root.issue(t, "PC-1")
	cfg := testConfig(t, pemOf("X509 CRL", root.crl(t, 1)), root)
	v, _ := newVerifier(t, cfg, WithCRLPoll(20*time.Millisecond))
	if _, err := v.Verify([]*x509.Certificate{leaf}); err != nil {
		t.Fatal(err)
	}
	// Swap the stored stamp for one that cannot match, as if an event
	// had been missed, and let the poll notice.
	set := *v.crl.Load()
	set.stat = fileStamp{}
	v.crl.Store(&set)
	gen := set.gen
	waitFor(t, "a poll reload", func() bool { return v.crl.Load().gen > gen })
}

func TestCacheBounds(t *testing.T) {
	root := newTestCA(t, "CA", nil)
	leaf, _ := root.issue(t, "PC-1", func(c *x509.Certificate) { c.NotAfter = t0.Add(time.Minute) })
	v, clock := newVerifier(t, testConfig(t, nil, root), WithCache(10, time.Hour))
	if _, err := v.Verify([]*x509.Certificate{leaf}); err != nil {
		t.Fatal(err)
	}
	if v.cache.Len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", v.cache.Len())
	}
	clock.Advance(2 * time.Minute)
	if _, err := v.Verify([]*x509.Certificate{leaf}); !errors.Is(err, ErrExpired) {
		t.Errorf("cached certificate past NotAfter: err = %v, want ErrExpired", err)
	}
	// The returned Device is a copy: changing it does not poison the cache.
	clock.Advance(-2 * time.Minute)
	d1, _ := v.Verify([]*x509.Certificate{leaf})
	d1.ID = "tampered"
	d2, _ := v.Verify([]*x509.Certificate{leaf})
	if d2.ID != "PC-1" {
		t.Errorf("cache returned %q after a caller changed its copy", d2.ID)
	}
}

func TestReasonAndCode(t *testing.T) {
	for _, tc := range []struct {
		err      error
		code, ja string
	}{
		{ErrExpired, "expired", "端末証明書の有効期限が切れています"},
		{ErrRevoked, "revoked", "端末証明書は失効しています"},
		{ErrUntrusted, "untrusted", "信頼された認証局"},
		{ErrNotYetValid, "not_yet_valid", "時刻"},
		{ErrUsage, "usage", "端末認証に使えません"},
		{ErrNoDeviceID, "no_device_id", "端末を識別できません"},
		{ErrOCSPUnavailable, "ocsp_unavailable", "失効確認"},
		{ErrNoCertificate, "no_certificate", "提示されていません"},
		{errors.New("other"), "error", "確認できませんでした"},
	} {
		wrapped := errors.Join(errors.New("serial 1f CN=secret"), tc.err)
		ja, en := Reason(wrapped)
		if !strings.Contains(ja, tc.ja) || en == "" {
			t.Errorf("Reason(%v) = %q, %q", tc.err, ja, en)
		}
		if strings.Contains(ja+en, "secret") {
			t.Errorf("Reason leaks detail: %q %q", ja, en)
		}
		if got := Code(wrapped); got != tc.code {
			t.Errorf("Code(%v) = %q, want %q", tc.err, got, tc.code)
		}
	}
	if Code(nil) != "" {
		t.Error("Code(nil) not empty")
	}
}

func TestCloseStopsWatcher(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	root := newTestCA(t, "CA", nil)
	cfg := testConfig(t, pemOf("X509 CRL", root.crl(t, 1)), root)
	v, err := New(cfg, WithLogger(quietLogger()), WithCRLPoll(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	v.Close()
	v.Close() // idempotent
}

func TestBrokenCRLNotRetriedUntilChanged(t *testing.T) {
	root := newTestCA(t, "CA", nil)
	cfg := testConfig(t, pemOf("X509 CRL", root.crl(t, 1)), root)
	var logs testlog.Buffer
	v, err := New(cfg, WithLogger(slogTo(&logs)), WithCRLPoll(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	replaceFile(t, cfg.Server.CRL, []byte("not a CRL"))
	waitFor(t, "the refusal", func() bool { return strings.Contains(logs.String(), "CRL reload refused") })
	time.Sleep(100 * time.Millisecond) // ten polls
	if n := strings.Count(logs.String(), "CRL reload refused"); n != 1 {
		t.Errorf("the same broken file was refused %d times, want 1", n)
	}
	replaceFile(t, cfg.Server.CRL, pemOf("X509 CRL", root.crl(t, 2)))
	waitFor(t, "the fixed CRL", func() bool { return strings.Count(logs.String(), "CRL loaded") >= 1 })
}
