package proxy

import (
	"context"
	"crypto/x509"
	"net/http"
	"time"

	"github.com/sekisho/sekisho/reqctx"
)

// The gateway meets the other packages through these small interfaces, so
// that each can be built and tested on its own; the adapters that bind them
// to authn, policy and audit are in adapters.go.

// Authenticator identifies the person behind a request (package authn).
type Authenticator interface {
	// Handler serves sekisho's own endpoints under /.sekisho/ and
	// /.well-known/sekisho/.
	Handler() http.Handler
	// Authenticate verifies the request's session and fills the identity
	// fields of info. It returns ErrNoSession when there is none, another
	// error when the session is refused. It may set a refreshed cookie on w.
	Authenticate(w http.ResponseWriter, r *http.Request, info *reqctx.Info) error
	// RequireLogin answers a request that needs a session: a redirect to
	// the login page for browsers, 401 for APIs.
	RequireLogin(w http.ResponseWriter, r *http.Request)
	// RequireStepUp sends the user to re-authenticate.
	RequireStepUp(w http.ResponseWriter, r *http.Request, reasons []string)
	// Assertion signs the identity assertion for the upstream.
	Assertion(info *reqctx.Info) (string, error)
	// CookieName is the session cookie, removed before forwarding.
	CookieName() string
}

// DeviceVerifier verifies client certificates (package authn/mtls).
type DeviceVerifier interface {
	// Verify checks a presented chain (leaf first) and returns the device
	// id, the leaf fingerprint and the user bound in the certificate.
	Verify(chain []*x509.Certificate) (device, fingerprint, user string, err error)
	// Reason gives safe words for a refusal, Japanese and English.
	Reason(err error) (ja, en string)
	// Code names a refusal for the audit record ("device_revoked",
	// "device_cert_expired"…).
	Code(err error) string
}

// ReasonError lets an Authenticator name the audit reason of a refused
// session ("session_revoked", "user_disabled"…), so that monitoring can
// tell a revoked user still trying from a plain login prompt.
type ReasonError struct {
	Reason string
	Err    error
}

func (e *ReasonError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *ReasonError) Unwrap() error { return e.Err }

// Decider decides a request (package policy).
type Decider interface {
	Decide(ctx context.Context, info *reqctx.Info, now time.Time) Verdict
}

// Verdict is the decision as the gateway needs it.
type Verdict struct {
	// Effect is "allow", "deny" or "stepup".
	Effect string
	// Rule is the deciding rule ("policy.csv:12", "default-deny").
	Rule string
	// Reasons are reason codes for the audit record.
	Reasons []string
	// Messages are safe words for the person, in the page's language order
	// (Japanese, then English).
	MessagesJA, MessagesEN []string
	// Enforced is false in shadow mode: the decision is recorded, the
	// request forwarded.
	Enforced bool
	// AuditSync: forward only once the decision record is durable.
	AuditSync bool
}

// Recorder writes audit records (package audit).
type Recorder interface {
	// Record appends e; with durable it returns only once e is on disk.
	Record(ctx context.Context, e *Entry, durable bool) error
	// Healthy reports whether the trail can be written.
	Healthy() error
}

// Entry is one audit record as the gateway knows it.
type Entry struct {
	Info     *reqctx.Info
	Time     time.Time
	Event    string // access, authn, admin, system
	Decision string // allow, deny, stepup, error
	Enforced bool
	Rule     string
	Reasons  []string
	Status   int
	Bytes    int64
	Duration time.Duration
}
