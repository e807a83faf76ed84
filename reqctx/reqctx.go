// Package reqctx carries what sekisho knows about one request — who, on
// which device, from which zone, to which route and asset class — from the
// enforcement point in package proxy to the packages that decide, record and
// serve it (policy, audit, authn). It is a leaf: it imports nothing of
// sekisho, so every package can read it without import cycles.
//
// The proxy fills an [Info] as it learns things (source and zone first, then
// the device certificate, the route, the session) and stores it in the
// request's context with [With]; handlers read it with [From].
package reqctx

import (
	"context"
	"net/netip"
	"time"
)

// Info is the request context. Fields are filled in request-flow order; a
// zero value means "not known (yet)". Only the proxy writes it.
type Info struct {
	// RequestID is unique per request, sent upstream as X-Request-Id and
	// shown on error pages.
	RequestID string
	Received  time.Time

	// IP is the client address (X-Forwarded-For is believed only from
	// trusted proxies). Zone is the name of the first configured zone that
	// contains IP, or "external".
	IP   netip.Addr
	Zone string
	TLS  bool
	// ipText is IP as text when SetIP was given it, for ipFor.
	ipText string
	ipFor  netip.Addr

	// Host (no port), Method, normalised Path and raw query as received.
	Host     string
	Method   string
	Path     string
	RawQuery string

	// Device identity from a verified client certificate. CertError is the
	// reason a presented certificate was refused ("" if none presented or valid).
	Device    string
	CertFP    string // hex SHA-256 of the leaf DER
	CertUser  string // user bound in the certificate, if any
	CertError string

	// Route facts, once the route is known.
	Route   string
	Class   string
	Segment string
	Action  string // read, write, export, admin
	Mode    string // enforce, shadow

	// Identity, once a session was verified.
	User       string
	Roles      []string
	Department string
	AMR        []string
	AuthTime   time.Time
	SessionID  string
	// Identity is the authenticator's own value for the session, opaque to
	// every other package (the proxy hands it back to sign the assertion).
	Identity any
}

// SetIP sets IP together with its text form (IP.String()), which the
// proxy has at hand without formatting the address again.
func (i *Info) SetIP(ip netip.Addr, text string) {
	i.IP, i.ipText, i.ipFor = ip, text, ip
}

// IPString is IP.String(), without formatting it again when SetIP gave
// the text for the current IP.
func (i *Info) IPString() string {
	if i.ipText != "" && i.ipFor == i.IP {
		return i.ipText
	}
	return i.IP.String()
}

type key struct{}

// With returns a context carrying info.
func With(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, key{}, info)
}

// Context is a context carrying its own Info, for a caller that allocates
// the two together (the gateway does, once per request): set Context to
// the parent, fill Info, and pass a pointer to the Context on. [From]
// returns a pointer to its Info.
type Context struct {
	context.Context
	Info Info
}

// Value returns the carried Info for [From]'s key and asks the parent
// for anything else.
func (c *Context) Value(k any) any {
	if _, ok := k.(key); ok {
		return &c.Info
	}
	return c.Context.Value(k)
}

func (c *Context) String() string { return "reqctx.Context" }

// From returns the request's Info, or nil outside the gateway.
func From(ctx context.Context) *Info {
	info, _ := ctx.Value(key{}).(*Info)
	return info
}

// hooker is h1transport.Hooker's method set (a context that runs one
// cancel function without context.AfterFunc's allocations).
type hooker interface {
	Hook(f func()) bool
	Unhook() bool
}

// Hook passes a round trip's cancel hook on to the parent when the parent
// takes one (the gateway's fast path gives every request such a context),
// and reports false otherwise, so that wrapping the request's context in
// a Context does not cost the hook.
func (c *Context) Hook(f func()) bool {
	h, ok := c.Context.(hooker)
	return ok && h.Hook(f)
}

// Unhook removes the hook Hook set; true when there was none.
func (c *Context) Unhook() bool {
	if h, ok := c.Context.(hooker); ok {
		return h.Unhook()
	}
	return true
}

// AfterFunc lets contexts derived from a Context, and context.AfterFunc,
// follow the parent's end without a goroutine of their own when the
// parent is not one of the standard library's cancelable contexts (which
// they find through Value without this).
func (c *Context) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.Context, f)
}
