package certs

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

var t0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

func fixedClock(t *time.Time) func() time.Time { return func() time.Time { return *t } }

func newTestCA(t *testing.T, opts ...Option) (*CA, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	now := t0
	ca, err := Init(dir, append([]Option{WithClock(fixedClock(&now))}, opts...)...)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return ca, dir
}

func parsePEMCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("no CERTIFICATE PEM block in %q", data)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestInitLayoutAndModes(t *testing.T) {
	ca, dir := newTestCA(t)
	for name, want := range map[string]os.FileMode{"": 0o700, KeyFile: 0o600, IndexFile: 0o600, CertFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%q mode = %04o, want %04o", name, got, want)
		}
	}
	c := ca.Certificate()
	if !c.IsCA || !c.MaxPathLenZero || c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA profile: IsCA=%v MaxPathLenZero=%v KeyUsage=%v", c.IsCA, c.MaxPathLenZero, c.KeyUsage)
	}
	if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("CA key is %T, want ECDSA", c.PublicKey)
	}
	if got := c.NotAfter.Sub(t0); got < 9*365*24*time.Hour {
		t.Errorf("CA validity %s, want about 10 years", got)
	}
	if c.SerialNumber.BitLen() < 64 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial has %d bits", c.SerialNumber.BitLen())
	}
}

func TestInitRefusesExistingCA(t *testing.T) {
	_, dir := newTestCA(t)
	before, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	_, err := Init(dir)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: err = %v, want ErrExists", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	if string(before) != string(after) {
		t.Fatal("second Init changed the key")
	}
}

func TestInitRefusesOpenDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("Init in a 0755 directory: err = %v", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir); err != nil {
		t.Fatalf("Init in a 0700 directory: %v", err)
	}
}

func TestLoadRefusesReadableKey(t *testing.T) {
	_, dir := newTestCA(t)
	if _, err := Load(dir); err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(filepath.Join(dir, KeyFile), mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if !errors.Is(err, ErrInsecureKey) {
			t.Errorf("mode %04o: err = %v, want ErrInsecureKey", mode, err)
		} else if !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: error %q does not say how to fix it", mode, err)
		}
	}
}

func TestLoadRefusesMismatchedKey(t *testing.T) {
	_, dir := newTestCA(t)
	_, other := newTestCA(t)
	data, _ := os.ReadFile(filepath.Join(other, KeyFile))
	if err := os.WriteFile(filepath.Join(dir, KeyFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("Load with foreign key: err = %v", err)
	}
}

func TestIssueDeviceProfile(t *testing.T) {
	ca, dir := newTestCA(t)
	is, err := ca.IssueDevice(DeviceRequest{Device: "PC-0123", User: "tanaka.taro", Days: 30})
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEMCert(t, is.CertPEM)
	var uris []string
	for _, u := range c.URIs {
		uris = append(uris, u.String())
	}
	if want := []string{"urn:sekisho:device:PC-0123", "urn:sekisho:user:tanaka.taro"}; !slices.Equal(uris, want) {
		t.Errorf("SAN URIs = %q, want %q", uris, want)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("EKU = %v", c.ExtKeyUsage)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v", c.KeyUsage)
	}
	if c.IsCA {
		t.Error("device certificate is a CA")
	}
	if got, want := c.NotAfter, t0.AddDate(0, 0, 30); !got.Equal(want) {
		t.Errorf("NotAfter = %s, want %s", got, want)
	}
	if is.Serial != FormatSerial(c.SerialNumber) || is.Fingerprint != Fingerprint(c.Raw) || len(is.Fingerprint) != 64 {
		t.Errorf("Serial %q / Fingerprint %q do not match the certificate", is.Serial, is.Fingerprint)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("device certificate does not verify against the CA: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, IssuedDir, is.Serial+".pem")); err != nil {
		t.Errorf("issued copy: %v", err)
	}
	// The password was generated: 20 characters in groups of five.
	if len(is.Password) != 23 || strings.Count(is.Password, "-") != 3 {
		t.Errorf("generated password %q", is.Password)
	}
	key, cert, err := pkcs12.Decode(is.P12, is.Password)
	if err != nil {
		t.Fatalf("decoding .p12: %v", err)
	}
	if !cert.Equal(c) {
		t.Error(".p12 holds another certificate")
	}
	if !key.(*ecdsa.PrivateKey).PublicKey.Equal(c.PublicKey) {
		t.Error(".p12 key does not match the certificate")
	}
	if _, _, err := pkcs12.Decode(is.P12, "wrong"); err == nil {
		t.Error(".p12 opens with a wrong password")
	}
}

func TestIssueDeviceRejectsBadInput(t *testing.T) {
	ca, _ := newTestCA(t)
	for _, req := range []DeviceRequest{
		{Device: ""},
		{Device: "PC 01"},
		{Device: "PC/01"},
		{Device: "PC-01", User: "a:b"},
		{Device: "-x"},
		{Device: strings.Repeat("a", 129)},
	} {
		if _, err := ca.IssueDevice(req); !errors.Is(err, ErrInvalidID) {
			t.Errorf("IssueDevice(%+v): err = %v, want ErrInvalidID", req, err)
		}
	}
	if _, err := ca.IssueDevice(DeviceRequest{Device: "PC-01", Days: 20 * 365}); err == nil {
		t.Error("device certificate outliving the CA was issued")
	}
	if len(ca.List()) != 0 {
		t.Errorf("failed issues were recorded: %v", ca.List())
	}
}

func TestIssuedWriteFiles(t *testing.T) {
	ca, _ := newTestCA(t)
	is, err := ca.IssueDevice(DeviceRequest{Device: "PC-1", Password: "given-pass"})
	if err != nil {
		t.Fatal(err)
	}
	if is.Password != "given-pass" {
		t.Errorf("Password = %q", is.Password)
	}
	prefix := filepath.Join(t.TempDir(), "out", "pc-1")
	if err := is.WriteFiles(prefix); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{".pem": 0o644, "-key.pem": 0o600, ".p12": 0o600} {
		fi, err := os.Stat(prefix + name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %04o, want %04o", name, fi.Mode().Perm(), want)
		}
	}
	if err := is.WriteFiles(prefix); err == nil {
		t.Error("WriteFiles overwrote existing files")
	}
}

func TestP12AcceptedByOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl not found (required when CI=true)")
		}
		t.Skip("openssl not found")
	}
	ca, _ := newTestCA(t)
	is, err := ca.IssueDevice(DeviceRequest{Device: "PC-0123", User: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	p12 := filepath.Join(t.TempDir(), "pc.p12")
	if err := os.WriteFile(p12, is.P12, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "pkcs12", "-info", "-nokeys", "-in", p12, "-passin", "pass:"+is.Password).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkcs12 -info: %v\n%s", err, out)
	}
	for _, want := range []string{"PBES2", "AES-256-CBC", "MAC: sha256", "CN = PC-0123", "BEGIN CERTIFICATE"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("openssl output lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(openssl, "pkcs12", "-info", "-nokeys", "-in", p12, "-passin", "pass:wrong").CombinedOutput()
	if err == nil {
		t.Errorf("openssl accepted a wrong password:\n%s", out)
	}

	// The legacy encoding (3DES/SHA-1) needs OpenSSL 3's legacy provider;
	// go-pkcs12 reads it back either way.
	legacy, err := ca.IssueDevice(DeviceRequest{Device: "PC-OLD", LegacyP12: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := pkcs12.Decode(legacy.P12, legacy.Password); err != nil {
		t.Errorf("legacy .p12 does not decode: %v", err)
	}
	if err := os.WriteFile(p12, legacy.P12, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(openssl, "pkcs12", "-info", "-nokeys", "-legacy", "-in", p12, "-passin", "pass:"+legacy.Password).CombinedOutput()
	if err != nil {
		t.Logf("openssl -legacy (legacy provider may be missing): %v\n%s", err, out)
	} else if !strings.Contains(string(out), "pbeWithSHA1And3-KeyTripleDES-CBC") {
		t.Errorf("legacy .p12 not 3DES:\n%s", out)
	}
}

func TestIssueServer(t *testing.T) {
	ca, _ := newTestCA(t)
	certPEM, keyPEM, err := ca.IssueServer([]string{"GW.example.lg.jp", "*.gw.example.lg.jp", "127.0.0.1", "::1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEMCert(t, certPEM)
	if !slices.Equal(c.DNSNames, []string{"gw.example.lg.jp", "*.gw.example.lg.jp"}) || len(c.IPAddresses) != 2 {
		t.Errorf("SANs: DNS %q IP %v", c.DNSNames, c.IPAddresses)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("EKU = %v", c.ExtKeyUsage)
	}
	if got, want := c.NotAfter, t0.AddDate(0, 0, DefaultServerDays); !got.Equal(want) {
		t.Errorf("NotAfter = %s, want %s", got, want)
	}
	if _, err := decodeKey(keyPEM); err != nil {
		t.Errorf("server key: %v", err)
	}
	if _, _, err := ca.IssueServer([]string{"bad host"}, 0); err == nil {
		t.Error("host with a space accepted")
	}
	if _, _, err := ca.IssueServer(nil, 0); err == nil {
		t.Error("no hosts accepted")
	}
}

func TestRevokeAndCRL(t *testing.T) {
	ca, dir := newTestCA(t)
	a, _ := ca.IssueDevice(DeviceRequest{Device: "PC-A"})
	b1, _ := ca.IssueDevice(DeviceRequest{Device: "PC-B"})
	b2, _ := ca.IssueDevice(DeviceRequest{Device: "PC-B", User: "u2"})
	keep, _ := ca.IssueDevice(DeviceRequest{Device: "PC-C"})

	// Serial in the colon-separated upper-case form openssl prints.
	hex := a.Serial
	if len(hex)%2 == 1 {
		hex = "0" + hex
	}
	var pairs []string
	for i := 0; i < len(hex); i += 2 {
		pairs = append(pairs, strings.ToUpper(hex[i:i+2]))
	}
	serialArg := strings.Join(pairs, ":")
	if err := ca.Revoke(serialArg, "key_compromise"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if err := ca.Revoke(a.Serial, ""); !errors.Is(err, ErrAlreadyRevoked) {
		t.Errorf("second Revoke: err = %v, want ErrAlreadyRevoked", err)
	}
	if err := ca.Revoke("abcdef", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Revoke unknown: err = %v, want ErrNotFound", err)
	}
	if err := ca.Revoke(keep.Serial, "because"); err == nil {
		t.Error("unknown reason accepted")
	}
	n, err := ca.RevokeDevice("PC-B", "cessationOfOperation")
	if err != nil || n != 2 {
		t.Fatalf("RevokeDevice = %d, %v; want 2, nil", n, err)
	}
	if n, err := ca.RevokeDevice("PC-B", ""); err != nil || n != 0 {
		t.Errorf("RevokeDevice again = %d, %v; want 0, nil", n, err)
	}
	if _, err := ca.RevokeDevice("PC-NONE", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeDevice unknown: %v", err)
	}

	crlPEM, err := ca.CRL(24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(crlPEM)
	if block == nil || block.Type != "X509 CRL" {
		t.Fatalf("CRL PEM: %q", crlPEM)
	}
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(ca.Certificate()); err != nil {
		t.Errorf("CRL signature: %v", err)
	}
	got := map[string]int{}
	for _, e := range crl.RevokedCertificateEntries {
		got[FormatSerial(e.SerialNumber)] = e.ReasonCode
	}
	want := map[string]int{a.Serial: 1, b1.Serial: 5, b2.Serial: 5}
	if len(got) != len(want) {
		t.Errorf("CRL lists %v, want %v", got, want)
	}
	for s, code := range want {
		if c, ok := got[s]; !ok || c != code {
			t.Errorf("CRL entry %s: reason %d present=%v, want %d", s, c, ok, code)
		}
	}
	if !crl.NextUpdate.Equal(t0.Add(24*time.Hour)) || crl.Number.Int64() != 1 {
		t.Errorf("CRL NextUpdate %s Number %v", crl.NextUpdate, crl.Number)
	}
	crl2PEM, _ := ca.CRL(0)
	block, _ = pem.Decode(crl2PEM)
	crl2, _ := x509.ParseRevocationList(block.Bytes)
	if crl2.Number.Int64() != 2 || !crl2.NextUpdate.Equal(t0.Add(DefaultCRLValidity)) {
		t.Errorf("second CRL Number %v NextUpdate %s", crl2.Number, crl2.NextUpdate)
	}

	// The index survives a reload.
	re, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, e := range re.List() {
		if e.Revoked() {
			revoked++
		}
	}
	if len(re.List()) != 4 || revoked != 3 {
		t.Errorf("after Load: %d entries, %d revoked; want 4, 3", len(re.List()), revoked)
	}
}

func TestTwoHandlesShareIndex(t *testing.T) {
	// Two CLI runs (two Loads) must not lose each other's records.
	ca, dir := newTestCA(t)
	other, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueDevice(DeviceRequest{Device: "PC-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.IssueDevice(DeviceRequest{Device: "PC-2"}); err != nil {
		t.Fatal(err)
	}
	if n := len(other.List()); n != 2 {
		t.Fatalf("index has %d entries, want 2", n)
	}
	// The first handle sees the second's record without a new Load.
	if n := len(ca.List()); n != 2 {
		t.Fatalf("first handle lists %d entries, want 2", n)
	}
}

func TestParseSerial(t *testing.T) {
	for in, want := range map[string]string{"0A:ff": "aff", "0xABC": "abc", " 1f ": "1f"} {
		n, err := ParseSerial(in)
		if err != nil || FormatSerial(n) != want {
			t.Errorf("ParseSerial(%q) = %v, %v; want %s", in, n, err, want)
		}
	}
	for _, in := range []string{"", "0", "xyz", "-1", ":"} {
		if _, err := ParseSerial(in); err == nil {
			t.Errorf("ParseSerial(%q) accepted", in)
		}
	}
}

func TestKeyAlgorithms(t *testing.T) {
	ca, dir := newTestCA(t, WithKeyAlgorithm(ECDSAP384), WithName("○○市 端末認証局"))
	if ca.Certificate().Subject.CommonName != "○○市 端末認証局" {
		t.Errorf("CN = %q", ca.Certificate().Subject.CommonName)
	}
	re, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	is, err := re.IssueDevice(DeviceRequest{Device: "PC-1"})
	if err != nil {
		t.Fatal(err)
	}
	if pub := parsePEMCert(t, is.CertPEM).PublicKey.(*ecdsa.PublicKey); pub.Curve.Params().BitSize != 384 {
		t.Errorf("device key after Load is P-%d, want the algorithm chosen at Init", pub.Curve.Params().BitSize)
	}
	if _, err := Init(t.TempDir(), WithKeyAlgorithm("dsa")); err == nil {
		t.Error("unknown key algorithm accepted")
	}
}

func TestConcurrentIssueKeepsEveryRecord(t *testing.T) {
	_, dir := newTestCA(t)
	// Separate handles stand for separate processes: each re-reads the
	// index under the directory lock.
	var wg sync.WaitGroup
	for i := range 8 {
		ca, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if _, err := ca.IssueDevice(DeviceRequest{Device: fmt.Sprintf("PC-%d", i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ca, _ := Load(dir)
	if n := len(ca.List()); n != 8 {
		t.Fatalf("index has %d entries after 8 concurrent issues, want 8", n)
	}
}
