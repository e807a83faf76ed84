package authn

import (
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/sekisho/sekisho/internal/word"
)

// cookieValue returns the value of the first cookie called name in h's
// Cookie lines, as (*http.Request).Cookie does: the same splitting,
// trimming, name check, quote stripping and value check, and no cookie at
// all when the lines hold more than net/http's default limit of cookies
// (3000; the GODEBUG setting httpcookiemaxnum is not consulted). It
// allocates nothing: Cookie builds a *Cookie for every cookie of that
// name, and checks the value a byte at a time with several comparisons,
// which on the session cookie (several hundred bytes) is a measurable part
// of a proxied request (FuzzCookieValue holds the two together).
func cookieValue(h http.Header, name string) (string, bool) {
	lines := h["Cookie"]
	if len(lines) == 0 || name == "" {
		return "", false
	}
	count := 0
	for _, line := range lines {
		count += strings.Count(line, ";") + 1
	}
	if count > maxCookies {
		return "", false
	}
	for _, line := range lines {
		line = textproto.TrimString(line)
		var part string
		for len(line) > 0 {
			part, line, _ = strings.Cut(line, ";")
			part = textproto.TrimString(part)
			if part == "" {
				continue
			}
			n, v, _ := strings.Cut(part, "=")
			n = textproto.TrimString(n)
			if n != name || !httpguts.ValidHeaderFieldName(n) {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validCookieValue(v) {
				return v, true
			}
		}
	}
	return "", false
}

// maxCookies is net/http's default limit of cookies in a request.
const maxCookies = 3000

// validCookieValue is net/http's check of a cookie value's bytes: 0x20 to
// 0x7e, except '"', ';' and '\'.
func validCookieValue(v string) bool {
	i := 0
	// Eight bytes at a time while none needs a second look: a session
	// cookie is several hundred bytes, on every request.
	for ; i+8 <= len(v) && plainCookieWord(word.Load64(v, i)); i += 8 {
	}
	for ; i < len(v); i++ {
		if !cookieValueBytes[v[i]] {
			return false
		}
	}
	return true
}

// plainCookieWord reports whether all 8 bytes of x are valid cookie value
// bytes: none below 0x20, none from 0x7f up, none of '"', ';' and '\\'.
// Every such byte sets the high bit of some lane of one of the terms
// (x-0x20 for a byte below 0x20, x+1 for 0x7f, x for 0x80 up, and
// (x^c)-1 for a byte equal to c; a borrow or carry crosses a lane only
// out of a byte that is itself refused), and no valid byte does: false
// means only "look byte by byte", true is exact.
func plainCookieWord(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	return ((x-0x20*ones)|(x+ones)|x|((x^'"'*ones)-ones)|((x^';'*ones)-ones)|((x^'\\'*ones)-ones))&highs == 0
}

var cookieValueBytes = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != ';' && c != '\\'
	}
	return t
}()
