package certs

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Kind says what a certificate was issued for.
type Kind string

// Kinds of issued certificates.
const (
	KindDevice Kind = "device"
	KindServer Kind = "server"
)

// Entry is one issued certificate as recorded in the index.
type Entry struct {
	Serial      string    `json:"serial"`
	Kind        Kind      `json:"kind"`
	Device      string    `json:"device,omitempty"`
	User        string    `json:"user,omitempty"`
	Hosts       []string  `json:"hosts,omitempty"`
	Subject     string    `json:"subject"`
	Fingerprint string    `json:"fingerprint"`
	IssuedAt    time.Time `json:"issued_at"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	// RevokedAt is nil while the certificate is not revoked.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// Reason is the revocation reason (see [ParseReason]).
	Reason string `json:"reason,omitempty"`
}

// Revoked reports whether the certificate has been revoked.
func (e Entry) Revoked() bool { return e.RevokedAt != nil }

// index is the CA's record of everything it issued, stored as JSON.
type index struct {
	Version      int    `json:"version"`
	KeyAlgorithm string `json:"key_algorithm,omitempty"`
	// CRLNumber is the number of the last CRL written (RFC 5280 §5.2.3).
	CRLNumber int64   `json:"crl_number"`
	Entries   []Entry `json:"entries"`
}

func loadIndex(path string) (*index, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var idx index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if idx.Version != 1 {
		return nil, fmt.Errorf("reading %s: unsupported index version %d", path, idx.Version)
	}
	return &idx, nil
}

func (idx *index) save(path string) error {
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding index: %w", err)
	}
	return writeAtomic(path, append(data, '\n'), 0o600)
}

func (idx *index) clone() *index {
	c := *idx
	c.Entries = make([]Entry, len(idx.Entries))
	for i, e := range idx.Entries {
		if e.RevokedAt != nil {
			t := *e.RevokedAt
			e.RevokedAt = &t
		}
		e.Hosts = append([]string(nil), e.Hosts...)
		c.Entries[i] = e
	}
	return &c
}
