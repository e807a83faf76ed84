package admin

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/sekisho/sekisho/reqctx"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// staticHandler serves /static/… (the console's stylesheet) from the binary.
func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, ".")
	return http.FileServerFS(sub)
}

type pageTemplate struct{ t *template.Template }

// pageNames are the page templates; each defines "content" inside the
// shared "layout".
var pageNames = []string{"error", "overview", "audit", "timeline", "users", "user", "invited", "devices",
	"revoke", "confirm", "revoked", "policy"}

func parsePages(c *Console) (map[string]*pageTemplate, error) {
	funcs := template.FuncMap{
		"time":    func(t time.Time) string { return c.fmtTime(t) },
		"join":    func(s []string, sep string) string { return strings.Join(s, sep) },
		"pct":     func(n, d int) string { return pct(n, d) },
		"add":     func(a, b int) int { return a + b },
		"hex":     func(b []byte) string { return fmt.Sprintf("%x", b) },
		"ago":     func(t time.Time) string { return c.ago(t) },
		"urlq":    url.QueryEscape,
		"contain": func(list []string, s string) bool { return slices.Contains(list, s) },
		"list":    func(s ...string) []string { return s },
		"alert":   alertOf,
		// withPager gives the "pager" template the page (for T) and a pager.
		"withPager": func(p *page, pg pager) any {
			return struct {
				*page
				P pager
			}{p, pg}
		},
	}
	base, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parsing layout: %w", err)
	}
	out := map[string]*pageTemplate{}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parsing page %s: %w", name, err)
		}
		out[name] = &pageTemplate{t: t}
	}
	return out, nil
}

// page is what every template gets: the language, the acting admin, the
// form token and the page's own data in Data.
type page struct {
	Lang   string
	Title  string
	Nav    string
	Actor  string
	CSRF   string
	Flash  string
	Error  string
	Prefix string
	Now    time.Time
	Zone   string // the display time zone's name
	Data   any
}

// T translates a message key into the page's language; args fill %s/%d verbs.
func (p *page) T(key string, args ...any) string { return tr(p.Lang, key, args...) }

func (c *Console) newPage(r *http.Request, nav, titleKey string) *page {
	p := &page{Lang: c.lang(r), Nav: nav, Prefix: Prefix, Now: c.now(), Zone: c.loc.String()}
	if info := reqctx.From(r.Context()); info != nil {
		p.Actor = info.User
		p.CSRF = c.csrfToken(info.SessionID)
	}
	if titleKey != "" {
		p.Title = p.T(titleKey)
	}
	if done := r.URL.Query().Get("done"); done != "" && hasMessage("done."+done) {
		p.Flash = p.T("done." + done)
	}
	return p
}

var langMatcherJA = language.NewMatcher([]language.Tag{language.Japanese, language.English})
var langMatcherEN = language.NewMatcher([]language.Tag{language.English, language.Japanese})

// lang is "en" when Accept-Language prefers English over Japanese, "ja"
// when it prefers Japanese, else the configured default.
func (c *Console) lang(r *http.Request) string {
	al := r.Header.Get("Accept-Language")
	if al == "" {
		return c.defLang
	}
	tags, _, err := language.ParseAcceptLanguage(al)
	if err != nil || len(tags) == 0 {
		return c.defLang
	}
	m := langMatcherJA
	if c.defLang == "en" {
		m = langMatcherEN
	}
	_, idx, conf := m.Match(tags...)
	if conf == language.No {
		return c.defLang
	}
	if (c.defLang == "ja") == (idx == 0) {
		return "ja"
	}
	return "en"
}

func (c *Console) fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(c.loc).Format("2006-01-02 15:04:05")
}

func (c *Console) ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := c.now().Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String()
}

func pct(n, d int) string {
	if d == 0 {
		return "—"
	}
	return strconv.FormatFloat(float64(n)*100/float64(d), 'f', 1, 64) + "%"
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// redirect answers a form post with 303 to a page, with a done message.
func redirect(w http.ResponseWriter, r *http.Request, path string, q url.Values, done string) {
	if q == nil {
		q = url.Values{}
	}
	if done != "" {
		q.Set("done", done)
	}
	u := Prefix + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}
