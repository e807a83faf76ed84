package authn

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzCookieValue holds cookieValue to (*http.Request).Cookie.
func FuzzCookieValue(f *testing.F) {
	for _, s := range []string{
		"__Host-sekisho=eyJ.eyJ.sig",
		"a=b; __Host-sekisho=x; __Host-sekisho=y",
		` __Host-sekisho = "quoted" ;c=d`,
		"__Host-sekisho=bad\\value; __Host-sekisho=good",
		"__Host-sekisho=\"\"; x",
		"__Host-sekisho=a;b=c\x7f",
		"__Host-sekisho=" + strings.Repeat("a;", 3001),
		"",
	} {
		f.Add(s, "__Host-sekisho")
	}
	f.Fuzz(func(t *testing.T, line, name string) {
		for _, lines := range [][]string{{line}, {line, "__Host-sekisho=second"}, strings.Split(line, "\n")} {
			r := &http.Request{Header: http.Header{"Cookie": lines}}
			got, ok := cookieValue(r.Header, name)
			c, err := r.Cookie(name)
			if (err == nil) != ok || ok && c.Value != got {
				t.Fatalf("lines %q, name %q: cookieValue = %q, %t; Cookie = %v, %v", lines, name, got, ok, c, err)
			}
		}
	})
}
