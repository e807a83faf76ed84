package proxy

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/sekisho/sekisho/reqctx"
)

//go:embed templates/*.html
var templateFS embed.FS

var pageTmpl = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// pageMessage is what a person may read about a refusal, in both languages.
// Internal details never go here; they go to the log and the audit trail.
type pageMessage struct {
	ja, en []string
}

var (
	msgBadRequest = pageMessage{
		ja: []string{"要求の形式が正しくありません。URLを確認してください。"},
		en: []string{"The request was malformed. Please check the URL."},
	}
	msgNotFound = pageMessage{
		ja: []string{"このアドレスに対応するシステムはありません。"},
		en: []string{"No system is configured at this address."},
	}
	msgForbidden = pageMessage{
		ja: []string{"この操作は許可されていません。"},
		en: []string{"This action is not allowed."},
	}
	msgBadGateway = pageMessage{
		ja: []string{"接続先のシステムが応答しません。しばらくしてから再度お試しください。"},
		en: []string{"The internal system is not responding. Please try again later."},
	}
	msgGatewayTimeout = pageMessage{
		ja: []string{"接続先のシステムの応答が時間内にありませんでした。"},
		en: []string{"The internal system did not answer in time."},
	}
	msgAuditDown = pageMessage{
		ja: []string{"監査記録を保存できないため、この機密性分類のシステムへの接続を一時的に停止しています。情報政策課に連絡してください。"},
		en: []string{"The audit trail cannot be written, so access to systems of this class is suspended. Please contact the IT department."},
	}
	msgUnavailable = pageMessage{
		ja: []string{"現在このシステムを利用できません。"},
		en: []string{"This system is not available now."},
	}
)

func messageFor(status int) pageMessage {
	switch status {
	case http.StatusBadRequest:
		return msgBadRequest
	case http.StatusNotFound:
		return msgNotFound
	case http.StatusForbidden:
		return msgForbidden
	case http.StatusBadGateway:
		return msgBadGateway
	case http.StatusGatewayTimeout:
		return msgGatewayTimeout
	}
	return msgUnavailable
}

// wantsEnglish reports whether the client prefers English to Japanese.
func wantsEnglish(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "ja"):
			return false
		case strings.HasPrefix(tag, "en"):
			return true
		}
	}
	return false
}

// wantsHTML reports whether the client is a browser rather than an API.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

type pageData struct {
	Lang      string
	Title     string
	Status    int
	Messages  []string
	RequestID string
	Route     string
	Labels    map[string]string
}

// setPageSecurityHeaders sets the headers every page of sekisho's own carries.
func setPageSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// errorPage answers status with a Japanese page (English by
// Accept-Language), or JSON for API clients; both carry the request id.
func (g *Gateway) errorPage(w http.ResponseWriter, r *http.Request, info *reqctx.Info, status int, m pageMessage) {
	if len(m.ja) == 0 {
		m.ja = messageFor(status).ja
	}
	if len(m.en) == 0 {
		m.en = messageFor(status).en
	}
	h := w.Header()
	setPageSecurityHeaders(h)
	en := wantsEnglish(r)
	msgs := m.ja
	if en {
		msgs = m.en
	}
	// Rendered first, so that the answer carries its Content-Length: a
	// keep-alive connection refused this way can then be parked
	// (park.go), and a template error cannot cut a page short.
	var body bytes.Buffer
	if !wantsHTML(r) {
		h.Set("Content-Type", "application/json; charset=utf-8")
		_ = jsonEncode(&body, map[string]any{"status": status, "messages": msgs, "request_id": info.RequestID})
		writeSized(w, status, body.Bytes())
		return
	}
	d := pageData{Lang: "ja", Status: status, Messages: msgs, RequestID: info.RequestID, Route: info.Route}
	d.Labels = map[string]string{"title": "アクセスできません", "reqid": "要求ID", "help": "お問い合わせの際は、この要求IDをお知らせください。"}
	if en {
		d.Lang = "en"
		d.Labels = map[string]string{"title": "Access refused", "reqid": "Request ID", "help": "Please quote this request ID when you contact the IT department."}
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.ExecuteTemplate(&body, "error.html", d); err != nil {
		g.log.Error("rendering the error page", "request_id", info.RequestID, "err", err)
	}
	writeSized(w, status, body.Bytes())
}

// writeSized writes a whole answer with its Content-Length.
func writeSized(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
