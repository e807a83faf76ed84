package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// File names inside a CA directory.
const (
	CertFile  = "ca.pem"
	KeyFile   = "ca-key.pem"
	IndexFile = "index.json"
	IssuedDir = "issued"
)

// Sentinel errors callers may branch on.
var (
	// ErrExists: Init found a CA already in the directory.
	ErrExists = errors.New("a CA already exists in this directory")
	// ErrInsecureKey: a private key file is readable by group or others.
	ErrInsecureKey = errors.New("private key file is readable by group or others")
	// ErrNotFound: no certificate has the serial or device asked for.
	ErrNotFound = errors.New("no such certificate")
	// ErrInvalidID: a device or user id has characters that may not appear in it.
	ErrInvalidID = errors.New("invalid id")
)

// KeyAlgorithm names a key type for the CA and the keys it generates.
type KeyAlgorithm string

// Supported key algorithms. ECDSA P-256 is the default: small, fast, and
// accepted by Windows, macOS, iOS, Android and every browser.
const (
	ECDSAP256 KeyAlgorithm = "ecdsa-p256"
	ECDSAP384 KeyAlgorithm = "ecdsa-p384"
	RSA2048   KeyAlgorithm = "rsa-2048"
	RSA3072   KeyAlgorithm = "rsa-3072"
)

// CA is a device-certificate authority backed by a directory. Its methods
// are safe for concurrent use; changes to the index from several processes
// are serialised by an advisory lock on the directory (Unix).
type CA struct {
	dir    string
	cert   *x509.Certificate
	pem    []byte
	key    crypto.Signer
	alg    KeyAlgorithm
	now    func() time.Time
	rand   io.Reader
	name   string
	years  int
	mu     sync.Mutex
	index  *index
	keyAlg KeyAlgorithm // algorithm of generated leaf keys
	// keyAlgSet: WithKeyAlgorithm was given; otherwise Load uses the
	// algorithm recorded at Init.
	keyAlgSet bool
}

// Option adjusts a CA.
type Option func(*CA)

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(c *CA) { c.now = now } }

// WithRand replaces crypto/rand as the source of serial numbers, generated
// passwords and PKCS#12 salts. Key generation always uses the system's
// secure source, as the Go standard library decides.
func WithRand(r io.Reader) Option { return func(c *CA) { c.rand = r } }

// WithName sets the CA's common name at Init, e.g. "○○市 端末認証局".
// Default "sekisho device CA".
func WithName(name string) Option { return func(c *CA) { c.name = name } }

// WithCAYears sets the CA certificate's validity at Init. Default 10 years.
func WithCAYears(years int) Option { return func(c *CA) { c.years = years } }

// WithKeyAlgorithm selects the key type: for the CA key at Init, and for
// device and server keys issued afterwards. Default ECDSA P-256.
func WithKeyAlgorithm(alg KeyAlgorithm) Option {
	return func(c *CA) { c.alg, c.keyAlg, c.keyAlgSet = alg, alg, true }
}

func newCA(dir string, opts []Option) (*CA, error) {
	c := &CA{dir: dir, now: time.Now, rand: rand.Reader, name: "sekisho device CA", years: DefaultCAYears}
	for _, o := range opts {
		o(c)
	}
	if c.alg == "" {
		c.alg = ECDSAP256
	}
	if c.keyAlg == "" {
		c.keyAlg = ECDSAP256
	}
	if _, err := generateKey(c.alg, true); err != nil {
		return nil, err
	}
	if c.years <= 0 {
		return nil, fmt.Errorf("CA validity must be at least one year, got %d", c.years)
	}
	return c, nil
}

// Init creates a new CA in dir (created with mode 0700 if missing). It
// refuses a directory that already holds a CA or that group or others may
// enter.
func Init(dir string, opts ...Option) (*CA, error) {
	c, err := newCA(dir, opts)
	if err != nil {
		return nil, err
	}
	for _, f := range []string{CertFile, KeyFile, IndexFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("initialising CA in %s: %s: %w", dir, f, ErrExists)
		}
	}
	// A directory made here is 0700; one the operator made must not be
	// open to others either, but is not silently changed.
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return nil, fmt.Errorf("initialising CA: %s is not a directory", dir)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
			return nil, fmt.Errorf("initialising CA: directory %s is open to group or others (mode %04o; run chmod 700)", dir, perm)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("initialising CA: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, IssuedDir), 0o700); err != nil {
		return nil, fmt.Errorf("initialising CA: %w", err)
	}
	key, err := generateKey(c.alg, false)
	if err != nil {
		return nil, fmt.Errorf("initialising CA: generating key: %w", err)
	}
	serial, err := c.serial()
	if err != nil {
		return nil, err
	}
	tmpl := caTemplate(c.name, serial, c.now(), c.years)
	der, err := x509.CreateCertificate(c.rand, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("initialising CA: signing CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	// The key is written first and exclusively: a concurrent Init or an
	// existing key can never be overwritten.
	if err := writeExclusive(filepath.Join(dir, KeyFile), keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("initialising CA: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeExclusive(filepath.Join(dir, CertFile), certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("initialising CA: %w", err)
	}
	c.index = &index{Version: 1, KeyAlgorithm: string(c.keyAlg)}
	if err := c.index.save(filepath.Join(dir, IndexFile)); err != nil {
		return nil, fmt.Errorf("initialising CA: %w", err)
	}
	c.cert, _ = x509.ParseCertificate(der)
	c.pem = certPEM
	c.key = key
	return c, nil
}

// Load opens the CA in dir. It refuses a key file that group or others can
// read (on systems with Unix permissions).
func Load(dir string, opts ...Option) (*CA, error) {
	c, err := newCA(dir, opts)
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, KeyFile)
	if err := checkKeyMode(keyPath); err != nil {
		return nil, fmt.Errorf("loading CA: %w", err)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, fmt.Errorf("loading CA: %w", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("loading CA: %s: no PEM CERTIFICATE block", filepath.Join(dir, CertFile))
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("loading CA: parsing %s: %w", CertFile, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("loading CA: %w", err)
	}
	key, err := decodeKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading CA: %s: %w", keyPath, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("loading CA: %s does not belong to %s", KeyFile, CertFile)
	}
	idx, err := loadIndex(filepath.Join(dir, IndexFile))
	if err != nil {
		return nil, fmt.Errorf("loading CA: %w", err)
	}
	if !c.keyAlgSet && idx.KeyAlgorithm != "" {
		c.keyAlg = KeyAlgorithm(idx.KeyAlgorithm)
	}
	c.cert, c.pem, c.key, c.index = cert, certPEM, key, idx
	return c, nil
}

// Certificate returns the CA certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CertPEM returns the CA certificate in PEM.
func (c *CA) CertPEM() []byte { return append([]byte(nil), c.pem...) }

// Dir returns the CA directory.
func (c *CA) Dir() string { return c.dir }

// serial returns a fresh random positive 128-bit serial number.
func (c *CA) serial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(c.rand, limit)
		if err != nil {
			return nil, fmt.Errorf("generating serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// FormatSerial writes a serial number as sekisho does everywhere: lower-case
// hex without separators or leading zeros.
func FormatSerial(n *big.Int) string { return n.Text(16) }

// ParseSerial reads a serial number in hex, with or without colons, any case,
// with an optional 0x prefix (the forms openssl and Windows print).
func ParseSerial(s string) (*big.Int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimPrefix(t, "0x")
	t = strings.NewReplacer(":", "", " ", "").Replace(t)
	n, ok := new(big.Int).SetString(t, 16)
	if !ok || t == "" || n.Sign() <= 0 {
		return nil, fmt.Errorf("invalid serial number %q (want hex)", s)
	}
	return n, nil
}

// Fingerprint is the hex SHA-256 of a certificate's DER, the form audit
// records and the gateway use.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func generateKey(alg KeyAlgorithm, probeOnly bool) (crypto.Signer, error) {
	var curve elliptic.Curve
	bits := 0
	switch alg {
	case ECDSAP256:
		curve = elliptic.P256()
	case ECDSAP384:
		curve = elliptic.P384()
	case RSA2048:
		bits = 2048
	case RSA3072:
		bits = 3072
	default:
		return nil, fmt.Errorf("unknown key algorithm %q (want %s, %s, %s or %s)", alg, ECDSAP256, ECDSAP384, RSA2048, RSA3072)
	}
	if probeOnly {
		return nil, nil
	}
	if curve != nil {
		return ecdsa.GenerateKey(curve, rand.Reader)
	}
	return rsa.GenerateKey(rand.Reader, bits)
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func decodeKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// checkKeyMode refuses a key file readable by group or others.
func checkKeyMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s (mode %04o; run chmod 600): %w", path, perm, ErrInsecureKey)
	}
	return nil
}

// writeExclusive creates path with mode, failing if it exists.
func writeExclusive(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// writeAtomic replaces path with data through a temporary file and rename,
// so a reader never sees a half-written file.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name)
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(name, path)
}
