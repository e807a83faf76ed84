package certs

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrAlreadyRevoked: Revoke was asked for a certificate already revoked.
var ErrAlreadyRevoked = errors.New("certificate already revoked")

// DefaultCRLValidity is the nextUpdate distance when CRL is given zero.
const DefaultCRLValidity = 7 * 24 * time.Hour

// reasons are the RFC 5280 CRLReason codes an operator may give. Holds
// (certificateHold, removeFromCRL) are left out: revocation here is final.
var reasons = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
	"privilegeWithdrawn":   9,
}

// ParseReason maps a revocation reason to its canonical RFC 5280 name and
// code. Case, "_" and "-" are ignored ("key_compromise" is keyCompromise);
// empty is "unspecified".
func ParseReason(s string) (name string, code int, err error) {
	if s == "" {
		return "unspecified", 0, nil
	}
	norm := strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	for n, c := range reasons {
		if strings.ToLower(n) == norm {
			return n, c, nil
		}
	}
	names := make([]string, 0, len(reasons))
	for n := range reasons {
		names = append(names, n)
	}
	slices.Sort(names)
	return "", 0, fmt.Errorf("unknown revocation reason %q (want one of %s)", s, strings.Join(names, ", "))
}

// Revoke marks the certificate with serial (hex, see [ParseSerial]) revoked.
// The change reaches the gateway with the next [CA.CRL].
func (c *CA) Revoke(serial, reason string) error {
	n, err := ParseSerial(serial)
	if err != nil {
		return fmt.Errorf("revoking: %w", err)
	}
	name, _, err := ParseReason(reason)
	if err != nil {
		return fmt.Errorf("revoking: %w", err)
	}
	want := FormatSerial(n)
	now := c.now().UTC()
	return c.update(func(idx *index) error {
		for i := range idx.Entries {
			e := &idx.Entries[i]
			if e.Serial != want {
				continue
			}
			if e.Revoked() {
				return fmt.Errorf("revoking %s: %w", want, ErrAlreadyRevoked)
			}
			e.RevokedAt, e.Reason = &now, name
			return nil
		}
		return fmt.Errorf("revoking %s: %w", want, ErrNotFound)
	})
}

// RevokeDevice revokes every not yet revoked certificate of device and
// returns how many it revoked. A device that was never issued a certificate
// is an error; one whose certificates are all revoked already gives 0.
func (c *CA) RevokeDevice(device, reason string) (int, error) {
	name, _, err := ParseReason(reason)
	if err != nil {
		return 0, fmt.Errorf("revoking device %s: %w", device, err)
	}
	now := c.now().UTC()
	count := 0
	err = c.update(func(idx *index) error {
		found := false
		for i := range idx.Entries {
			e := &idx.Entries[i]
			if e.Kind != KindDevice || e.Device != device {
				continue
			}
			found = true
			if !e.Revoked() {
				e.RevokedAt, e.Reason = &now, name
				count++
			}
		}
		if !found {
			return fmt.Errorf("revoking device %s: %w", device, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return count, nil
}

// CRL signs a new certificate revocation list, valid for nextUpdate (zero:
// [DefaultCRLValidity]), listing every revoked certificate, and returns it
// in PEM. Each call uses the next CRL number.
func (c *CA) CRL(nextUpdate time.Duration) ([]byte, error) {
	if nextUpdate == 0 {
		nextUpdate = DefaultCRLValidity
	}
	if nextUpdate < 0 {
		return nil, fmt.Errorf("writing CRL: validity must be positive, got %s", nextUpdate)
	}
	now := c.now()
	var der []byte
	err := c.update(func(idx *index) error {
		idx.CRLNumber++
		var entries []x509.RevocationListEntry
		for _, e := range idx.Entries {
			if !e.Revoked() {
				continue
			}
			n, err := ParseSerial(e.Serial)
			if err != nil {
				return fmt.Errorf("index entry %q: %w", e.Serial, err)
			}
			_, code, _ := ParseReason(e.Reason)
			entries = append(entries, x509.RevocationListEntry{
				SerialNumber:   n,
				RevocationTime: *e.RevokedAt,
				ReasonCode:     code,
			})
		}
		tmpl := &x509.RevocationList{
			Number:                    big.NewInt(idx.CRLNumber),
			ThisUpdate:                now.Add(-backdate),
			NextUpdate:                now.Add(nextUpdate),
			RevokedCertificateEntries: entries,
		}
		var err error
		der, err = x509.CreateRevocationList(c.rand, tmpl, c.cert, c.key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("writing CRL: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}

// List returns every certificate the CA has issued, oldest first, as the
// index file says now (another process may have issued or revoked since
// Load); if the file cannot be read, as this handle last saw it.
func (c *CA) List() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if idx, err := loadIndex(filepath.Join(c.dir, IndexFile)); err == nil {
		c.index = idx
	}
	return c.index.clone().Entries
}

// WriteCRL signs a new CRL (see [CA.CRL]) and puts it at path through a
// temporary file and a rename, so a gateway watching the file never reads a
// half-written CRL.
func (c *CA) WriteCRL(path string, nextUpdate time.Duration) error {
	crl, err := c.CRL(nextUpdate)
	if err != nil {
		return err
	}
	if err := writeAtomic(path, crl, 0o644); err != nil {
		return fmt.Errorf("writing CRL to %s: %w", path, err)
	}
	return nil
}
