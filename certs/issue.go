package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"software.sslmate.com/src/go-pkcs12"
)

// DeviceRequest asks for a device certificate.
type DeviceRequest struct {
	// Device is the device id, e.g. "PC-0123". Required; see [ValidID].
	Device string
	// User, if set, binds the certificate to one staff member as well.
	User string
	// Days of validity. Zero: [DefaultDeviceDays].
	Days int
	// Password protects the .p12 file. Empty: a random one is generated and
	// returned in [Issued.Password].
	Password string
	// LegacyP12 encodes the .p12 with 3DES and a SHA-1 MAC instead of
	// AES-256/SHA-256, for Windows before 10 1809 / Server 2019. Use it only
	// with a generated (high-entropy) password.
	LegacyP12 bool
}

// Issued is a freshly issued certificate with its private key.
type Issued struct {
	CertPEM []byte
	KeyPEM  []byte
	// P12 is a PKCS#12 file with the key and certificate, encrypted with
	// PBES2/AES-256 and a SHA-256 MAC (readable by Windows 10 1809+/Server
	// 2019+, macOS, and OpenSSL 1.1.1+), or 3DES/SHA-1 with LegacyP12.
	P12 []byte
	// Password of P12, as given or generated.
	Password string
	// Serial in lower-case hex (see [FormatSerial]).
	Serial string
	// Fingerprint is the hex SHA-256 of the certificate's DER.
	Fingerprint string
}

// WriteFiles writes prefix.pem, prefix-key.pem (0600) and prefix.p12 (0600).
// It refuses to overwrite existing files.
func (is *Issued) WriteFiles(prefix string) error {
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{prefix + ".pem", is.CertPEM, 0o644},
		{prefix + "-key.pem", is.KeyPEM, 0o600},
		{prefix + ".p12", is.P12, 0o600},
	}
	for _, f := range files {
		if _, err := os.Lstat(f.name); err == nil {
			return fmt.Errorf("writing %s: file exists", f.name)
		}
	}
	if dir := filepath.Dir(prefix); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("writing certificate files: %w", err)
		}
	}
	for _, f := range files {
		if f.data == nil {
			continue
		}
		if err := writeExclusive(f.name, f.data, f.mode); err != nil {
			return fmt.Errorf("writing certificate files: %w", err)
		}
	}
	return nil
}

// IssueDevice issues a client certificate for one device.
func (c *CA) IssueDevice(req DeviceRequest) (*Issued, error) {
	if !ValidID(req.Device) {
		return nil, fmt.Errorf("issuing device certificate: device %q: %w (letters, digits and . _ @ + -, up to 128)", req.Device, ErrInvalidID)
	}
	if req.User != "" && !ValidID(req.User) {
		return nil, fmt.Errorf("issuing device certificate: user %q: %w (letters, digits and . _ @ + -, up to 128)", req.User, ErrInvalidID)
	}
	days := req.Days
	if days == 0 {
		days = DefaultDeviceDays
	}
	if days < 0 {
		return nil, fmt.Errorf("issuing device certificate: days must be positive, got %d", days)
	}
	password := req.Password
	if password == "" {
		var err error
		if password, err = generatePassword(c.rand); err != nil {
			return nil, fmt.Errorf("issuing device certificate: %w", err)
		}
	}
	serial, err := c.serial()
	if err != nil {
		return nil, fmt.Errorf("issuing device certificate: %w", err)
	}
	tmpl := deviceTemplate(req.Device, req.User, serial, c.now(), days)
	cert, key, err := c.sign(tmpl)
	if err != nil {
		return nil, fmt.Errorf("issuing device certificate for %s: %w", req.Device, err)
	}
	enc := pkcs12.Modern2023
	if req.LegacyP12 {
		enc = pkcs12.LegacyDES
	}
	p12, err := enc.WithRand(c.rand).Encode(key, cert, nil, password)
	if err != nil {
		return nil, fmt.Errorf("issuing device certificate: encoding PKCS#12: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	is := &Issued{
		CertPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		KeyPEM:      keyPEM,
		P12:         p12,
		Password:    password,
		Serial:      FormatSerial(cert.SerialNumber),
		Fingerprint: Fingerprint(cert.Raw),
	}
	err = c.record(cert, Entry{Kind: KindDevice, Device: req.Device, User: req.User})
	if err != nil {
		return nil, fmt.Errorf("issuing device certificate: %w", err)
	}
	return is, nil
}

// IssueServer issues a TLS server certificate for the gateway. hosts are DNS
// names or IP addresses; the first is also the common name. days zero means
// [DefaultServerDays].
func (c *CA) IssueServer(hosts []string, days int) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, fmt.Errorf("issuing server certificate: at least one host is needed")
	}
	if days == 0 {
		days = DefaultServerDays
	}
	if days < 0 {
		return nil, nil, fmt.Errorf("issuing server certificate: days must be positive, got %d", days)
	}
	serial, err := c.serial()
	if err != nil {
		return nil, nil, fmt.Errorf("issuing server certificate: %w", err)
	}
	tmpl, err := serverTemplate(hosts, serial, c.now(), days)
	if err != nil {
		return nil, nil, fmt.Errorf("issuing server certificate: %w", err)
	}
	cert, key, err := c.sign(tmpl)
	if err != nil {
		return nil, nil, fmt.Errorf("issuing server certificate for %s: %w", hosts[0], err)
	}
	if keyPEM, err = encodeKey(key); err != nil {
		return nil, nil, err
	}
	if err := c.record(cert, Entry{Kind: KindServer, Hosts: append([]string(nil), hosts...)}); err != nil {
		return nil, nil, fmt.Errorf("issuing server certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), keyPEM, nil
}

// sign generates a key and signs tmpl with the CA key.
func (c *CA) sign(tmpl *x509.Certificate) (*x509.Certificate, crypto.Signer, error) {
	key, err := generateKey(c.keyAlg, false)
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	if tmpl.NotAfter.After(c.cert.NotAfter) {
		return nil, nil, fmt.Errorf("requested validity ends %s, after the CA certificate's (%s)",
			tmpl.NotAfter.Format("2006-01-02"), c.cert.NotAfter.Format("2006-01-02"))
	}
	der, err := x509.CreateCertificate(c.rand, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the signed certificate: %w", err)
	}
	return cert, key, nil
}

// record adds an issued certificate to the index and keeps a copy of it.
func (c *CA) record(cert *x509.Certificate, e Entry) error {
	e.Serial = FormatSerial(cert.SerialNumber)
	e.Subject = cert.Subject.String()
	e.Fingerprint = Fingerprint(cert.Raw)
	e.IssuedAt = c.now().UTC()
	e.NotBefore = cert.NotBefore.UTC()
	e.NotAfter = cert.NotAfter.UTC()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := os.MkdirAll(filepath.Join(c.dir, IssuedDir), 0o700); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(c.dir, IssuedDir, e.Serial+".pem"), certPEM, 0o644); err != nil {
		return err
	}
	return c.update(func(idx *index) error {
		idx.Entries = append(idx.Entries, e)
		return nil
	})
}

// update re-reads the index (another process may have changed it since
// Load) under the directory lock, applies fn to a copy and saves the copy.
func (c *CA) update(fn func(*index) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	unlock, err := lockDir(c.dir)
	if err != nil {
		return err
	}
	defer unlock()
	path := filepath.Join(c.dir, IndexFile)
	idx, err := loadIndex(path)
	if err != nil {
		return err
	}
	next := idx.clone()
	if err := fn(next); err != nil {
		return err
	}
	if err := next.save(path); err != nil {
		return err
	}
	c.index = next
	return nil
}

// passwordAlphabet leaves out characters that are easy to misread when a
// password is typed from paper: 0/O, 1/l/I.
const passwordAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// generatePassword returns 20 characters in groups of five (about 99 bits).
func generatePassword(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for n := 0; n < 20; {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("generating password: %w", err)
		}
		// Rejection sampling keeps every character equally likely.
		if int(buf[0]) >= 256-256%len(passwordAlphabet) {
			continue
		}
		if n > 0 && n%5 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(passwordAlphabet[int(buf[0])%len(passwordAlphabet)])
		n++
	}
	return b.String(), nil
}
