package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// answer1k answers like the bench upstream: 200 with a 1 KiB body.
func answer1k(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "1024")
	w.Write(body)
}

func TestRunOpenAchievesTheOfferedRate(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  func(http.Handler) *httptest.Server
	}{
		{"plain", httptest.NewServer},
		{"tls", httptest.NewTLSServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.srv(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Host != "bench.gw.localhost" || r.Header.Get("Cookie") != "k=v" {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				answer1k(w, r)
			}))
			defer srv.Close()
			const rate = 200.0
			res, err := runOpen(context.Background(), openLoad{
				URL: srv.URL + "/", Headers: []string{"Host: bench.gw.localhost", "Cookie: k=v"},
				TLS:  &tls.Config{InsecureSkipVerify: true},
				Rate: rate, Conns: 8, Duration: 2500 * time.Millisecond, Warmup: 500 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			// Generous: the machine is shared and noisy.
			if res.achieved < rate/2 || res.achieved > rate*1.5 {
				t.Errorf("achieved %.0f req/s, offered %.0f", res.achieved, rate)
			}
			// 2 s after the warm-up at 200/s: about 400 counted requests.
			if res.requests < 200 || res.requests > 600 {
				t.Errorf("%d latencies counted, want about 400", res.requests)
			}
			if res.errors != 0 || res.p50 <= 0 || res.p50 > res.p99 || res.p99 > res.p999 || res.p999 > res.max {
				t.Errorf("inconsistent result %+v", res)
			}
		})
	}
}

// A server slower than the offered rate: an open-loop generator keeps the
// schedule, so requests queue behind slow answers and their latency from
// the scheduled send time grows far beyond the handler's delay (a
// closed-loop one would report about the delay itself).
func TestRunOpenCountsQueueing(t *testing.T) {
	const delay = 20 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		answer1k(w, r)
	}))
	defer srv.Close()
	// 2 connections at 20 ms per answer serve at most 100 req/s; 200 are
	// offered, so the backlog grows by 0.5 s each second.
	const rate = 200.0
	res, err := runOpen(context.Background(), openLoad{URL: srv.URL + "/", Rate: rate, Conns: 2, Duration: 2500 * time.Millisecond, Warmup: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.p99 < delay {
		t.Errorf("p99 %v below the handler's delay %v", res.p99, delay)
	}
	// About a second behind by the end; 5× the delay leaves a wide margin.
	if res.p99 < 5*delay {
		t.Errorf("p99 %v: queueing behind slow answers not counted", res.p99)
	}
	if res.achieved > 0.75*rate {
		t.Errorf("achieved %.0f req/s, more than 2 connections at %v each can serve", res.achieved, delay)
	}
	if res.unsent == 0 {
		t.Errorf("no request left unsent although the server cannot keep up")
	}
}

func TestRunOpenFailsOnBadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"status 500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) }, "want 200"},
		{"chunked", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("part"))
			w.(http.Flusher).Flush()
			w.Write([]byte("rest"))
		}, "Transfer-Encoding"},
		{"connection close", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			answer1k(w, r)
		}, "Connection: close"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			_, err := runOpen(context.Background(), openLoad{URL: srv.URL, Rate: 50, Conns: 2, Duration: 300 * time.Millisecond})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestReadAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"ok", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1", true},
		{"no reason", "HTTP/1.1 200\r\ncontent-length:3\r\n\r\nabc", true},
		{"not found", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false},
		{"2000", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
		{"no length", "HTTP/1.1 200 OK\r\n\r\nabc", false},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", false},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", false},
		{"header without colon", "HTTP/1.1 200 OK\r\nContent-Length 3\r\n\r\nabc", false},
		{"cut in headers", "HTTP/1.1 200 OK\r\nContent-Len", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tc.in))
			err := readAnswer(br)
			if (err == nil) != tc.ok {
				t.Fatalf("readAnswer(%q) = %v, want ok %v", tc.in, err, tc.ok)
			}
			if tc.ok && tc.name == "ok" {
				// The body is consumed exactly: the next answer starts here.
				if rest, _ := br.Peek(8); string(rest) != "HTTP/1.1" {
					t.Errorf("left %q after the answer", rest)
				}
			}
		})
	}
}

func TestParseRates(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []float64
		ok   bool
	}{
		{"0.25,0.5,0.75", []float64{0.25, 0.5, 0.75}, true},
		{" 0.5 , 1", []float64{0.5, 1}, true},
		{"", nil, true},
		{"none", nil, true},
		{"0", nil, false},
		{"1.5", nil, false},
		{"0.5,x", nil, false},
	} {
		got, err := parseRates(tc.in)
		if (err == nil) != tc.ok || len(got) != len(tc.want) {
			t.Errorf("parseRates(%q) = %v, %v", tc.in, got, err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("parseRates(%q) = %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}
