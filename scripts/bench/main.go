// Command bench measures sekisho side by side with what a city would
// otherwise run, in one run on one machine, and writes the figures to
// docs/performance.md:
//
//	go run ./scripts/bench            # or: make bench-e2e
//
// It installs wrk and nginx from Debian's packages when they are missing
// (as root), starts a fixed upstream answering 1 KiB, and measures,
// alternating round by round so that machine noise hits every target
// alike: the upstream directly; nginx proxy_pass (access log off, the
// stricter comparison the targets are judged by, and with nginx's default
// access log, for reference); a bare httputil.ReverseProxy; and sekisho
// with an authenticated passkey session, policy and the audit trail
// (class 2: asynchronous group commit; class 3B-like: the decision record
// durable before forwarding). It then
// measures nginx, the pooled bare proxy and sekisho class 2 at the same
// offered rates, open loop (rate.go), and opens 10,000 idle keep-alive
// connections to sekisho and reads its RSS.
//
// Speed is never asserted here or in tests: the machine is shared, so the
// figures that matter are the ratios measured side by side.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/store"
)

var (
	duration  = flag.Duration("duration", 10*time.Second, "length of one wrk run")
	rounds    = flag.Int("rounds", 3, "rounds; targets alternate within each round, in reverse order in odd rounds")
	users     = flag.Int("users", 0, "also measure sekisho's class 2 with this many users, each request carrying the next user's session cookie (a wrk script of preformatted requests), in the same process as class 2 and right after it; 0: off")
	settle    = flag.Duration("settle", time.Second, "pause after each target's run, so that what a run leaves behind (a proxy's collection and scavenging after the load, the class 3S trail's writeback) is not charged to the next target")
	conns     = flag.Int("conns", 64, "wrk connections")
	threads   = flag.Int("threads", 2, "wrk threads")
	idle      = flag.Int("idle", 10000, "idle keep-alive connections for the memory measurement (0: skip)")
	out       = flag.String("out", "docs/performance.md", "where to write the report ('' or '-': stdout only)")
	role      = flag.String("role", "", "internal: run as upstream or bare proxy")
	addr      = flag.String("addr", "", "internal: listen address for -role")
	upFlag    = flag.String("target", "", "internal: upstream for -role bare")
	profile   = flag.String("cpuprofile", "", "also take a CPU profile of sekisho under load into this file")
	profTLS   = flag.String("cpuprofile-tls", "", "also take a CPU profile of sekisho under the TLS variant's load into this file")
	heapProf  = flag.String("heapprofile", "", "also save sekisho's heap profile with the idle connections open (over TLS and HTTP/2: PATH.tls, PATH.h2)")
	gwEnvFlag = flag.String("gwenv", "", "extra environment for the bare proxies and both sekisho processes alike, e.g. GOGC=200 (comma-separated)")
	procs     = flag.Int("gomaxprocs", 0, "GOMAXPROCS for the bare proxy and both sekisho processes alike (0: the Go default, one per core)")
	idleTLS   = flag.Bool("idle-tls", false, "also measure sekisho's memory with the idle connections over TLS")
	idleH2    = flag.Bool("idle-h2", false, "also measure sekisho's memory with idle HTTP/2 connections (one per client, as browsers)")
	tlsLoad   = flag.Bool("tls", true, "also measure the TLS variant: nginx, the pooled bare proxy and sekisho over HTTPS with a device client certificate (Go load generator)")
	tlsCert   = flag.String("tlscert", "", "internal: server certificate for -role bare-pooled over TLS")
	tlsKey    = flag.String("tlskey", "", "internal: its key")
	clientCA  = flag.String("clientca", "", "internal: CA of the client certificates -role bare-pooled verifies")
	compare   = flag.String("compare", "", "also run sekisho built from this git revision (class 2, defaults, TLS off) as one more target, alternating with the rest, and report the working tree's throughput and CPU per request against it round by round")
	hold      = flag.Bool("hold", false, "start every target, print how to reach them, and wait for ^C instead of measuring (for strace, ss, pprof by hand)")
	metrics   = flag.String("metrics", "", "internal: pprof listen address for -role bare")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	switch *role {
	case "upstream":
		runUpstream(*addr)
		return
	case "bare":
		runBare(*addr, *upFlag, *metrics, false)
		return
	case "bare-pooled":
		runBare(*addr, *upFlag, *metrics, true)
		return
	case "fasthttp":
		runFasthttp(*addr, *upFlag, false)
		return
	case "fasthttp-contract":
		runFasthttp(*addr, *upFlag, true)
		return
	case "stacks":
		raiseFileLimit()
		if err := idleStacks(*idle); err != nil {
			log.Fatal("bench: ", err)
		}
		return
	}
	if *openURL != "" {
		if err := runOpenOnly(); err != nil {
			log.Fatal("bench: ", err)
		}
		return
	}
	if *instrN > 0 {
		if err := runInstructions(*instrN); err != nil {
			log.Fatal("bench: ", err)
		}
		return
	}
	if err := run(); err != nil {
		log.Fatal("bench: ", err)
	}
}

// body is the fixed 1 KiB response.
var body = []byte(strings.Repeat("sekisho-bench-1k", 64))

func runUpstream(addr string) {
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "1024")
		w.Write(body)
	})}
	log.Fatal(srv.ListenAndServe())
}

// runBare is the Go floor: httputil.ReverseProxy with a transport tuned
// like sekisho's, nothing else; pooled, it also recycles its 32 KiB copy
// buffers as sekisho does (without a BufferPool, ReverseProxy allocates
// one per request). Its pprof listener lets the idle-memory measurement
// force the same garbage collections on it as on sekisho.
func runBare(addr, upstream, metricsAddr string, pooled bool) {
	u, err := url.Parse(upstream)
	if err != nil {
		log.Fatal(err)
	}
	if metricsAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go func() { log.Fatal(http.ListenAndServe(metricsAddr, mux)) }()
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	if pooled {
		rp.BufferPool = &slicePool{}
	}
	// ReverseProxy's own error handler, without its log line when the
	// client has gone (wrk closes its connections at the end of every run,
	// which cancels the requests in flight): that line was noise in the
	// bench's output.
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if !errors.Is(err, context.Canceled) {
			log.Printf("http: proxy error: %v", err)
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	srv := &http.Server{Addr: addr, Handler: rp}
	if *tlsCert != "" {
		// The TLS variant: verify a client certificate as sekisho does.
		pem, err := os.ReadFile(*clientCA)
		if err != nil {
			log.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		srv.TLSConfig = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, NextProtos: []string{"http/1.1"}}
		log.Fatal(srv.ListenAndServeTLS(*tlsCert, *tlsKey))
	}
	log.Fatal(srv.ListenAndServe())
}

// idleStacks measures what net/http alone keeps for n idle keep-alive
// connections, in one process: a server with a trivial handler, n clients
// that each sent one request, then collections. It prints the goroutine
// stacks in use and the runtime's stack starting size
// (go run ./scripts/bench -role stacks -idle 9000; add
// GODEBUG=adaptivestackstart=0 to compare). The clients' own buffers are in
// this process's heap too, so only the stacks are reported.
func idleStacks(n int) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	clients := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return fmt.Errorf("after %d connections: %w", i, err)
		}
		clients = append(clients, c)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	time.Sleep(time.Second)
	for i := 0; i < 4; i++ {
		runtime.GC()
	}
	s := []rtmetrics.Sample{{Name: "/gc/stack/starting-size:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}, {Name: "/sched/goroutines:goroutines"}}
	rtmetrics.Read(s)
	stacks, g := s[1].Value.Uint64(), s[2].Value.Uint64()
	fmt.Printf("%d idle connections: goroutine stacks %.1f MiB (%.1f KiB per goroutine, %d goroutines), stack starting size %d B\n",
		n, float64(stacks)/(1<<20), float64(stacks)/float64(g)/1024, g, s[0].Value.Uint64())
	return nil
}

// slicePool recycles ReverseProxy's copy buffers.
type slicePool struct{ p sync.Pool }

func (b *slicePool) Get() []byte {
	if v, ok := b.p.Get().(*[32 << 10]byte); ok {
		return v[:]
	}
	return make([]byte, 32<<10)
}

func (b *slicePool) Put(v []byte) {
	if len(v) == 32<<10 {
		b.p.Put((*[32 << 10]byte)(v))
	}
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	requests int64
	// cpu is the proxy process's CPU time (user and system) per request
	// during the run: unlike req/s it barely depends on what else the
	// shared machine runs at the time. Zero for targets not measured so.
	cpu time.Duration
}

type target struct {
	name    string
	url     string
	headers []string
	pid     int // the process whose CPU time is measured (0: none)
	// tls: an https target of the TLS variant, loaded by the Go load
	// generator with this configuration (client certificate included);
	// nil: wrk.
	tls *tls.Config
	// compare: sekisho built from -compare's revision.
	compare bool
	// script: a wrk script that makes the requests (-users).
	script string
	// users: the many-users variant of class 2 (-users), measured right
	// after class 2 and reported against it.
	users   bool
	results []result
}

func run() error {
	raiseFileLimit()
	fracs, err := parseRates(*ratesFlag)
	if err != nil {
		return err
	}
	if err := ensureTools(); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "sekisho-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ports := freePorts(25)
	upURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	var running []*exec.Cmd
	defer func() {
		for _, p := range running {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}()
	// gw starts a proxy under test (bare or sekisho) with the same
	// GOMAXPROCS for all of them; start, anything else.
	var gwEnv []string
	if *procs > 0 {
		gwEnv = []string{"GOMAXPROCS=" + strconv.Itoa(*procs)}
	}
	if *gwEnvFlag != "" {
		gwEnv = append(gwEnv, strings.Split(*gwEnvFlag, ",")...)
	}
	startEnv := func(env []string, name string, args ...string) (*exec.Cmd, error) {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting %s: %w", name, err)
		}
		running = append(running, cmd)
		return cmd, nil
	}
	start := func(name string, args ...string) (*exec.Cmd, error) { return startEnv(nil, name, args...) }
	gw := func(name string, args ...string) (*exec.Cmd, error) { return startEnv(gwEnv, name, args...) }
	if _, err := start(self, "-role", "upstream", "-addr", fmt.Sprintf("127.0.0.1:%d", ports[0])); err != nil {
		return err
	}
	bare, err := gw(self, "-role", "bare", "-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]), "-target", upURL,
		"-metrics", fmt.Sprintf("127.0.0.1:%d", ports[8]))
	if err != nil {
		return err
	}
	pooledBare, err := gw(self, "-role", "bare-pooled", "-addr", fmt.Sprintf("127.0.0.1:%d", ports[10]), "-target", upURL,
		"-metrics", fmt.Sprintf("127.0.0.1:%d", ports[11]))
	if err != nil {
		return err
	}
	// The TLS variant's device CA and one device certificate, trusted by
	// nginx, the TLS bare proxy and sekisho alike.
	dev, err := newDevice(work)
	if err != nil {
		return err
	}
	if err := startNginx(work, ports[2], ports[12], ports[19], ports[0], dev.caPath, start); err != nil {
		return err
	}
	var pooledBareTLS *exec.Cmd
	if *tlsLoad {
		crt, key := filepath.Join(work, "bare-tls.crt"), filepath.Join(work, "bare-tls.key")
		if err := writeSelfSigned(crt, key); err != nil {
			return err
		}
		if pooledBareTLS, err = gw(self, "-role", "bare-pooled", "-addr", fmt.Sprintf("127.0.0.1:%d", ports[13]), "-target", upURL,
			"-tlscert", crt, "-tlskey", key, "-clientca", dev.caPath); err != nil {
			return err
		}
	}
	sek, cookie, err := startSekisho(work, "sekisho", ports[3], ports[5], ports[9], upURL, "", gw, dev.caPath, "")
	if err != nil {
		return err
	}
	// The same gateway with monitoring off, to price the monitor's rules.
	nomon, cookieNoMon, err := startSekisho(work, "sekisho-nomon", ports[6], ports[7], 0, upURL, "monitor: {enabled: false}\n", gw, "", "")
	if err != nil {
		return err
	}
	// The same gateway with the fast path off (server.fast_path: false;
	// on by default), to price it.
	noFast, cookieNoFast, err := startSekisho(work, "sekisho-nofast", ports[15], ports[16], ports[17], upURL, "", gw, dev.caPath, "fast_path: false")
	if err != nil {
		return err
	}
	// The floor: a proxy on fasthttp alone, with nothing else to do (no
	// session, policy or audit). Not a product: what Go itself costs here,
	// in the same run and on the same cores as everything else.
	floorProxy, err := gw(self, "-role", "fasthttp", "-addr", fmt.Sprintf("127.0.0.1:%d", ports[18]), "-target", upURL)
	if err != nil {
		return err
	}
	// The same floor with sekisho's bytes: the client's cookie in, the
	// identity headers out (contractHandler).
	contractProxy, err := gw(self, "-role", "fasthttp-contract", "-addr", fmt.Sprintf("127.0.0.1:%d", ports[24]), "-target", upURL)
	if err != nil {
		return err
	}
	// The same gateway built from another revision (-compare), to measure
	// a change side by side in one run.
	var cmpSek *exec.Cmd
	var cookieCmp, cmpName string
	if *compare != "" {
		src, rev, err := checkout(work, *compare)
		if err != nil {
			return err
		}
		cmpName = "sekisho at " + rev + " (-compare, class 2)"
		tlsPort, ca := 0, ""
		if *tlsLoad {
			tlsPort, ca = ports[23], dev.caPath
		}
		if cmpSek, cookieCmp, err = startSekishoFrom(work, src, "sekisho-bin-compare", "sekisho-compare", ports[20], ports[21], tlsPort, upURL, "", gw, ca, ""); err != nil {
			return err
		}
	}
	wait := []int{ports[0], ports[1], ports[2], ports[3], ports[6], ports[10], ports[15], ports[18], ports[19], ports[24]}
	if *compare != "" {
		wait = append(wait, ports[20])
		if *tlsLoad {
			wait = append(wait, ports[23])
		}
	}
	if *tlsLoad {
		wait = append(wait, ports[9], ports[12], ports[13], ports[17])
	}
	for _, p := range wait {
		if err := waitPort(p); err != nil {
			return err
		}
	}
	host := "Host: bench.gw.localhost"
	targets := []*target{
		{name: "upstream (direct)", url: upURL + "/"},
		{name: "nginx proxy_pass", url: fmt.Sprintf("http://127.0.0.1:%d/", ports[2])},
		{name: "httputil.ReverseProxy (bare)", url: fmt.Sprintf("http://127.0.0.1:%d/", ports[1]), pid: bare.Process.Pid},
		{name: "httputil.ReverseProxy (bare, pooled copy buffers)", url: fmt.Sprintf("http://127.0.0.1:%d/", ports[10]), pid: pooledBare.Process.Pid},
		{name: "sekisho (passkey session, policy, audit async, class 2)", url: fmt.Sprintf("http://127.0.0.1:%d/", ports[3]), headers: []string{host, "Cookie: __Host-sekisho=" + cookie}, pid: sek.Process.Pid},
		{name: "sekisho (durable audit before forwarding, class 3S)", url: fmt.Sprintf("http://127.0.0.1:%d/sync/", ports[3]), headers: []string{host, "Cookie: __Host-sekisho=" + cookie}, pid: sek.Process.Pid},
		{name: "sekisho, monitoring off (class 2)", url: fmt.Sprintf("http://127.0.0.1:%d/", ports[6]), headers: []string{host, "Cookie: __Host-sekisho=" + cookieNoMon}, pid: nomon.Process.Pid},
		{name: "sekisho, fast path off (server.fast_path: false, class 2)", url: fmt.Sprintf("http://127.0.0.1:%d/", ports[15]), headers: []string{host, "Cookie: __Host-sekisho=" + cookieNoFast}, pid: noFast.Process.Pid},
		{name: floorName, url: fmt.Sprintf("http://127.0.0.1:%d/", ports[18]), pid: floorProxy.Process.Pid},
		{name: nginxLogName, url: fmt.Sprintf("http://127.0.0.1:%d/", ports[19])},
		{name: contractName, url: fmt.Sprintf("http://127.0.0.1:%d/", ports[24]), headers: []string{host, "Cookie: __Host-sekisho=" + cookie}, pid: contractProxy.Process.Pid},
	}
	tc := func() *tls.Config {
		return &tls.Config{InsecureSkipVerify: true, ServerName: "bench.gw.localhost", NextProtos: []string{"http/1.1"}, Certificates: []tls.Certificate{dev.cert}}
	}
	if *tlsLoad {
		// The TLS variant (HTTP/1.1 over TLS with the device certificate),
		// loaded by the Go load generator: wrk cannot present a client
		// certificate. Its figures compare with each other, not with the
		// wrk rows above.
		targets = append(targets,
			&target{name: "TLS: nginx proxy_pass (client certificate verified)", url: fmt.Sprintf("https://127.0.0.1:%d/", ports[12]), tls: tc()},
			&target{name: "TLS: httputil.ReverseProxy (bare, pooled, client certificate verified)", url: fmt.Sprintf("https://127.0.0.1:%d/", ports[13]), pid: pooledBareTLS.Process.Pid, tls: tc()},
			&target{name: "TLS: sekisho (device certificate, passkey session, class 2)", url: fmt.Sprintf("https://127.0.0.1:%d/", ports[9]), headers: []string{host, "Cookie: __Host-sekisho=" + cookie}, pid: sek.Process.Pid, tls: tc()},
			&target{name: "TLS: sekisho, fast path off (device certificate, passkey session, class 2)", url: fmt.Sprintf("https://127.0.0.1:%d/", ports[17]), headers: []string{host, "Cookie: __Host-sekisho=" + cookieNoFast}, pid: noFast.Process.Pid, tls: tc()},
		)
	}
	if usersScript != "" {
		// The bench user's cookie is for the probe; the script replaces it.
		targets = append(targets, &target{name: fmt.Sprintf("sekisho, %d users (class 2, each request the next user's session)", *users),
			url: fmt.Sprintf("http://127.0.0.1:%d/", ports[3]), headers: []string{host, "Cookie: __Host-sekisho=" + cookie},
			pid: sek.Process.Pid, script: usersScript, users: true})
	}
	if cmpSek != nil {
		targets = append(targets, &target{name: cmpName, url: fmt.Sprintf("http://127.0.0.1:%d/", ports[20]),
			headers: []string{host, "Cookie: __Host-sekisho=" + cookieCmp}, pid: cmpSek.Process.Pid, compare: true})
		if *tlsLoad {
			targets = append(targets, &target{name: "TLS: " + cmpName, url: fmt.Sprintf("https://127.0.0.1:%d/", ports[23]),
				headers: []string{host, "Cookie: __Host-sekisho=" + cookieCmp}, pid: cmpSek.Process.Pid, compare: true, tls: tc()})
		}
	}
	// Check every target answers 200 before measuring.
	for _, t := range targets {
		if err := probe(t); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	if *hold {
		*rounds, *profile, *profTLS = 0, "", ""
	}
	for r := 0; r < *rounds; r++ {
		for _, t := range roundOrder(targets, r) {
			before := procCPU(t.pid)
			res, err := runLoad(t)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if t.pid != 0 && res.requests > 0 {
				res.cpu = (procCPU(t.pid) - before) / time.Duration(res.requests)
			}
			t.results = append(t.results, res)
			log.Printf("round %d %-58s %9.0f req/s  p50 %-9v p99 %-9v CPU/req %v", r+1, t.name, res.rps, res.p50, res.p99, res.cpu)
			time.Sleep(*settle)
		}
	}
	// Latency at the same offered rate (open loop) for nginx, the pooled
	// bare proxy and sekisho class 2, at fractions of sekisho's median
	// saturation throughput.
	var open []openRate
	if len(fracs) > 0 && len(targets[tSek].results) > 0 {
		sat := median(targets[tSek].results).rps
		if open, err = measureOpen([]*target{targets[tNginx], targets[tPooled], targets[tFloor], targets[tSek]}, sat, fracs); err != nil {
			return err
		}
	}
	if *profile != "" {
		if err := takeProfile(targets[tSek], ports[5], *profile); err != nil {
			return err
		}
	}
	if *profTLS != "" && len(targets) > tTLSSek {
		if err := takeProfile(targets[tTLSSek], ports[5], *profTLS); err != nil {
			return err
		}
	}
	var mem []idleMem
	if *idle > 0 {
		// sekisho first, then the bare proxy under the same procedure: the
		// bare figure is what net/http itself costs per idle connection.
		for _, m := range []struct {
			name          string
			pid           int
			port, metrics int
			mode          string
			headers       string
		}{
			{"sekisho", sek.Process.Pid, ports[3], ports[5], "plain", "Cookie: __Host-sekisho=" + cookie + "\r\n"},
			{"httputil.ReverseProxy (bare)", bare.Process.Pid, ports[1], ports[8], "plain", ""},
			{"sekisho over TLS", sek.Process.Pid, ports[9], ports[5], "tls", "Cookie: __Host-sekisho=" + cookie + "\r\n"},
			{"sekisho over HTTP/2", sek.Process.Pid, ports[9], ports[5], "h2", "Cookie: __Host-sekisho=" + cookie + "\r\n"},
		} {
			if m.mode == "tls" && !*idleTLS || m.mode == "h2" && !*idleH2 {
				continue
			}
			res := idleMem{name: m.name, base: readRSS(m.pid)}
			if err := idleRSS(m.port, m.metrics, m.mode, m.headers, *idle, m.pid, &res); err != nil {
				log.Printf("idle connections to %s: %v", m.name, err)
				continue
			}
			log.Printf("idle: %s: RSS %.1f MiB (before %.1f MiB), heap in use %.1f MiB, stacks %.1f MiB; next request on %d/%d answered 200",
				m.name, mib(res.rss), mib(res.base), mib(res.heapInuse), mib(res.stack), res.answered, res.asked)
			mem = append(mem, res)
		}
	}
	if *hold {
		fmt.Printf("upstream %s; nginx :%d; bare :%d (pid %d); sekisho :%d (pid %d, metrics and pprof :%d, TLS :%d)\n",
			upURL, ports[2], ports[1], bare.Process.Pid, ports[3], sek.Process.Pid, ports[5], ports[9])
		fmt.Printf("curl -H '%s' -H 'Cookie: __Host-sekisho=%s' http://127.0.0.1:%d/\n", host, cookie, ports[3])
		fmt.Printf("fasthttp floor :%d (pid %d); floor with sekisho's bytes :%d (pid %d; the same Host and Cookie)\n",
			ports[18], floorProxy.Process.Pid, ports[24], contractProxy.Process.Pid)
		if usersScript != "" {
			fmt.Printf("%d users: wrk -t2 -c64 -d6s -H '%s' -s %s http://127.0.0.1:%d/\n", *users, host, usersScript, ports[3])
		}
		fmt.Println("holding; ^C to stop")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		return nil
	}
	report := buildReport(targets, mem, open)
	fmt.Println(report)
	if *out != "" && *out != "-" {
		if err := writeSection(*out, report); err != nil {
			return err
		}
		log.Printf("wrote %s", *out)
	}
	return nil
}

func ensureTools() error {
	var missing []string
	if _, err := exec.LookPath("wrk"); err != nil {
		missing = append(missing, "wrk")
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		missing = append(missing, "nginx-light")
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("missing %v: install them (apt-get install %s)", missing, strings.Join(missing, " "))
	}
	log.Printf("installing %v from Debian's packages", missing)
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq"}, missing...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %v: %w", args, err)
		}
	}
	return nil
}

func startNginx(work string, port, tlsPort, logPort, upstream int, caPath string, start func(string, ...string) (*exec.Cmd, error)) error {
	dir := filepath.Join(work, "nginx")
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	if err := writeSelfSigned(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err != nil {
		return err
	}
	conf := fmt.Sprintf(`worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  upstream app { server 127.0.0.1:%[3]d; keepalive 256; }
  server {
    listen 127.0.0.1:%[2]d;
    # As the TLS server below, and as the Go servers: no limit on the
    # requests of a keep-alive connection (the default, 1000, closes the
    # open-loop generator's connections, which must stay open).
    keepalive_requests 1000000;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  # The same proxy with nginx's default access log (combined format,
  # unbuffered): nginx as it comes, for the bench's second comparison.
  server {
    listen 127.0.0.1:%[6]d;
    access_log %[1]s/logs/access.log combined;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  server {
    listen 127.0.0.1:%[4]d ssl;
    ssl_certificate %[1]s/tls.crt;
    ssl_certificate_key %[1]s/tls.key;
    ssl_client_certificate %[5]s;
    ssl_verify_client optional;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, dir, port, upstream, tlsPort, caPath, logPort)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	_, err := start("nginx", "-p", dir, "-c", path, "-g", "daemon off;")
	return err
}

// startSekisho builds the binary, writes a configuration with one route to
// the upstream, creates a user and mints a passkey session for it (the
// ceremony itself is benchmarked in package authn), then runs `sekisho
// serve` as its own process.
// serverLine indents one setting of the server section ("" for none).
func serverLine(setting string) string {
	if setting == "" {
		return ""
	}
	return "  " + setting + "\n"
}

// serverSetting, if not empty, is one more line of the server section
// (e.g. "fast_path: false").
func startSekisho(work, name string, port, metricsPort, tlsPort int, upstream, extra string, start func(string, ...string) (*exec.Cmd, error), clientCA, serverSetting string) (*exec.Cmd, string, error) {
	return startSekishoFrom(work, "", "sekisho-bin", name, port, metricsPort, tlsPort, upstream, extra, start, clientCA, serverSetting)
}

// checkout writes the tree of git revision rev into work and returns its
// directory and rev's short name.
func checkout(work, rev string) (dir, short string, err error) {
	out, err := exec.Command("git", "rev-parse", "--short", rev+"^{commit}").Output()
	if err != nil {
		return "", "", fmt.Errorf("-compare %s: not a revision here: %w", rev, err)
	}
	short = strings.TrimSpace(string(out))
	dir = filepath.Join(work, "compare-src")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	archive := exec.Command("git", "archive", short)
	untar := exec.Command("tar", "-x", "-C", dir)
	if untar.Stdin, err = archive.StdoutPipe(); err != nil {
		return "", "", err
	}
	untar.Stderr, archive.Stderr = os.Stderr, os.Stderr
	if err := untar.Start(); err != nil {
		return "", "", err
	}
	if err := archive.Run(); err != nil {
		return "", "", fmt.Errorf("git archive %s: %w", short, err)
	}
	if err := untar.Wait(); err != nil {
		return "", "", fmt.Errorf("unpacking %s: %w", short, err)
	}
	return dir, short, nil
}

// startSekishoFrom is startSekisho with the binary binName built from the
// source tree src ("": the working directory's).
func startSekishoFrom(work, src, binName, name string, port, metricsPort, tlsPort int, upstream, extra string, start func(string, ...string) (*exec.Cmd, error), clientCA, serverSetting string) (*exec.Cmd, string, error) {
	dir := filepath.Join(work, name)
	bin := filepath.Join(work, binName)
	if _, err := os.Stat(bin); err != nil {
		build := exec.Command("go", "build", "-o", bin, "./cmd/sekisho")
		build.Dir = src
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, "", fmt.Errorf("building sekisho: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	cfgText := fmt.Sprintf(`server:
  http_listen: "127.0.0.1:%d"
  listen: "127.0.0.1:%d"
  metrics_listen: "127.0.0.1:%d"
  pprof: true
  tls: {cert: tls.crt, key: tls.key}
%s%sstore: {driver: sqlite, dsn: data/sekisho.db}
webauthn: {rp_id: gw.localhost}
zones:
  chonai: [127.0.0.0/8]
classes:
  "3S": {label: 同期監査の計測用, require: [passkey], audit: sync}
routes:
  - name: bench
    host: bench.gw.localhost
    upstream: %s
    segment: lgwan
    class: "2"
    paths: [{prefix: /sync/, class: "3S"}]
policy: {file: policy.csv}
audit: {dir: data/audit}
%s`, port, tlsPort, metricsPort, serverLine(serverSetting), clientCAYAML(clientCA), upstream, extra)
	if err := writeSelfSigned(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err != nil {
		return nil, "", err
	}
	policyText := "condition, 庁内, zone=chonai\nallow, *, class:2, read|write, 庁内\nallow, *, class:3S, read|write, 庁内\n"
	for name, text := range map[string]string{"sekisho.yaml": cfgText, "policy.csv": policyText} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return nil, "", err
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "sekisho.yaml"))
	if err != nil {
		return nil, "", err
	}
	ctx := context.Background()
	st, err := store.Open(ctx, cfg.Store.Driver, cfg.Store.DSN)
	if err != nil {
		return nil, "", err
	}
	if err := st.CreateUser(ctx, &store.User{ID: "bench", DisplayName: "計測 太郎", Department: "情報政策課", Roles: []string{"staff"}}); err != nil && !errors.Is(err, store.ErrExists) {
		return nil, "", err
	}
	sm, err := session.New(cfg, st)
	if err != nil {
		return nil, "", err
	}
	tok, err := sm.Issue(ctx, &session.Claims{User: "bench", AMR: []string{"hwk", "user", "uv"}})
	if err != nil {
		return nil, "", err
	}
	// -users' sessions live in the main sekisho (the one class 2 runs on).
	if name == "sekisho" && *users > 0 {
		if usersScript, err = manyUsers(ctx, st, sm, *users, filepath.Join(work, "users.lua")); err != nil {
			return nil, "", err
		}
	}
	st.Close()
	cmd, err := start(bin, "serve", "--config", filepath.Join(dir, "sekisho.yaml"))
	return cmd, tok, err
}

// writeSelfSigned writes an ECDSA P-256 certificate for bench.gw.localhost
// (the HTTPS listener of the idle-memory measurement over TLS).
func writeSelfSigned(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bench.gw.localhost"},
		DNSNames:     []string{"bench.gw.localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}

// clientCAYAML is the server.client_ca line for a device CA, if any.
func clientCAYAML(path string) string {
	if path == "" {
		return ""
	}
	return fmt.Sprintf("  client_ca: [%q]\n", path)
}

// device is the TLS variant's device CA and one device certificate.
type device struct {
	caPath string
	cert   tls.Certificate
}

// newDevice makes a device CA with sekisho's own CA code and issues one
// device certificate from it.
func newDevice(work string) (*device, error) {
	ca, err := certs.Init(filepath.Join(work, "deviceca"))
	if err != nil {
		return nil, err
	}
	is, err := ca.IssueDevice(certs.DeviceRequest{Device: "BENCH-PC-0001", Days: 2})
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(work, "deviceca.pem")
	if err := os.WriteFile(path, ca.CertPEM(), 0o644); err != nil {
		return nil, err
	}
	return &device{caPath: path, cert: cert}, nil
}

// runLoad measures t with wrk, or with the Go load generator for the TLS
// variant.
func runLoad(t *target) (result, error) {
	if t.tls != nil {
		return goLoad(t, *conns, *duration)
	}
	return runWrk(t)
}

// goLoad is a small closed-loop load generator for the TLS variant, where
// a client certificate is needed: conns keep-alive HTTP/1.1 connections
// over TLS, each sending the next request when the answer is read, for d.
// It reports requests/s and the 50th and 99th percentile latencies of all
// requests, like wrk --latency.
func goLoad(t *target, conns int, d time.Duration) (result, error) {
	req, addr, err := rawRequest(t.url, t.headers)
	if err != nil {
		return result{}, err
	}
	type out struct {
		lat []time.Duration
		err error
	}
	outs := make(chan out, conns)
	deadline := time.Now().Add(d)
	start := time.Now()
	for i := 0; i < conns; i++ {
		go func() {
			o := out{lat: make([]time.Duration, 0, 1<<14)}
			defer func() { outs <- o }()
			c, err := tls.Dial("tcp", addr, t.tls)
			if err != nil {
				o.err = err
				return
			}
			defer c.Close()
			br := bufio.NewReaderSize(c, 16<<10)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if _, err := io.WriteString(c, req); err != nil {
					o.err = err
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					o.err = err
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					o.err = fmt.Errorf("status %d, %v", resp.StatusCode, err)
					return
				}
				o.lat = append(o.lat, time.Since(t0))
			}
		}()
	}
	var all []time.Duration
	for i := 0; i < conns; i++ {
		o := <-outs
		if o.err != nil {
			return result{}, fmt.Errorf("load generator: %w", o.err)
		}
		all = append(all, o.lat...)
	}
	elapsed := time.Since(start)
	if len(all) == 0 {
		return result{}, errors.New("load generator: no request completed")
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(float64(len(all))*p))] }
	return result{rps: float64(len(all)) / elapsed.Seconds(), p50: pct(0.50), p99: pct(0.99), requests: int64(len(all))}, nil
}

// takeProfile runs wrk against t while fetching a 5 s CPU profile from
// sekisho's metrics listener.
func takeProfile(t *target, metricsPort int, path string) error {
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=5", metricsPort))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(path, b, 0o644)
		}
		done <- err
	}()
	saved := *duration
	*duration = 7 * time.Second
	_, werr := runLoad(t)
	*duration = saved
	if err := <-done; err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	log.Printf("wrote CPU profile %s (go tool pprof -top %s)", path, path)
	return werr
}

func probe(t *target) error {
	req, _ := http.NewRequest("GET", t.url, nil)
	for _, h := range t.headers {
		k, v, _ := strings.Cut(h, ": ")
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	cl := http.DefaultClient
	if t.tls != nil {
		cl = &http.Client{Transport: &http.Transport{TLSClientConfig: t.tls}}
	}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(b) != 1024 {
		return fmt.Errorf("probe answered %d with %d bytes", resp.StatusCode, len(b))
	}
	return nil
}

func runWrk(t *target) (result, error) {
	args := []string{"-t", strconv.Itoa(*threads), "-c", strconv.Itoa(*conns), "-d", duration.String(), "--latency"}
	for _, h := range t.headers {
		args = append(args, "-H", h)
	}
	if t.script != "" {
		args = append(args, "-s", t.script)
	}
	args = append(args, t.url)
	outb, err := exec.Command("wrk", args...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w: %s", err, outb)
	}
	return parseWrk(string(outb))
}

// parseWrk reads requests/s and the 50% and 99% latencies of wrk --latency.
func parseWrk(s string) (result, error) {
	var r result
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			r.requests, _ = strconv.ParseInt(f[0], 10, 64)
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && f[0] == "50%":
			r.p50 = parseWrkDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			r.p99 = parseWrkDuration(f[1])
		case len(f) >= 3 && f[0] == "Non-2xx":
			return r, fmt.Errorf("wrk saw non-2xx responses: %s", sc.Text())
		}
	}
	if r.rps == 0 {
		return r, fmt.Errorf("no Requests/sec in wrk output:\n%s", s)
	}
	return r, nil
}

func parseWrkDuration(s string) time.Duration {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}} {
		if strings.HasSuffix(s, u.suffix) {
			v, err := strconv.ParseFloat(strings.TrimSuffix(s, u.suffix), 64)
			if err != nil {
				return 0
			}
			return time.Duration(v * float64(u.unit))
		}
	}
	return 0
}

// idleMem is one process's memory with n idle keep-alive connections.
type idleMem struct {
	name                        string
	base, rss, heapInuse, stack int64
	// asked and answered: requests sent again on every 100th idle
	// connection after the measurement, and those answered 200 (a parked
	// connection must still serve its next request).
	asked, answered int
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// idleClient is one idle keep-alive connection of the memory measurement.
type idleClient interface {
	// do sends one request on the connection and checks the answer.
	do() error
	close()
}

// rawClient is an HTTP/1.1 connection, plain or TLS, written by hand.
type rawClient struct {
	c   net.Conn
	req string
}

func (r *rawClient) do() error {
	r.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(r.c, r.req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(r.c), nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func (r *rawClient) close() { r.c.Close() }

// h2Client is an HTTP/2 connection over TLS: its own http.Transport, as a
// browser's one connection to the gateway.
type h2Client struct {
	tr     *http.Transport
	url    string
	cookie string
}

func (h *h2Client) do() error {
	req, _ := http.NewRequest("GET", h.url, nil)
	req.Host = "bench.gw.localhost"
	req.Header.Set("Cookie", h.cookie)
	resp, err := h.tr.RoundTrip(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		return fmt.Errorf("%s %s", resp.Proto, resp.Status)
	}
	return nil
}

func (h *h2Client) close() { h.tr.CloseIdleConnections() }

// idleRSS opens n keep-alive connections (mode "plain", "tls" for HTTP/1.1
// over TLS, or "h2" for HTTP/2 over TLS), sends one request on each,
// leaves them idle and reads the process's RSS, and the heap and stack in
// use from the MemStats of its heap profile.
func idleRSS(port, metricsPort int, mode, headers string, n, pid int, res *idleMem) error {
	req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: bench.gw.localhost\r\n%s\r\n", headers)
	clients := make([]idleClient, 0, n)
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < n; i++ {
		var c idleClient
		switch mode {
		case "h2":
			cookie, _ := strings.CutPrefix(strings.TrimSpace(headers), "Cookie: ")
			c = &h2Client{tr: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "bench.gw.localhost"}, ForceAttemptHTTP2: true},
				url: "https://" + addr + "/", cookie: cookie}
		default:
			var conn net.Conn
			var err error
			if mode == "tls" {
				conn, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "bench.gw.localhost", NextProtos: []string{"http/1.1"}})
			} else {
				conn, err = net.Dial("tcp", addr)
			}
			if err != nil {
				return fmt.Errorf("after %d connections: %w", i, err)
			}
			c = &rawClient{c: conn, req: req}
		}
		clients = append(clients, c)
		if err := c.do(); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
	}
	// Let the process settle as an idle server would: garbage collections
	// (which also shrink the stacks that serving the requests grew; asked
	// for through pprof) and time for the runtime to return freed memory
	// to the kernel.
	time.Sleep(2 * time.Second)
	// Each collection halves an oversized stack at most once, so a few.
	for i := 0; i < 3; i++ {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", metricsPort)); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		time.Sleep(time.Second)
	}
	time.Sleep(6 * time.Second)
	if *heapProf != "" && strings.HasPrefix(res.name, "sekisho") {
		// The plain connections' profile at the path given, the others'
		// next to it: PATH.tls, PATH.h2.
		path := *heapProf
		if mode != "plain" {
			path += "." + mode
		}
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap", metricsPort)); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			_ = os.WriteFile(path, b, 0o644)
		}
	}
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?debug=1", metricsPort)); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			// "# HeapInuse = 123" and "# Stack = 456 / 789" (in use / from the OS).
			if v, ok := strings.CutPrefix(line, "# HeapInuse = "); ok {
				res.heapInuse, _ = strconv.ParseInt(v, 10, 64)
			}
			if v, ok := strings.CutPrefix(line, "# Stack = "); ok {
				f, _, _ := strings.Cut(v, " ")
				res.stack, _ = strconv.ParseInt(f, 10, 64)
			}
		}
	}
	res.rss = readRSS(pid)
	// The idle connections still work: every 100th sends its next request.
	for i := 0; i < len(clients); i += 100 {
		res.asked++
		if clients[i].do() == nil {
			res.answered++
		}
	}
	return nil
}

// procCPU is the user and system CPU time pid has used (0 for pid 0).
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at state.
	rest := string(b)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

func readRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func median(rs []result) result {
	by := func(less func(a, b result) bool) []result {
		c := append([]result(nil), rs...)
		sort.Slice(c, func(i, j int) bool { return less(c[i], c[j]) })
		return c
	}
	m := len(rs) / 2
	return result{
		rps: by(func(a, b result) bool { return a.rps < b.rps })[m].rps,
		p50: by(func(a, b result) bool { return a.p50 < b.p50 })[m].p50,
		p99: by(func(a, b result) bool { return a.p99 < b.p99 })[m].p99,
		cpu: by(func(a, b result) bool { return a.cpu < b.cpu })[m].cpu,
	}
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				model = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.TrimSpace(strings.SplitN(strings.Split(string(b), "\n")[0], ":", 2)[1])
	}
	return fmt.Sprintf("%d cores (%s), %s memory, %s, %s/%s", runtime.NumCPU(), model, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// floorName is the fasthttp proxy's row: targets[tFloor].
const floorName = "fasthttp proxy (floor: fasthttp.Server + HostClient, nothing else)"

// contractName is the fasthttp proxy with sekisho's bytes:
// targets[tContract].
const contractName = "fasthttp proxy + sekisho's headers (floor of the same bytes: session cookie in, identity headers out, nothing checked)"

// nginxLogName is nginx as it comes: the same proxy_pass with nginx's
// default access log (combined format, one write per request). The
// targets are judged against nginx with the log off, the stricter floor;
// this row is what a city running nginx out of the box would compare with.
const nginxLogName = "nginx proxy_pass, access log on (nginx's default)"

// The targets by position.
const (
	tUp = iota
	tNginx
	tBare
	tPooled
	tSek
	tSync
	tNoMon
	tNoFast
	tFloor
	tNginxLog
	tContract
	tTLSNginx
	tTLSPooled
	tTLSSek
	tTLSNoFast
)

func buildReport(targets []*target, mem []idleMem, open []openRate) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## エンドツーエンド計測 / End-to-end load\n\n")
	fmt.Fprintf(&b, "このページは `go run ./scripts/bench` (`make bench-e2e`) が書きました。数値は一度の実行で、\n")
	fmt.Fprintf(&b, "対象を交互に計測した中央値です (This page is written by `go run ./scripts/bench`; medians of\n")
	fmt.Fprintf(&b, "alternating rounds in one run).\n\n")
	fmt.Fprintf(&b, "- 計測日時 (date): %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- 機械 (machine): %s\n", machine())
	fmt.Fprintf(&b, "- 負荷 (load): wrk -t%d -c%d -d%s, %d rounds, loopback, keep-alive, 1 KiB responses\n", *threads, *conns, *duration, *rounds)
	fmt.Fprintf(&b, "- 順序 (order): class 2 と同じバイトの床は nginx の直後、奇数回は逆順、各対象の後に %s 休止 (class 2 and the floor with sekisho's bytes right after nginx; odd rounds in reverse order; %s pause after each target)\n", *settle, *settle)
	gmp := "Go の既定 (default: one per core)"
	if *procs > 0 {
		gmp = strconv.Itoa(*procs)
	}
	fmt.Fprintf(&b, "- GOMAXPROCS (bare proxy and sekisho alike): %s\n", gmp)
	if *gwEnvFlag != "" {
		fmt.Fprintf(&b, "- 環境 (environment, bare proxy and sekisho alike): %s\n", *gwEnvFlag)
	}
	fmt.Fprintf(&b, "- sekisho: `sekisho serve` (separate process), passkey session cookie, policy decision, audit trail on; wrk, nginx, the upstream and the bare proxy share the same 2 cores\n\n")
	fmt.Fprintf(&b, "| 対象 (target) | req/s | p50 | p99 | プロセスの CPU 時間 / 要求 (process CPU per request) |\n|---|---:|---:|---:|---:|\n")
	meds := map[string]result{}
	for _, t := range targets {
		m := median(t.results)
		meds[t.name] = m
		cpu := "—"
		if m.cpu > 0 {
			cpu = fmt.Sprintf("%.1f µs", float64(m.cpu)/float64(time.Microsecond))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %v | %v | %s |\n", t.name, m.rps, m.p50.Round(time.Microsecond), m.p99.Round(time.Microsecond), cpu)
	}
	nginx, bare, pooled := meds[targets[tNginx].name], meds[targets[tBare].name], meds[targets[tPooled].name]
	fmt.Fprintf(&b, "\n| 比 (ratio) | throughput vs bare ReverseProxy (target ≥ 1.0) | vs bare with pooled buffers | throughput vs nginx (target ≥ 0.5) | p99 vs nginx (target ≤ 1.5) |\n|---|---:|---:|---:|---:|\n")
	for _, t := range []*target{targets[tSek], targets[tSync], targets[tFloor], targets[tContract]} {
		m := meds[t.name]
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %.2f |\n", t.name, m.rps/bare.rps, m.rps/pooled.rps, m.rps/nginx.rps, float64(m.p99)/float64(nginx.p99))
	}
	// The same ratio round by round: each round measures the targets one
	// after the other, so a round's ratio shares that round's machine load.
	fmt.Fprintf(&b, "\n回ごとの比 (per-round ratio, class 2 / bare; class 2 / bare pooled):")
	for r := range targets[tSek].results {
		s := targets[tSek].results[r].rps
		fmt.Fprintf(&b, " %.2f; %.2f", s/targets[tBare].results[r].rps, s/targets[tPooled].results[r].rps)
		if r < len(targets[tSek].results)-1 {
			fmt.Fprintf(&b, " |")
		}
	}
	fmt.Fprintf(&b, "\n")
	// The p99 target round by round too: the median above can fall inside
	// it while single rounds do not, and "met" should mean most rounds.
	within := 0
	fmt.Fprintf(&b, "\n回ごとの p99 の比 (per-round p99 ratio, class 2 / nginx, target ≤ 1.5):")
	for r := range targets[tSek].results {
		q := float64(targets[tSek].results[r].p99) / float64(targets[tNginx].results[r].p99)
		if q <= 1.5 {
			within++
		}
		fmt.Fprintf(&b, " %.2f", q)
	}
	fmt.Fprintf(&b, " → %d / %d 回が目標内 (rounds within the target)\n", within, len(targets[tSek].results))
	// What the same bytes cost with next to no proxy: the part of the gap
	// to nginx that the contract's headers, not sekisho's work, account for.
	fmt.Fprintf(&b, "\n同じバイトの床の回ごとの p99 の比 (per-round p99 ratio of the floor with sekisho's bytes / nginx; class 2 / that floor):")
	for r := range targets[tSek].results {
		c := float64(targets[tContract].results[r].p99)
		fmt.Fprintf(&b, " %.2f; %.2f", c/float64(targets[tNginx].results[r].p99), float64(targets[tSek].results[r].p99)/c)
		if r < len(targets[tSek].results)-1 {
			fmt.Fprintf(&b, " |")
		}
	}
	fmt.Fprintf(&b, "\n")
	// The same against nginx with its default access log: context, not
	// the judgement (the targets above are against nginx without a log).
	nlog := meds[targets[tNginxLog].name]
	sek := meds[targets[tSek].name]
	fmt.Fprintf(&b, "\n参考: アクセスログを既定のとおり有効にした nginx との比 (for reference, against nginx with its default access log; the targets are judged against nginx without one, above): スループット (throughput) %.2f、p99 %.2f; nginx のログによるスループットの低下 (what the log costs nginx) %.1f%%; 回ごとの p99 の比 (per round):",
		sek.rps/nlog.rps, float64(sek.p99)/float64(nlog.p99), 100*(1-nlog.rps/nginx.rps))
	for r := range targets[tSek].results {
		fmt.Fprintf(&b, " %.2f", float64(targets[tSek].results[r].p99)/float64(targets[tNginxLog].results[r].p99))
	}
	fmt.Fprintf(&b, "\n")
	fmt.Fprintf(&b, "\nCPU 時間の比 (CPU per request, class 2 / bare; class 2 / bare pooled): %.2f; %.2f\n",
		float64(meds[targets[tSek].name].cpu)/float64(bare.cpu), float64(meds[targets[tSek].name].cpu)/float64(pooled.cpu))
	if len(targets) > tTLSNoFast {
		tn, tb, ts := meds[targets[tTLSNginx].name], meds[targets[tTLSPooled].name], meds[targets[tTLSSek].name]
		fmt.Fprintf(&b, "\nTLS の比 (TLS variant, HTTP/1.1 over TLS with the device certificate, Go load generator -c%d; the same targets as above over TLS, not comparable with the wrk rows): sekisho / nginx %.2f (p99 %.2f), sekisho / bare pooled %.2f, bare pooled / nginx %.2f; CPU per request sekisho / bare pooled %.2f\n",
			*conns, ts.rps/tn.rps, float64(ts.p99)/float64(tn.p99), ts.rps/tb.rps, tb.rps/tn.rps, float64(ts.cpu)/float64(tb.cpu))
		tf := meds[targets[tTLSNoFast].name]
		fmt.Fprintf(&b, "\nTLS での高速経路の効果 (what the fast path buys over TLS, class 2): on (the default) %.0f req/s, %.1f µs CPU per request; off %.0f req/s, %.1f µs → %.2f× the throughput\n",
			ts.rps, float64(ts.cpu)/float64(time.Microsecond), tf.rps, float64(tf.cpu)/float64(time.Microsecond), ts.rps/tf.rps)
	}
	withMon, noMon := meds[targets[tSek].name], meds[targets[tNoMon].name]
	fmt.Fprintf(&b, "\n監視ルールの費用 (monitoring cost, target ≤ 5%%): monitoring on %.0f req/s vs off %.0f req/s → %.1f%%\n",
		withMon.rps, noMon.rps, 100*(1-withMon.rps/noMon.rps))
	offFast := meds[targets[tNoFast].name]
	fmt.Fprintf(&b, "\n高速経路の効果 (what the fast path buys, class 2): server.fast_path on (the default) %.0f req/s, %.1f µs CPU per request; off (net/http serves every request) %.0f req/s, %.1f µs → %.2f× the throughput\n",
		withMon.rps, float64(withMon.cpu)/float64(time.Microsecond), offFast.rps, float64(offFast.cpu)/float64(time.Microsecond), withMon.rps/offFast.rps)
	for _, m := range mem {
		fmt.Fprintf(&b, "\nメモリ (memory), %s: %d 本のアイドル keep-alive 接続で RSS %.1f MiB (計測前 %.1f MiB; ヒープ %.1f MiB, スタック %.1f MiB; target ≤ 150 MiB)。計測後、100 本に 1 本の接続で次の要求: %d/%d が 200 (afterwards every 100th connection sent its next request: %d of %d answered 200)\n",
			m.name, *idle, mib(m.rss), mib(m.base), mib(m.heapInuse), mib(m.stack), m.answered, m.asked, m.answered, m.asked)
	}
	if len(open) > 0 {
		openReport(&b, open, median(targets[tSek].results).rps)
	}
	for _, t := range targets {
		if t.compare {
			compareReport(&b, partner(targets, t), t)
		}
		if t.users {
			usersReport(&b, targets[tSek], t)
		}
	}
	extra := ""
	if *procs > 0 {
		extra = fmt.Sprintf(" -gomaxprocs %d", *procs)
	}
	if *gwEnvFlag != "" {
		extra += " -gwenv " + *gwEnvFlag
	}
	if *idleTLS {
		extra += " -idle-tls"
	}
	if *idleH2 {
		extra += " -idle-h2"
	}
	if *compare != "" {
		extra += " -compare " + *compare
	}
	if *users > 0 {
		extra += " -users " + strconv.Itoa(*users)
	}
	if *settle != time.Second {
		extra += " -settle " + settle.String()
	}
	if !*tlsLoad {
		extra += " -tls=false"
	}
	if *idle != 10000 {
		extra += " -idle " + strconv.Itoa(*idle)
	}
	if r := strings.TrimSpace(*ratesFlag); r == "" || r == "none" {
		extra += " -rates none"
	} else {
		extra += " -rates " + r
	}
	fmt.Fprintf(&b, "\n再現方法 (reproduce): `go run ./scripts/bench -duration %s -rounds %d -conns %d%s`\n", *duration, *rounds, *conns, extra)
	return b.String()
}

// The report replaces the text between these markers in the output file,
// so the rest of docs/performance.md (micro-benchmarks, explanations) stays.
const (
	markStart = "<!-- bench:start (written by go run ./scripts/bench) -->"
	markEnd   = "<!-- bench:end -->"
)

func writeSection(path, report string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(old)
	section := markStart + "\n" + report + "\n" + markEnd
	i, j := strings.Index(text, markStart), strings.Index(text, markEnd)
	if i >= 0 && j > i {
		text = text[:i] + section + text[j+len(markEnd):]
	} else {
		text = strings.TrimRight(text, "\n") + "\n\n" + section + "\n"
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

func freePorts(n int) []int {
	var ports []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

func waitPort(p int) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on port %d", p)
}

func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < 65536 {
		l.Cur = min(65536, l.Max)
		if l.Max < 65536 && os.Geteuid() == 0 {
			l.Max, l.Cur = 65536, 65536
		}
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// roundOrder is the order of round r. The targets are measured in their
// own order, except that sekisho's class 2 and the floor with sekisho's
// bytes come right after nginx (and the TLS class 2 right after TLS
// nginx): the targets are judged by their ratios to nginx round by round,
// and two runs measured next to each other share more of the machine's
// state than two runs half a round apart. Each of -compare's targets comes
// right after the working tree's class 2 (over TLS: its TLS class 2). Odd
// rounds are the reverse, which cancels what a place in the round gives:
// every pair is measured in both orders, so a drift that is steady over
// two rounds falls equally on both, and no target always inherits what
// the same other one leaves behind.
func roundOrder(targets []*target, r int) []*target {
	var own, cmps, many []*target
	for _, t := range targets {
		switch {
		case t.compare:
			cmps = append(cmps, t)
		case t.users:
			many = append(many, t)
		default:
			own = append(own, t)
		}
	}
	after := map[int][]int{tNginx: {tSek, tContract}, tTLSNginx: {tTLSSek}}
	moved := map[int]bool{tSek: true, tContract: true, tTLSSek: true}
	order := make([]*target, 0, len(targets))
	for i, t := range own {
		if moved[i] {
			continue
		}
		order = append(order, t)
		for _, j := range after[i] {
			if j < len(own) {
				order = append(order, own[j])
			}
		}
	}
	for _, c := range cmps {
		order = slices.Insert(order, slices.Index(order, partner(targets, c))+1, c)
	}
	for _, u := range many {
		order = slices.Insert(order, slices.Index(order, targets[tSek])+1, u)
	}
	if r%2 == 1 {
		slices.Reverse(order)
	}
	return order
}

// usersScript is the wrk script of -users, written when the main sekisho
// starts.
var usersScript string

// manyUsers creates n users (bench-00001…) with a session each, as the
// bench user is made, and writes a wrk script that sends each request
// with the next user's cookie. The requests are formatted once, in init:
// per request, wrk only returns the next string, as it does for a target
// without a script, so that wrk's own cost stays about the same.
func manyUsers(ctx context.Context, st store.Store, sm *session.Manager, n int, path string) (string, error) {
	var b strings.Builder
	b.WriteString("local cookies = {\n")
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("bench-%05d", i)
		if err := st.CreateUser(ctx, &store.User{ID: id, DisplayName: "計測 " + id, Department: "情報政策課", Roles: []string{"staff"}}); err != nil && !errors.Is(err, store.ErrExists) {
			return "", err
		}
		tok, err := sm.Issue(ctx, &session.Claims{User: id, AMR: []string{"hwk", "user", "uv"}})
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "  %q,\n", tok)
	}
	b.WriteString(`}
local reqs, i = {}, 0
function init(args)
  for k, c in ipairs(cookies) do
    local h = {}
    for name, v in pairs(wrk.headers) do h[name] = v end
    h["Cookie"] = "__Host-sekisho=" .. c
    reqs[k] = wrk.format(nil, nil, h)
  end
  i = math.random(#reqs) - 1
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
`)
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// partner is the working tree's target a -compare target is measured
// against.
func partner(targets []*target, c *target) *target {
	if c.tls != nil {
		return targets[tTLSSek]
	}
	return targets[tSek]
}

// compareReport prints the working tree's sekisho against the one built
// from -compare's revision, round by round (each round measures the two
// under that round's load).
// usersReport prints -users' class 2 against class 2 with one user, round
// by round (the same process, measured one right after the other).
func usersReport(b *strings.Builder, one, many *target) {
	var rps, cpu, p99 []float64
	for r := range many.results {
		rps = append(rps, many.results[r].rps/one.results[r].rps)
		cpu = append(cpu, float64(many.results[r].cpu)/float64(one.results[r].cpu))
		p99 = append(p99, float64(many.results[r].p99)/float64(one.results[r].p99))
	}
	fmt.Fprintf(b, "\n利用者が多いとき (%s / one user, round by round):", many.name)
	for _, x := range []struct {
		name string
		q    []float64
	}{{"スループット (throughput)", rps}, {"CPU 時間 / 要求 (CPU per request)", cpu}, {"p99", p99}} {
		fmt.Fprintf(b, " %s", x.name)
		for _, q := range x.q {
			fmt.Fprintf(b, " %.2f", q)
		}
		fmt.Fprintf(b, " (中央値 median %.2f);", medianOf(x.q))
	}
	fmt.Fprintf(b, "\n")
}

func compareReport(b *strings.Builder, cur, old *target) {
	var rps, cpu []float64
	for r := range cur.results {
		rps = append(rps, cur.results[r].rps/old.results[r].rps)
		cpu = append(cpu, float64(cur.results[r].cpu)/float64(old.results[r].cpu))
	}
	fmt.Fprintf(b, "\n変更の比較 (-compare: this tree's sekisho / %s, round by round): スループット (throughput)", old.name)
	for _, q := range rps {
		fmt.Fprintf(b, " %.2f", q)
	}
	fmt.Fprintf(b, " (中央値 median %.2f); CPU 時間 / 要求 (CPU per request)", medianOf(rps))
	for _, q := range cpu {
		fmt.Fprintf(b, " %.2f", q)
	}
	fmt.Fprintf(b, " (中央値 median %.2f)\n", medianOf(cpu))
}

func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
