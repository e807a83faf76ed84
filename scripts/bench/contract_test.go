package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestContractHandler holds the floor with sekisho's bytes to what it
// stands for: the cookie removed, the upstream's Host, and DESIGN.md's
// upstream headers added with an assertion of the real one's length.
func TestContractHandler(t *testing.T) {
	got := make(chan *http.Request, 2)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: contractHandler(&fasthttp.HostClient{Addr: u.Host}, u.Host)}
	go srv.Serve(ln)
	defer srv.Shutdown()

	do := func(cookie string) int {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/a?b=1", nil)
		req.Host = "bench.gw.localhost"
		req.Header.Set("Accept", "*/*")
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do(""); code != http.StatusUnauthorized {
		t.Fatalf("without a cookie: %d, want 401", code)
	}
	if code := do("__Host-sekisho=" + strings.Repeat("x", 450)); code != http.StatusOK {
		t.Fatalf("with a cookie: %d, want 200", code)
	}
	r := <-got
	if r.Host != u.Host || r.URL.RequestURI() != "/a?b=1" {
		t.Errorf("upstream saw Host %q, target %q", r.Host, r.URL.RequestURI())
	}
	if r.Header.Get("Cookie") != "" || r.Header.Get("Accept") != "*/*" {
		t.Errorf("Cookie %q (want none), Accept %q", r.Header.Get("Cookie"), r.Header.Get("Accept"))
	}
	want := map[string]string{
		"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "bench.gw.localhost", "X-Forwarded-Proto": "http",
		"X-Sekisho-User": "bench", "X-Sekisho-Roles": "staff", "X-Sekisho-Class": "2",
	}
	for k, v := range want {
		if got := r.Header.Values(k); !slices.Equal(got, []string{v}) {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if id := r.Header.Get("X-Request-Id"); len(id) != 16 {
		t.Errorf("X-Request-Id %q: want 16 characters", id)
	}
	if a := r.Header.Get("X-Sekisho-Assertion"); len(a) != 562 || strings.Count(a, ".") != 2 {
		t.Errorf("assertion of %d characters with %d dots, want 562 and 2", len(a), strings.Count(a, "."))
	}
}
