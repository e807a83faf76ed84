package authn

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/text/language"

	"github.com/sekisho/sekisho/reqctx"
)

//go:embed web/templates/*.html web/static/*
var webFS embed.FS

// contentSecurityPolicy allows only sekisho's own script and style: no
// inline script, no CDN, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders sets the headers every answer of the handler carries.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		// Enrollment URLs carry a token: never leak it in a Referer.
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, PathStatic) {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

func staticHandler() http.Handler {
	sub, err := fs.Sub(webFS, "web/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fsrv := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// pages holds the parsed templates.
type pages struct {
	defaultLang string
	rpName      string
	t           map[string]*template.Template
	matcher     language.Matcher
}

var pageNames = []string{"login", "enroll", "account", "message"}

func newPages(defaultLang, rpName string) (*pages, error) {
	if defaultLang == "" {
		defaultLang = "ja"
	}
	if defaultLang != "ja" && defaultLang != "en" {
		return nil, fmt.Errorf("server.language %q: want ja or en", defaultLang)
	}
	p := &pages{defaultLang: defaultLang, rpName: rpName, t: map[string]*template.Template{}}
	tags := []language.Tag{language.Japanese, language.English}
	if defaultLang == "en" {
		tags = []language.Tag{language.English, language.Japanese}
	}
	p.matcher = language.NewMatcher(tags)
	layout, err := template.ParseFS(webFS, "web/templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parsing layout template: %w", err)
	}
	for _, name := range pageNames {
		t, err := template.Must(layout.Clone()).ParseFS(webFS, "web/templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parsing %s template: %w", name, err)
		}
		p.t[name] = t
	}
	return p, nil
}

// lang picks "ja" or "en" for r: English only when the client prefers it.
func (p *pages) lang(r *http.Request) string {
	al := r.Header.Get("Accept-Language")
	if al == "" {
		return p.defaultLang
	}
	tags, _, err := language.ParseAcceptLanguage(al)
	if err != nil || len(tags) == 0 {
		return p.defaultLang
	}
	tag, _, conf := p.matcher.Match(tags...)
	if conf == language.No {
		return p.defaultLang
	}
	if base, _ := tag.Base(); base.String() == "en" {
		return "en"
	}
	return "ja"
}

// pageData is what every template receives.
type pageData struct {
	Lang  string
	Title string
	// Org is the relying party name shown in the header ("○○市 アクセスゲートウェイ").
	Org       string
	RequestID string
	// Page-specific values.
	Data any
}

// T translates a message key into the page's language.
func (d *pageData) T(key string) string { return translate(d.Lang, key) }

// Other is the other language's text of key, shown alongside on pages
// that staff may meet before they choose a language (errors).
func (d *pageData) Other(key string) string {
	if d.Lang == "ja" {
		return translate("en", key)
	}
	return translate("ja", key)
}

func (s *Service) render(w http.ResponseWriter, r *http.Request, code int, name, titleKey string, data any) {
	lang := s.pages.lang(r)
	d := &pageData{Lang: lang, Title: translate(lang, titleKey), Org: s.pages.rpName, Data: data}
	if d.Org == "" {
		d.Org = translate(lang, "gateway")
	}
	if info := reqctx.From(r.Context()); info != nil {
		d.RequestID = info.RequestID
	}
	var buf bytes.Buffer
	if err := s.pages.t[name].ExecuteTemplate(&buf, "layout", d); err != nil {
		s.log.ErrorContext(r.Context(), "rendering page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", lang)
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// httpError is a refusal with two texts: Key names what the client sees
// (translated), Err is what the log keeps.
type httpError struct {
	Code int
	Key  string
	Err  error
	// Reason is the Event reason for a failed ceremony, if any.
	Reason string
	// RetryAfter, in seconds, for 429.
	RetryAfter int
	// Redirect, for a client that should go elsewhere (step-up).
	Redirect string
}

func (e *httpError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.Key
}

func (e *httpError) Unwrap() error { return e.Err }

// wantsJSON reports whether r is a script's call rather than a page load.
func wantsJSON(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/.sekisho/webauthn/") || r.URL.Path == PathMe {
		return true
	}
	return !acceptsHTML(r)
}

func acceptsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// fail answers err: JSON for scripts and APIs, a page for browsers.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = &httpError{Code: http.StatusInternalServerError, Key: "err_internal", Err: err}
	}
	level := slog.LevelInfo
	if he.Code >= 500 {
		level = slog.LevelError
	}
	attrs := []any{"status", he.Code, "key", he.Key, "path", r.URL.Path, "err", he.Err}
	if info := reqctx.From(r.Context()); info != nil {
		attrs = append(attrs, "request_id", info.RequestID, "ip", info.IP.String())
	}
	s.log.Log(r.Context(), level, "authn refused", attrs...)
	if he.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(he.RetryAfter))
	}
	lang := s.pages.lang(r)
	if wantsJSON(r) {
		body := map[string]string{"error": strings.TrimPrefix(he.Key, "err_"), "message": translate(lang, he.Key)}
		if he.Redirect != "" {
			body["redirect"] = he.Redirect
		}
		writeJSON(w, he.Code, body)
		return
	}
	s.render(w, r, he.Code, "message", "title_error", messageData{Key: he.Key, Link: he.Redirect})
}

type messageData struct {
	Key  string
	Link string
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
