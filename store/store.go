package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors that callers branch on.
var (
	// ErrNotFound: no such user, credential, device, invitation or session.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: a create collided with an existing id.
	ErrExists = errors.New("store: already exists")
	// ErrInvitationUsed: the invitation was already consumed or has expired.
	ErrInvitationUsed = errors.New("store: invitation used or expired")
	// ErrChallengeUsed: a WebAuthn ceremony with this challenge already finished.
	ErrChallengeUsed = errors.New("store: challenge already used")
)

// User is one staff account.
type User struct {
	ID          string
	DisplayName string
	Department  string
	Roles       []string
	Disabled    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// CredentialSummary is what listings show of one user's passkeys.
type CredentialSummary struct {
	Count        int
	CloneWarning bool
	// LastUsedAt is the latest use of any of them (zero if never used).
	LastUsedAt time.Time
}

// Credential is one registered passkey.
type Credential struct {
	// ID is the WebAuthn credential id (raw bytes).
	ID     []byte
	UserID string
	// Name is the user's label for it ("職場のPC").
	Name            string
	PublicKey       []byte
	AttestationType string
	AAGUID          []byte
	SignCount       uint32
	Transports      []string
	UserPresent     bool
	UserVerified    bool
	BackupEligible  bool
	BackupState     bool
	// CloneWarning is set when the sign counter went backwards; such a
	// credential is refused until an administrator removes it.
	CloneWarning bool
	CreatedAt    time.Time
	LastUsedAt   time.Time
}

// Device statuses.
const (
	DeviceActive  = "active"
	DeviceRevoked = "revoked"
	// DevicePending: seen with a valid certificate but not yet registered
	// by an administrator (devices.registration: manual). It satisfies
	// device_cert, not registered_device.
	DevicePending = "pending"
)

// Device is one city-issued PC known by its certificate.
type Device struct {
	ID         string
	Owner      string // user id, may be empty
	Department string // may be empty
	// Fingerprints are hex SHA-256 of the DER certificates seen for it.
	Fingerprints []string
	Status       string
	Reason       string
	FirstSeen    time.Time
	LastSeen     time.Time
}

// Invitation is a one-time enrollment token, stored only as a hash.
type Invitation struct {
	TokenHash []byte
	UserID    string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
}

// Session is the server-side record of a signed session cookie. The cookie
// is the source of truth for a request; the record lets the console list
// sessions and revoke them by id.
type Session struct {
	ID        string
	UserID    string
	Device    string
	CertFP    string
	AMR       []string
	IP        string
	CreatedAt time.Time
	ExpiresAt time.Time
	LastSeen  time.Time
}

// Revocation kinds.
const (
	RevokeSession = "session"
	RevokeUser    = "user"
	RevokeDevice  = "device"
	RevokeAll     = "all"
)

// Revocation ends every session it matches that was issued at or before At.
// Seq is assigned by the store, strictly increasing, so replicas can ask for
// what they have not seen.
type Revocation struct {
	Seq     int64
	Kind    string
	Subject string // session id, user id or device id; "" for all
	At      time.Time
	By      string
	Reason  string
}

// Key is a signing key in JWK JSON form (private), shared by replicas.
type Key struct {
	ID        string // kid
	Use       string // "session", "assertion"
	JWK       []byte
	CreatedAt time.Time
	// NotAfter: the key signs nothing after this and is dropped once every
	// token it signed has expired.
	NotAfter time.Time
}

// Store is persistence for everything the gateway shares between requests
// and replicas. Implementations must be safe for concurrent use.
type Store interface {
	CreateUser(ctx context.Context, u *User) error
	UpdateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, id string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)

	AddCredential(ctx context.Context, c *Credential) error
	// CredentialSummaries returns, for every user with at least one
	// passkey, how many, whether any carries a clone warning and the last
	// use, in one read (for listings of tens of thousands of staff).
	CredentialSummaries(ctx context.Context) (map[string]CredentialSummary, error)
	GetCredential(ctx context.Context, id []byte) (*Credential, error)
	ListCredentials(ctx context.Context, userID string) ([]*Credential, error)
	// UpdateCredentialUse records a successful login: new counter, flags,
	// last use, clone warning.
	UpdateCredentialUse(ctx context.Context, c *Credential) error
	RenameCredential(ctx context.Context, userID string, id []byte, name string) error
	DeleteCredential(ctx context.Context, userID string, id []byte) error

	UpsertDevice(ctx context.Context, d *Device) error
	GetDevice(ctx context.Context, id string) (*Device, error)
	ListDevices(ctx context.Context) ([]*Device, error)
	// TouchDevice records that the device was seen with fingerprint fp.
	TouchDevice(ctx context.Context, id, fp string, at time.Time) error

	CreateInvitation(ctx context.Context, inv *Invitation) error
	// ConsumeInvitation marks the invitation used, atomically; it fails
	// with ErrInvitationUsed if it was used or expired at now, ErrNotFound
	// if unknown.
	ConsumeInvitation(ctx context.Context, tokenHash []byte, now time.Time) (*Invitation, error)
	// ConsumeChallenge records that the WebAuthn ceremony with this
	// challenge hash finished; it fails with ErrChallengeUsed if it already
	// had, on any replica. The record may be pruned after expires.
	ConsumeChallenge(ctx context.Context, hash []byte, expires time.Time) error
	// PeekInvitation returns a valid, unused invitation without consuming it.
	PeekInvitation(ctx context.Context, tokenHash []byte, now time.Time) (*Invitation, error)

	CreateSession(ctx context.Context, s *Session) error
	GetSession(ctx context.Context, id string) (*Session, error)
	ListSessions(ctx context.Context, userID string) ([]*Session, error)
	TouchSession(ctx context.Context, id string, at time.Time) error
	DeleteSession(ctx context.Context, id string) error

	// AddRevocation stores r and sets r.Seq.
	AddRevocation(ctx context.Context, r *Revocation) error
	// RevocationsSince returns revocations with Seq > seq, in order.
	RevocationsSince(ctx context.Context, seq int64) ([]*Revocation, error)

	PutKey(ctx context.Context, k *Key) error
	ListKeys(ctx context.Context, use string) ([]*Key, error)
	// DeleteKeys deletes the keys for use (which must not be empty) whose
	// NotAfter is set and before before, and returns how many it deleted.
	// Keys whose secrets must not outlive their use (TLS session ticket
	// keys: forward secrecy) are deleted this way; the others are kept.
	DeleteKeys(ctx context.Context, use string, before time.Time) (int64, error)

	Close() error
}
