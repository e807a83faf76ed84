package authn

import (
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/sekisho/sekisho/reqctx"
)

// Reasons a ceremony or form was refused, as given in [Event].Reason and the
// log. Tests assert them.
const (
	ReasonBadRequest        = "bad_request"
	ReasonCeremony          = "ceremony_expired"
	ReasonReplay            = "replay"
	ReasonUnavailable       = "store_unavailable"
	ReasonOrigin            = "origin"
	ReasonChallenge         = "challenge"
	ReasonRPID              = "rp_id"
	ReasonUVRequired        = "uv_required"
	ReasonUPRequired        = "up_required"
	ReasonSignature         = "signature"
	ReasonVerification      = "verification"
	ReasonUnknownCredential = "unknown_credential"
	ReasonDisabled          = "user_disabled"
	ReasonCloneWarning      = "clone_warning"
	ReasonCounterRegression = "counter_regression"
	ReasonRateLimited       = "rate_limited"
	ReasonInvitation        = "invitation"
	ReasonAAGUID            = "aaguid_not_allowed"
	ReasonBackupEligible    = "backup_eligible"
	ReasonExists            = "already_registered"
)

// maxCeremonyBody bounds a ceremony request body. A PublicKeyCredential
// with a large attestation certificate chain stays well below it.
const maxCeremonyBody = 64 << 10

// ceremony wraps a JSON ceremony endpoint: same-origin only, JSON only,
// rate limited per address, bounded body.
func (s *Service) ceremony(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.cop.Check(r); err != nil {
			s.fail(w, r, &httpError{Code: http.StatusForbidden, Key: "err_cross_origin", Err: err})
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			s.fail(w, r, &httpError{Code: http.StatusUnsupportedMediaType, Key: "err_content_type", Err: errors.New("content type is not application/json")})
			return
		}
		if !s.limits.allowIP(clientIP(r), s.now()) {
			s.metrics.limited.WithLabelValues("ip").Inc()
			s.fail(w, r, rateLimited("address "+clientIP(r)))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxCeremonyBody)
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	}
}

func rateLimited(what string) *httpError {
	return &httpError{Code: http.StatusTooManyRequests, Key: "err_rate_limited", Reason: ReasonRateLimited,
		RetryAfter: 60, Err: errors.New("rate limit exceeded for " + what)}
}

// readBody reads a ceremony body already bounded by ceremony.
func readBody(r *http.Request) ([]byte, *httpError) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, &httpError{Code: http.StatusBadRequest, Key: "err_bad_request", Reason: ReasonBadRequest, Err: err}
	}
	return b, nil
}

// clientIP is the address the proxy determined, or the peer's.
func clientIP(r *http.Request) string {
	if info := reqctx.From(r.Context()); info != nil && info.IP.IsValid() {
		return info.IP.String()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// classify names what a go-webauthn verification error was about.
func classify(err error) string {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return ReasonVerification
	}
	switch {
	case strings.Contains(pe.Details, "origin"):
		return ReasonOrigin
	case strings.Contains(pe.Details, "challenge"):
		return ReasonChallenge
	case strings.Contains(pe.DevInfo, "RP Hash mismatch"):
		return ReasonRPID
	case strings.Contains(pe.DevInfo, "User verification required"):
		return ReasonUVRequired
	case strings.Contains(pe.DevInfo, "User presence required"):
		return ReasonUPRequired
	case pe.Type == protocol.ErrAssertionSignature.Type:
		return ReasonSignature
	case pe.Type == protocol.ErrBadRequest.Type || pe.Type == protocol.ErrParsingData.Type:
		return ReasonBadRequest
	}
	return ReasonVerification
}

// errKey is the client text for a failed verification.
func errKey(reason, fallback string) string {
	switch reason {
	case ReasonUVRequired:
		return "err_uv_required"
	case ReasonOrigin:
		return "err_origin"
	case ReasonBadRequest:
		return "err_bad_request"
	}
	return fallback
}

// form wraps a POST form of a signed-in user: same-origin, a CSRF token
// bound to the session, a bounded body.
func (s *Service) form(h func(http.ResponseWriter, *http.Request, *Identity) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.cop.Check(r); err != nil {
			s.fail(w, r, &httpError{Code: http.StatusForbidden, Key: "err_cross_origin", Err: err})
			return
		}
		id, err := s.Identify(r)
		if err != nil {
			s.fail(w, r, &httpError{Code: http.StatusUnauthorized, Key: "err_login_required", Err: err, Redirect: PathLogin})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			s.fail(w, r, &httpError{Code: http.StatusBadRequest, Key: "err_bad_request", Err: err})
			return
		}
		if !s.seal.csrfOK(id.SessionID, r.PostForm.Get("csrf")) {
			s.fail(w, r, &httpError{Code: http.StatusForbidden, Key: "err_csrf", Err: errors.New("missing or wrong CSRF token"), Redirect: PathAccount})
			return
		}
		if err := h(w, r, id); err != nil {
			s.fail(w, r, err)
		}
	}
}
