// Package sampleapp is a small internal web system of the kind that sits
// behind sekisho (a 財務会計 or 住民記録 system), written to be copied by
// application vendors. It shows the one thing an upstream must do with
// sekisho's identity: verify the X-Sekisho-Assertion JWT against the
// gateway's JWKS (signature, issuer, audience = this route, expiry) and
// trust nothing else — not the convenience headers, not the client.
//
// # Verifying the assertion
//
// The gateway publishes its assertion keys at
// /.well-known/sekisho/jwks.json on every routed host. [New] fetches them
// with a refreshing cache (github.com/lestrrat-go/jwx/v2/jwk), so key
// rotation needs no restart, and rejects requests whose assertion does not
// verify with 401.
package sampleapp

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

//go:embed page.html
var pageFS embed.FS

var page = template.Must(template.ParseFS(pageFS, "page.html"))

// Options describe one sample app.
type Options struct {
	// Title is shown on the page ("財務会計システム").
	Title string
	// Audience is the route name this app is published as; assertions for
	// other routes are refused.
	Audience string
	// JWKSURL is the gateway's key set URL.
	JWKSURL string
	// Issuer, if set, must match the assertion's iss.
	Issuer string
	// Client fetches the JWKS. Default http.DefaultClient.
	Client *http.Client
}

// Identity is what a verified assertion says.
type Identity struct {
	User, Device, Class, Zone string
	Roles, AMR                []string
	Expires                   time.Time
}

// App is the sample internal system.
type App struct {
	opts  Options
	cache *jwk.Cache
}

// New returns the app. The key set is fetched on first use and refreshed
// in the background; ctx bounds that refresher.
func New(ctx context.Context, opts Options) (*App, error) {
	if opts.JWKSURL == "" || opts.Audience == "" {
		return nil, errors.New("sampleapp: JWKSURL and Audience are required")
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	c := jwk.NewCache(ctx)
	if err := c.Register(opts.JWKSURL, jwk.WithHTTPClient(opts.Client), jwk.WithMinRefreshInterval(time.Minute)); err != nil {
		return nil, fmt.Errorf("sampleapp: registering %s: %w", opts.JWKSURL, err)
	}
	return &App{opts: opts, cache: c}, nil
}

// Verify checks the request's assertion and returns who it names.
func (a *App) Verify(r *http.Request) (*Identity, error) {
	raw := r.Header.Get("X-Sekisho-Assertion")
	if raw == "" {
		return nil, errors.New("no X-Sekisho-Assertion header")
	}
	set, err := a.cache.Get(r.Context(), a.opts.JWKSURL)
	if err != nil {
		return nil, fmt.Errorf("fetching gateway keys: %w", err)
	}
	vopts := []jwt.ParseOption{jwt.WithKeySet(set), jwt.WithValidate(true), jwt.WithAudience(a.opts.Audience), jwt.WithAcceptableSkew(5 * time.Second)}
	if a.opts.Issuer != "" {
		vopts = append(vopts, jwt.WithIssuer(a.opts.Issuer))
	}
	tok, err := jwt.Parse([]byte(raw), vopts...)
	if err != nil {
		// A key may have been rotated since the last fetch: refresh once.
		if _, rerr := a.cache.Refresh(r.Context(), a.opts.JWKSURL); rerr == nil {
			set, _ = a.cache.Get(r.Context(), a.opts.JWKSURL)
			vopts[0] = jwt.WithKeySet(set)
			tok, err = jwt.Parse([]byte(raw), vopts...)
		}
		if err != nil {
			return nil, fmt.Errorf("verifying assertion: %w", err)
		}
	}
	id := &Identity{User: tok.Subject(), Expires: tok.Expiration()}
	id.Device, _ = claimString(tok, "device")
	id.Class, _ = claimString(tok, "class")
	id.Zone, _ = claimString(tok, "zone")
	id.Roles = claimStrings(tok, "roles")
	id.AMR = claimStrings(tok, "amr")
	return id, nil
}

func claimString(t jwt.Token, name string) (string, bool) {
	v, ok := t.Get(name)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

func claimStrings(t jwt.Token, name string) []string {
	v, ok := t.Get(name)
	if !ok {
		return nil
	}
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// ServeHTTP shows who is signed in, or 401 when the request did not come
// through sekisho with a valid assertion.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	id, err := a.Verify(r)
	data := map[string]any{"Title": a.opts.Title, "Path": r.URL.Path, "Err": "", "ID": id,
		"Roles": "", "AMR": "", "RequestID": r.Header.Get("X-Request-Id")}
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		data["Err"] = err.Error()
	} else {
		data["Roles"] = strings.Join(id.Roles, ", ")
		data["AMR"] = strings.Join(id.AMR, ", ")
	}
	_ = page.Execute(w, data)
}
