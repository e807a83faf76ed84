package proxy

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"net/http"
	"reflect"
	"testing"
)

// FuzzFastHead holds parseFastHead to http.ReadRequest: whatever head it
// takes (one that passed headOK, as in the fast path), ReadRequest must
// take too, give the same request, and leave head as it was.
func FuzzFastHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a%2Fb/c?x=1&y=%zz HTTP/1.1\r\nHost: web.example.lg.jp\r\nCookie: a=b; __Host-sekisho=x.y.z\r\n\r\n",
		"GET /p HTTP/1.1\r\nhost: h\r\nx-custom-header:  v \t\r\naccept-ENCODING: gzip\r\n\r\n",
		"GET /p HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n",
		"GET /p HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\nCache-Control: max-age=0\r\n\r\n",
		"GET /p HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n",
		"GET /p HTTP/1.1\r\nHost: h\r\nX: 1\r\nX: 2\r\n\r\n",
		"GET /p HTTP/1.1\r\nHost: h\r\nX: 1\r\n folded\r\n\r\n",
		"GET /p HTTP/1.1\r\nHost: h\r\nBad Name: 1\r\n\r\n",
		"GET /p HTTP/1.1\r\nHost: h\r\nEmpty:\r\nTrailer: X\r\n\r\n",
		"GET http://h/p HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /p  HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /p HTTP/1.0\r\nHost: h\r\n\r\n",
		"GET /\xff HTTP/1.1\r\nHost: h\xff\r\nX-\xe6\x97\xa5: \xe6\x97\xa5\r\n\r\n",
		// Targets around simpleTarget's edges.
		"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a?? HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a?b? HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a-b_c.d~e/f/?q=%zz#frag HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a!b*(c)'d HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET //x/../y HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /%41 HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n := headEnd(data, 0)
		if n == 0 || !headOK(data[:n]) {
			return
		}
		head := data[:n]
		before := bytes.Clone(head)
		got, ok := parseFastHead(head)
		if !bytes.Equal(head, before) {
			t.Fatalf("parseFastHead changed the head: %q became %q", before, head)
		}
		if !ok {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(before)))
		if err != nil {
			t.Fatalf("parseFastHead took %q, ReadRequest refused it: %v", before, err)
		}
		if !reflect.DeepEqual(got.URL, want.URL) {
			t.Fatalf("%q: URL %#v, ReadRequest's %#v", before, got.URL, want.URL)
		}
		if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Proto != want.Proto ||
			got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor || got.Host != want.Host ||
			got.Close != want.Close || got.ContentLength != want.ContentLength || got.Body != want.Body ||
			!reflect.DeepEqual(got.TransferEncoding, want.TransferEncoding) || !reflect.DeepEqual(got.Trailer, want.Trailer) {
			t.Fatalf("%q:\nparseFastHead %s\nReadRequest   %s", before, describeRequest(got), describeRequest(want))
		}
		if !reflect.DeepEqual(got.Header, want.Header) {
			t.Fatalf("%q: header %q, ReadRequest's %q", before, got.Header, want.Header)
		}
	})
}

// TestParseFastHeadTakes checks that the heads browsers and wrk send take
// the quick parse (it would be no faster if it declined them all).
func TestParseFastHeadTakes(t *testing.T) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: bench.gw.localhost\r\nCookie: __Host-sekisho=eyJ.eyJ.sig\r\n\r\n",
		"GET /zaimu/list?page=2 HTTP/1.1\r\nHost: zaimu.gw.localhost:8080\r\nConnection: keep-alive\r\n" +
			"sec-ch-ua: \"Chromium\";v=\"156\"\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n" +
			"Sec-Fetch-Site: same-origin\r\nAccept-Encoding: gzip, deflate\r\nAccept-Language: ja-JP,ja;q=0.9\r\n" +
			"Cookie: __Host-sekisho=eyJ.eyJ.sig\r\n\r\n",
	} {
		r, ok := parseFastHead([]byte(s))
		if !ok {
			t.Fatalf("declined %q", s)
		}
		if r.Header.Get("Cookie") != "__Host-sekisho=eyJ.eyJ.sig" || r.Host == "" || r.Header["Host"] != nil {
			t.Fatalf("%q: got %s", s, describeRequest(r))
		}
	}
}

// TestPlainWord checks the word-at-a-time test of headOK against the
// byte table for every byte value in every position.
func TestPlainWord(t *testing.T) {
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			w := []byte("abcdefgh")
			w[pos] = byte(c)
			x := uint64(0)
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(w[i])
			}
			if got, want := plainWord(x), headBytes[c] == headPlain && c != '\t'; got != want {
				t.Fatalf("byte %#x at %d: plainWord = %t, want %t", c, pos, got, want)
			}
		}
	}
}

// headOKBytewise states headOK's rule another way, line by line with
// nothing skipped: the head does not start with a line end, every LF
// follows a CR and every CR precedes an LF, no byte is a control
// character other than HTAB, CR and LF, and exactly one line after the
// first names Host.
func headOKBytewise(head []byte) bool {
	if len(head) < 4 || head[0] == '\r' || head[0] == '\n' {
		return false
	}
	if bytes.Count(head, []byte("\n")) != bytes.Count(head, []byte("\r\n")) ||
		bytes.Count(head, []byte("\r")) != bytes.Count(head, []byte("\r\n")) {
		return false
	}
	for _, c := range head {
		if (c < ' ' && c != '\t' && c != '\r' && c != '\n') || c == 0x7f {
			return false
		}
	}
	// The text after the last CRLF is not a line yet.
	lines := bytes.Split(head, []byte("\r\n"))
	hosts := 0
	for _, l := range lines[1:max(len(lines)-1, 1)] {
		if len(l) >= 5 && bytes.EqualFold(l[:5], []byte("host:")) {
			hosts++
		}
	}
	return hosts == 1
}

// TestHeadOKWords holds headOK (a single pass, eight bytes at a time where
// it can) to its rule stated line by line (headOKBytewise), on random
// heads: mostly plain bytes, with line ends, Host lines, tabs, control
// characters, DEL and obs-text at random places.
func TestHeadOKWords(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"\r\n", "\r\n", "\r\nHost: a\r\n", "\r\nhost:b", "\r", "\n", "\t", "\x00", "\x1f", "\x7f", "\x80", "\xff", " "}
	agree, ok := 0, 0
	for n := 0; n < 200000; n++ {
		var b []byte
		switch rng.IntN(4) {
		case 0, 1:
			b = append(b, "GET / HTTP/1.1\r\nHost: x\r\n"...)
		case 2:
			b = append(b, "Host: x\r\n"...) // a first line is never a Host line
		}
		size := rng.IntN(200)
		for len(b) < size {
			if rng.IntN(40) == 0 {
				b = append(b, pieces[rng.IntN(len(pieces))]...)
			} else {
				b = append(b, byte('!'+rng.IntN(94)))
			}
		}
		if rng.IntN(2) == 0 {
			b = append(b, "\r\n\r\n"...)
		}
		got, want := headOK(b), headOKBytewise(b)
		if got != want {
			t.Fatalf("%q: headOK %t, the rule line by line %t", b, got, want)
		}
		agree++
		if got {
			ok++
		}
	}
	if ok < agree/20 {
		t.Fatalf("only %d of %d random heads passed: the test does not reach the accepting path", ok, agree)
	}
}
