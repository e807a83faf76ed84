package authn

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/internal/word"
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

// TestPlainCookieWord: the word test agrees with the byte table for every
// byte value in every lane of an otherwise valid word, and for pairs of
// bad bytes (borrows between lanes).
func TestPlainCookieWord(t *testing.T) {
	base := []byte("abcdefgh")
	for lane := range 8 {
		for b := range 256 {
			w := append([]byte(nil), base...)
			w[lane] = byte(b)
			if got, want := plainCookieWord(word.Load64(string(w), 0)), cookieValueBytes[b]; got != want {
				t.Fatalf("byte %#x in lane %d: word test %v, table %v", b, lane, got, want)
			}
			if got := validCookieValue(string(w) + "ijklmnop"); got != cookieValueBytes[b] {
				t.Fatalf("validCookieValue with byte %#x in lane %d: %v", b, lane, got)
			}
		}
	}
	for b1 := range 256 {
		for b2 := range 256 {
			w := []byte{'a', byte(b1), byte(b2), 'b', 'c', 'd', 'e', 'f'}
			want := cookieValueBytes[b1] && cookieValueBytes[b2]
			if got := plainCookieWord(word.Load64(string(w), 0)); got != want {
				t.Fatalf("bytes %#x %#x: word test %v, want %v", b1, b2, got, want)
			}
		}
	}
}

// BenchmarkValidCookieValue: the check of a session cookie's value (560
// bytes of base64url and dots), a byte at a time against the table and
// as validCookieValue does it, a word at a time (docs/performance.md).
func BenchmarkValidCookieValue(b *testing.B) {
	v := strings.Repeat("eyJhbGciOiJFUzI1NiIsImtpZCI6IkFr-_.", 16)
	b.Run("bytewise", func(b *testing.B) {
		for range b.N {
			if !validCookieValueBytewise(v) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("words", func(b *testing.B) {
		for range b.N {
			if !validCookieValue(v) {
				b.Fatal("refused")
			}
		}
	})
}

// validCookieValueBytewise is validCookieValue before the word skip.
func validCookieValueBytewise(v string) bool {
	for i := 0; i < len(v); i++ {
		if !cookieValueBytes[v[i]] {
			return false
		}
	}
	return true
}
