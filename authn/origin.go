package authn

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/reqctx"
)

// originPattern is one allowed WebAuthn origin: a scheme, a host (or a
// domain under which exactly one more label may stand, for "*."), and the
// ports accepted.
type originPattern struct {
	scheme   string
	host     string
	wildcard bool
	ports    map[string]bool // "" is the scheme's default port
}

// originSet is the parsed webauthn.origins of the configuration, or its
// default (https on every route host; http on localhost route hosts when
// server.http_listen is set).
type originSet struct {
	rpID     string
	patterns []originPattern
}

func newOriginSet(cfg *config.Config) (*originSet, error) {
	o := &originSet{rpID: strings.ToLower(cfg.WebAuthn.RPID)}
	// Ports an origin without an explicit port may use: the default port of
	// its scheme and the ports sekisho itself listens on.
	ports := map[string]bool{"": true}
	for _, addr := range []string{cfg.Server.Listen, cfg.Server.HTTPListen} {
		if _, p, err := net.SplitHostPort(addr); err == nil && p != "" {
			ports[p] = true
		}
	}
	if cfg.Server.PublicPort > 0 {
		ports[strconv.Itoa(cfg.Server.PublicPort)] = true
	}
	if len(cfg.WebAuthn.Origins) == 0 {
		for _, r := range cfg.Routes {
			h := strings.ToLower(r.Host)
			if h == "" {
				continue
			}
			o.patterns = append(o.patterns, originPattern{scheme: "https", host: h, ports: ports})
			if cfg.Server.HTTPListen != "" && isLocalhost(h) {
				o.patterns = append(o.patterns, originPattern{scheme: "http", host: h, ports: ports})
			}
		}
		return o, nil
	}
	for _, raw := range cfg.WebAuthn.Origins {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("webauthn.origins %q: want scheme://host[:port]", raw)
		}
		p := originPattern{scheme: u.Scheme, host: strings.ToLower(u.Hostname()), ports: ports}
		if port := u.Port(); port != "" {
			p.ports = map[string]bool{port: true}
			if port == defaultPort(u.Scheme) {
				p.ports[""] = true
			}
		}
		if rest, ok := strings.CutPrefix(p.host, "*."); ok {
			p.host, p.wildcard = rest, true
		}
		if strings.Contains(p.host, "*") {
			return nil, fmt.Errorf("webauthn.origins %q: \"*\" may only stand for the first label", raw)
		}
		o.patterns = append(o.patterns, p)
	}
	return o, nil
}

func defaultPort(scheme string) string {
	if scheme == "http" {
		return "80"
	}
	return "443"
}

func isLocalhost(host string) bool {
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// allowed reports whether origin ("scheme://host[:port]") may run a
// ceremony: it matches a pattern and its host is the RP id or below it.
func (o *originSet) allowed(origin string) bool {
	scheme, hostport, ok := strings.Cut(origin, "://")
	if !ok {
		return false
	}
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	}
	if port == defaultPort(scheme) {
		port = ""
	}
	if host == "" || (host != o.rpID && !strings.HasSuffix(host, "."+o.rpID)) {
		return false
	}
	for _, p := range o.patterns {
		if p.scheme != scheme || !p.ports[port] {
			continue
		}
		if !p.wildcard && host == p.host {
			return true
		}
		if p.wildcard {
			label, rest, ok := strings.Cut(host, ".")
			if ok && label != "" && rest == p.host {
				return true
			}
		}
	}
	return false
}

// requestScheme is "https" when the client reached sekisho over TLS (as the
// proxy recorded it, or as this server saw it).
func requestScheme(r *http.Request) string {
	if info := reqctx.From(r.Context()); info != nil && info.TLS {
		return "https"
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// errOrigin is returned when a request's origin may not run a ceremony.
var errOrigin = errors.New("origin not allowed")

// ceremonyOrigin is the origin the browser will write into clientDataJSON
// for a page on this request's host. A present Origin header must agree.
func (s *Service) ceremonyOrigin(r *http.Request) (string, error) {
	origin := requestScheme(r) + "://" + strings.ToLower(r.Host)
	if h := r.Header.Get("Origin"); h != "" && !strings.EqualFold(h, origin) {
		return "", fmt.Errorf("%w: Origin header %q, request origin %q", errOrigin, h, origin)
	}
	if !s.origins.allowed(origin) {
		return "", fmt.Errorf("%w: %q", errOrigin, origin)
	}
	return origin, nil
}

// rpCache holds one relying party per allowed origin, so that each ceremony
// is bound to exactly the origin it began at.
type rpCache struct {
	cfg     *config.Config
	uv      protocol.UserVerificationRequirement
	timeout time.Duration

	mu  sync.Mutex
	rps map[string]*webauthn.WebAuthn
}

const maxCachedRPs = 256

func newRPCache(cfg *config.Config, uv string, timeout time.Duration) *rpCache {
	return &rpCache{cfg: cfg, uv: protocol.UserVerificationRequirement(uv), timeout: timeout, rps: map[string]*webauthn.WebAuthn{}}
}

// get returns the relying party for origin, which the caller has checked.
func (c *rpCache) get(origin string) (*webauthn.WebAuthn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rp, ok := c.rps[origin]; ok {
		return rp, nil
	}
	name := c.cfg.WebAuthn.RPName
	if name == "" {
		name = "sekisho"
	}
	required := true
	wc := &webauthn.Config{
		RPID:          c.cfg.WebAuthn.RPID,
		RPDisplayName: name,
		RPOrigins:     []string{origin},
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			RequireResidentKey: &required,
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			UserVerification:   c.uv,
		},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: c.timeout, TimeoutUVD: c.timeout},
			Registration: webauthn.TimeoutConfig{Timeout: c.timeout, TimeoutUVD: c.timeout},
		},
	}
	// New validates the configuration once; afterwards the instance is
	// only read, so it may be shared between requests.
	rp, err := webauthn.New(wc)
	if err != nil {
		return nil, fmt.Errorf("building relying party for %s: %w", origin, err)
	}
	if len(c.rps) < maxCachedRPs {
		c.rps[origin] = rp
	}
	return rp, nil
}
