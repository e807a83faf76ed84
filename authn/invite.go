package authn

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/reqctx"
	"github.com/sekisho/sekisho/store"
)

// DefaultInviteTTL is how long an invitation stays valid when no TTL is given.
const DefaultInviteTTL = 24 * time.Hour

// MaxInviteTTL bounds an invitation's lifetime.
const MaxInviteTTL = 30 * 24 * time.Hour

// Invite creates a one-time enrollment invitation for userID and returns its
// token. Only the token's SHA-256 is stored; the token is shown once.
// The creator is the signed-in user of ctx's request, if any.
func (s *Service) Invite(ctx context.Context, userID string, ttl time.Duration) (string, error) {
	by := "sekisho"
	if info := reqctx.From(ctx); info != nil && info.User != "" {
		by = info.User
	}
	token, err := CreateInvitation(ctx, s.st, userID, by, ttl, s.now())
	if err != nil {
		return "", err
	}
	s.emit(ctx, Event{Kind: EventInvite, User: userID, Reason: "by " + by})
	return token, nil
}

// CreateInvitation is [Service.Invite] without a running service, for the
// CLI: 32 random bytes (base64url), stored as their SHA-256, single use,
// expiring after ttl (DefaultInviteTTL when zero).
func CreateInvitation(ctx context.Context, st store.Store, userID, by string, ttl time.Duration, now time.Time) (string, error) {
	if ttl == 0 {
		ttl = DefaultInviteTTL
	}
	if ttl < 0 || ttl > MaxInviteTTL {
		return "", fmt.Errorf("invitation lifetime %s: want between 0 and %s", ttl, MaxInviteTTL)
	}
	u, err := st.GetUser(ctx, userID)
	if err != nil {
		return "", fmt.Errorf("inviting %s: %w", userID, err)
	}
	if u.Disabled {
		return "", fmt.Errorf("inviting %s: %w", userID, ErrUserDisabled)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("making invitation token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	inv := &store.Invitation{TokenHash: tokenHash(token), UserID: userID, CreatedBy: by, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := st.CreateInvitation(ctx, inv); err != nil {
		return "", fmt.Errorf("storing invitation for %s: %w", userID, err)
	}
	return token, nil
}

// EnrollURL is the one-time URL a user opens to register a passkey:
// https://HOST:PORT/.sekisho/enroll?token=T, where HOST is host or the first
// route's host and PORT is server.public_port or server.listen's port
// (left out when 443). When server.http_listen is set and HOST is localhost
// or below .localhost (a secure context for WebAuthn without TLS), the
// plain-HTTP URL is given instead.
func EnrollURL(cfg *config.Config, host, token string) (string, error) {
	if host == "" {
		for _, r := range cfg.Routes {
			if r.Host != "" {
				host = r.Host
				break
			}
		}
	}
	if host == "" {
		return "", fmt.Errorf("no host for the enrollment URL: give one or configure a route")
	}
	host = strings.ToLower(host)
	scheme, addr := "https", cfg.Server.Listen
	if addr == "" {
		addr = ":8443"
	}
	if cfg.Server.HTTPListen != "" && isLocalhost(host) {
		scheme, addr = "http", cfg.Server.HTTPListen
	}
	port := ""
	if _, p, err := net.SplitHostPort(addr); err == nil {
		port = p
	}
	if scheme == "https" && cfg.Server.PublicPort > 0 {
		port = strconv.Itoa(cfg.Server.PublicPort)
	}
	if port == defaultPort(scheme) {
		port = ""
	}
	hostport := host
	if port != "" {
		hostport = net.JoinHostPort(host, port)
	}
	u := url.URL{Scheme: scheme, Host: hostport, Path: PathEnroll, RawQuery: "token=" + url.QueryEscape(token)}
	return u.String(), nil
}
