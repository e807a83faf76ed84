package h1transport_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/sekisho/sekisho/internal/h1transport"
)

// A reverse proxy whose body-less requests take the fast path and whose
// uploads and upgrades go to a standard http.Transport.
func Example() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
	}))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)

	fallback := &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	tr := h1transport.New(h1transport.Options{
		ResponseHeaderTimeout: 30 * time.Second,
		Fallback:              fallback,
	})
	defer tr.CloseIdleConnections() // also closes the fallback's

	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: tr,
	})
	defer proxy.Close()

	resp, err := http.Get(proxy.URL + "/hello")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 GET /hello
}
