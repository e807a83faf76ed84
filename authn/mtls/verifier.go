package mtls

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/sekisho/sekisho/config"
)

// Device is what a verified client certificate says.
type Device struct {
	// ID is the device id (see config.Devices).
	ID string
	// User is the user bound in the certificate (SAN URI urn:sekisho:user:),
	// "" when none.
	User string
	// Fingerprint is the hex SHA-256 of the leaf certificate's DER.
	Fingerprint string
	// Serial is the leaf's serial number in lower-case hex.
	Serial string
	// Issuer and Subject are the leaf's distinguished names (RFC 2253 form).
	Issuer  string
	Subject string
	// NotAfter is when the leaf certificate expires.
	NotAfter time.Time
}

// Verifier checks client certificates at the gateway. It is safe for
// concurrent use.
type Verifier struct {
	roots   *x509.CertPool
	anchors []*x509.Certificate

	idFrom    string
	uriPrefix string

	ocspOn       bool
	ocspFailOpen bool
	ocspTimeout  time.Duration
	ocspAnswers  *lru.Cache[string, ocspAnswer]
	ocspDown     *lru.Cache[string, time.Time]

	now       func() time.Time
	client    *http.Client
	ownClient bool // client was made here, so Close may close its connections
	log       *slog.Logger
	cacheSize int
	cacheTTL  time.Duration
	cache     *lru.Cache[[32]byte, cached]

	crlPath     string
	crlPoll     time.Duration
	crl         atomic.Pointer[crlSet]
	reloadMu    sync.Mutex
	refused     fileStamp // the last CRL file refused; guarded by reloadMu
	staleWarned atomic.Int64

	ocspMu       sync.Mutex
	ocspInFlight map[string]*ocspCall

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// cached is a successful verification.
type cached struct {
	dev *Device
	// gen is the CRL generation it was made under.
	gen uint64
	// until: the cache TTL, the chain's earliest NotAfter, the OCSP answer's
	// NextUpdate, whichever comes first.
	until time.Time
	// notBefore guards against a clock set back.
	notBefore time.Time
}

// Option adjusts a Verifier.
type Option func(*Verifier)

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(v *Verifier) { v.now = now } }

// WithHTTPClient is the client for OCSP requests. Default: a client with no
// proxy from the environment and the configured OCSP timeout.
func WithHTTPClient(c *http.Client) Option { return func(v *Verifier) { v.client = c } }

// WithLogger receives CRL reloads, refused CRLs and OCSP failures.
// Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(v *Verifier) { v.log = l } }

// WithCache sets how many successful verifications are kept (default 4096)
// and for how long at most (default 1 minute). size 0 disables the cache.
func WithCache(size int, ttl time.Duration) Option {
	return func(v *Verifier) { v.cacheSize, v.cacheTTL = size, ttl }
}

// WithCRLPoll sets how often the CRL file is checked for changes besides
// file-system notifications. Default 30s.
func WithCRLPoll(d time.Duration) Option { return func(v *Verifier) { v.crlPoll = d } }

// maxChain bounds the certificates a client may present.
const maxChain = 8

// New builds a Verifier from cfg.Server.ClientCA, CRL and OCSP and
// cfg.Devices. With no client CA, every certificate is refused as
// untrusted and [Verifier.ClientCAs] is nil. A CRL file named in the
// configuration must load; later reloads that fail keep the previous CRL.
func New(cfg *config.Config, opts ...Option) (*Verifier, error) {
	v := &Verifier{
		idFrom:       cfg.Devices.IDFrom,
		uriPrefix:    cfg.Devices.URIPrefix,
		ocspOn:       cfg.Server.OCSP.Enabled,
		ocspFailOpen: cfg.Server.OCSP.FailOpen,
		ocspTimeout:  cfg.Server.OCSP.Timeout,
		now:          time.Now,
		log:          slog.Default(),
		cacheSize:    4096,
		cacheTTL:     time.Minute,
		crlPath:      cfg.Server.CRL,
		crlPoll:      30 * time.Second,
		done:         make(chan struct{}),
		ocspInFlight: map[string]*ocspCall{},
	}
	for _, o := range opts {
		o(v)
	}
	if v.idFrom == "" {
		v.idFrom = IDFromSANURI
	}
	if v.uriPrefix == "" {
		v.uriPrefix = sekishoDeviceURIPrefix
	}
	switch v.idFrom {
	case IDFromSANURI, IDFromSANDNS, IDFromSANUPN, IDFromSANEmail, IDFromCN:
	default:
		return nil, fmt.Errorf("device certificates: unknown devices.id_from %q", v.idFrom)
	}
	if v.ocspTimeout <= 0 {
		v.ocspTimeout = config.DefaultOCSPTimeout
	}
	if v.client == nil {
		v.client = &http.Client{Timeout: v.ocspTimeout, Transport: &http.Transport{Proxy: nil}}
		v.ownClient = true
	}
	if v.crlPoll <= 0 {
		v.crlPoll = 30 * time.Second
	}
	size := v.cacheSize
	if size <= 0 {
		size, v.cacheTTL = 1, 0
	}
	v.cache, _ = lru.New[[32]byte, cached](size)
	v.ocspAnswers, _ = lru.New[string, ocspAnswer](max(size, 64))
	v.ocspDown, _ = lru.New[string, time.Time](64)

	for _, path := range cfg.Server.ClientCA {
		certs, err := readCertBundle(path)
		if err != nil {
			return nil, fmt.Errorf("device certificates: loading client CA: %w", err)
		}
		v.anchors = append(v.anchors, certs...)
	}
	if len(v.anchors) > 0 {
		v.roots = x509.NewCertPool()
		for _, c := range v.anchors {
			v.roots.AddCert(c)
		}
	}

	v.crl.Store(&crlSet{})
	if v.crlPath != "" {
		if len(v.anchors) == 0 {
			return nil, fmt.Errorf("device certificates: server.crl is set but server.client_ca is empty")
		}
		set, err := v.loadCRL(1)
		if err != nil {
			return nil, fmt.Errorf("device certificates: %w", err)
		}
		v.crl.Store(set)
		v.warnIfStale(set, v.now(), true)
		v.watchCRL()
	}
	return v, nil
}

// readCertBundle reads every CERTIFICATE block of a PEM file.
func readCertBundle(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", path, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
	}
	return certs, nil
}

// ClientCAs is the pool for tls.Config.ClientCAs: the names in it are sent
// to clients so that they pick the right certificate. Nil without client CAs.
func (v *Verifier) ClientCAs() *x509.CertPool { return v.roots }

// Close stops watching the CRL file. Verify keeps working with the CRL
// loaded last.
func (v *Verifier) Close() error {
	v.closeOnce.Do(func() { close(v.done) })
	v.wg.Wait()
	if v.ownClient {
		v.client.CloseIdleConnections()
	}
	return nil
}

// Verify checks a client's certificate chain as presented in
// tls.ConnectionState.PeerCertificates (leaf first): chain to a client CA,
// validity, extended key usage clientAuth, CRL, OCSP when configured, and
// the device id. The error wraps one of the package's sentinels.
func (v *Verifier) Verify(chain []*x509.Certificate) (*Device, error) {
	if len(chain) == 0 {
		return nil, ErrNoCertificate
	}
	if len(chain) > maxChain {
		return nil, fmt.Errorf("%w: %d certificates presented", ErrUntrusted, len(chain))
	}
	leaf := chain[0]
	fp := sha256.Sum256(leaf.Raw)
	now := v.now()
	crl := v.crl.Load()
	if c, ok := v.cache.Get(fp); ok && c.gen == crl.gen && now.Before(c.until) && !now.Before(c.notBefore) {
		d := *c.dev
		return &d, nil
	}
	dev, until, err := v.verify(leaf, chain[1:], fp, now, crl)
	if err != nil {
		return nil, err
	}
	if v.cacheTTL > 0 {
		until = minTime(until, now.Add(v.cacheTTL))
		v.cache.Add(fp, cached{dev: dev, gen: crl.gen, until: until, notBefore: leaf.NotBefore})
	}
	d := *dev
	return &d, nil
}

func (v *Verifier) verify(leaf *x509.Certificate, presented []*x509.Certificate, fp [32]byte, now time.Time, crl *crlSet) (*Device, time.Time, error) {
	if v.roots == nil {
		return nil, time.Time{}, fmt.Errorf("%w: no client CA is configured", ErrUntrusted)
	}
	inter := x509.NewCertPool()
	for _, c := range presented {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, time.Time{}, classify(err, now)
	}
	// Go accepts a leaf without any extended key usage as usable for all;
	// a device certificate must say clientAuth.
	if !hasClientAuth(leaf) {
		return nil, time.Time{}, fmt.Errorf("%w: no clientAuth extended key usage", ErrUsage)
	}
	if leaf.IsCA {
		return nil, time.Time{}, fmt.Errorf("%w: a CA certificate", ErrUsage)
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, time.Time{}, fmt.Errorf("%w: key usage lacks digitalSignature", ErrUsage)
	}

	// A chain counts when none of its certificates is on the CRL (the
	// anchor too: an issuing CA listed in client_ca may be revoked by its
	// root); with several chains (cross-signing) one good chain suffices.
	var good []*x509.Certificate
	for _, ch := range chains {
		revoked := false
		for _, c := range ch {
			if crl.isRevoked(c) {
				revoked = true
				break
			}
		}
		if !revoked {
			good = ch
			break
		}
	}
	if good == nil {
		return nil, time.Time{}, fmt.Errorf("%w: listed in the CRL (serial %s, issuer %s)", ErrRevoked, leaf.SerialNumber.Text(16), leaf.Issuer)
	}
	until := leaf.NotAfter
	for _, c := range good {
		until = minTime(until, c.NotAfter)
	}

	id, user, err := identity(leaf, v.idFrom, v.uriPrefix)
	if err != nil {
		return nil, time.Time{}, err
	}

	if v.ocspOn && len(leaf.OCSPServer) > 0 && len(good) > 1 {
		ocspUntil, err := v.checkOCSP(leaf, good[1], now)
		switch {
		case err == nil:
			until = minTime(until, ocspUntil)
		case v.ocspFailOpen && errors.Is(err, ErrOCSPUnavailable) && !errors.Is(err, errOCSPUnknown):
			v.log.Warn("OCSP unavailable; certificate accepted (fail_open)", "serial", leaf.SerialNumber.Text(16), "err", err)
			until = minTime(until, ocspUntil)
		default:
			return nil, time.Time{}, err
		}
	}

	return &Device{
		ID:          id,
		User:        user,
		Fingerprint: hex.EncodeToString(fp[:]),
		Serial:      leaf.SerialNumber.Text(16),
		Issuer:      leaf.Issuer.String(),
		Subject:     leaf.Subject.String(),
		NotAfter:    leaf.NotAfter,
	}, until, nil
}

func hasClientAuth(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// classify maps an x509 verification error to the package's sentinels,
// keeping the original for the log.
func classify(err error, now time.Time) error {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		switch inv.Reason {
		case x509.Expired:
			if inv.Cert != nil && now.Before(inv.Cert.NotBefore) {
				return fmt.Errorf("%w: %w", ErrNotYetValid, err)
			}
			return fmt.Errorf("%w: %w", ErrExpired, err)
		case x509.IncompatibleUsage:
			return fmt.Errorf("%w: %w", ErrUsage, err)
		}
	}
	return fmt.Errorf("%w: %w", ErrUntrusted, err)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
