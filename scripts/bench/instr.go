package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The instruction count: what one request costs the gateway in
// instructions, counted by valgrind's callgrind, which counts the same for
// the same binary and input whatever else the shared machine is doing. The
// wall-clock rows of the report swing by tens of percent between runs;
// this figure does not, so it is the one to compare before and after a
// change to the request path (go run ./scripts/bench -instructions 5000).
//
// Each proxy runs alone under callgrind (about fifty times slower, so the
// count, not the time, is the result). After a warm-up (500 requests, or
// twice n if that is fewer) the counters are
// zeroed (callgrind_control -z), n requests are sent over 4 keep-alive
// connections, and the counters are dumped: instructions per request are
// the dump's total over n, everything in the process included (the audit
// writer, the garbage collector, the runtime's scheduler), less what the
// process does by the clock in the same time without requests. The
// kernel's work (system calls, TCP) is not counted, and SHA-256 is counted
// in its AVX2 form (valgrind does not run the SHA extensions the machine
// uses).

var instrOut = flag.String("instructions-out", "", "with -instructions: also keep each callgrind dump in this directory (callgrind_annotate reads them)")

var instrN = flag.Int("instructions", 0, "instead of the load runs: count the instructions per request of the pooled bare proxy and of sekisho with the fast path (the default) and without it under valgrind's callgrind, over this many requests each")

type instrTarget struct {
	name    string
	start   func(wrap []string) (*exec.Cmd, error)
	port    int
	headers []string
}

func runInstructions(n int) error {
	if _, err := exec.LookPath("valgrind"); err != nil {
		if os.Geteuid() != 0 {
			return errors.New("valgrind is missing: apt-get install valgrind")
		}
		cmd := exec.Command("apt-get", "install", "-y", "-qq", "valgrind")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get install valgrind: %w", err)
		}
	}
	work, err := os.MkdirTemp("", "sekisho-instr-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ports := freePorts(9) // 0 upstream, 1 bare, 2-5 and 7-8 sekisho, 6 fasthttp
	upURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	var running []*exec.Cmd
	stopAll := func() {
		for _, p := range running {
			_ = p.Process.Signal(os.Interrupt)
			_ = p.Wait()
		}
		running = nil
	}
	defer stopAll()
	start := func(wrap []string, name string, args ...string) (*exec.Cmd, error) {
		argv := append(append(append([]string(nil), wrap...), name), args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		// Go's asynchronous preemption signals slow valgrind down and
		// change nothing the count is for.
		cmd.Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1")
		if *gwEnvFlag != "" {
			cmd.Env = append(cmd.Env, strings.Split(*gwEnvFlag, ",")...) // -gwenv, as in the load runs
		}
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting %s: %w", argv[0], err)
		}
		running = append(running, cmd)
		return cmd, nil
	}
	if _, err := start(nil, self, "-role", "upstream", "-addr", fmt.Sprintf("127.0.0.1:%d", ports[0])); err != nil {
		return err
	}
	targets := []*instrTarget{
		{name: "httputil.ReverseProxy (bare, pooled copy buffers)", port: ports[1], start: func(wrap []string) (*exec.Cmd, error) {
			return start(wrap, self, "-role", "bare-pooled", "-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]), "-target", upURL)
		}},
	}
	// What the fastest Go HTTP library costs as a proxy with nothing else
	// to do: a floor for the instruction count, not a product.
	targets = append(targets, &instrTarget{name: "fasthttp proxy (fasthttp.Server + HostClient, nothing else)", port: ports[6], start: func(wrap []string) (*exec.Cmd, error) {
		return start(wrap, self, "-role", "fasthttp", "-addr", fmt.Sprintf("127.0.0.1:%d", ports[6]), "-target", upURL)
	}})
	// The monitoring rules' cost (target ≤ 5% of throughput), which the
	// wall-clock runs cannot resolve, is the difference of the first and
	// the third.
	sekPorts := [][2]int{{ports[2], ports[3]}, {ports[4], ports[5]}, {ports[7], ports[8]}}
	for i, m := range []struct{ name, setting, extra string }{
		{"sekisho (class 2, defaults)", "", ""},
		{"sekisho, fast path off (class 2)", "fast_path: false", ""},
		{"sekisho, monitoring off (class 2)", "", "monitor: {enabled: false}\n"},
	} {
		port, metrics := sekPorts[i][0], sekPorts[i][1]
		t := &instrTarget{name: m.name, port: port}
		dir := "sekisho-" + strconv.Itoa(i)
		t.start = func(wrap []string) (*exec.Cmd, error) {
			cmd, cookie, err := startSekisho(work, dir, port, metrics, 0, upURL, m.extra, func(name string, args ...string) (*exec.Cmd, error) {
				return start(wrap, name, args...)
			}, "", m.setting)
			t.headers = []string{"Host: bench.gw.localhost", "Cookie: __Host-sekisho=" + cookie}
			return cmd, err
		}
		targets = append(targets, t)
	}
	fmt.Printf("命令数 / instructions per request (valgrind --tool=callgrind, %d requests over 4 keep-alive connections after a warm-up; user space of the proxy process only, less its work by the clock over the same time without requests)\n\n", n)
	fmt.Println("| 対象 (target) | instructions / request |")
	fmt.Println("|---|---:|")
	for _, t := range targets {
		ir, err := countInstructions(t, work, n)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		fmt.Printf("| %s | %.0f |\n", t.name, ir)
	}
	return nil
}

func countInstructions(t *instrTarget, work string, n int) (float64, error) {
	out := filepath.Join(work, fmt.Sprintf("callgrind.%d.out", t.port))
	cmd, err := t.start([]string{"valgrind", "--tool=callgrind", "--callgrind-out-file=" + out})
	if err != nil {
		return 0, err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", t.port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return 0, errors.New("did not start under valgrind within 3 minutes")
		}
		time.Sleep(500 * time.Millisecond)
	}
	if t.headers == nil {
		t.headers = []string{"Host: bench.gw.localhost"}
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", t.port)
	if err := sendRequests(url, t.headers, 4, min(500, 2*n)); err != nil {
		return 0, fmt.Errorf("warm-up: %w", err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	if b, err := exec.Command("callgrind_control", "-z", pid).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("callgrind_control -z: %v: %s", err, b)
	}
	began := time.Now()
	if err := sendRequests(url, t.headers, 4, n); err != nil {
		return 0, err
	}
	took := time.Since(began)
	if b, err := exec.Command("callgrind_control", "-d", pid).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("callgrind_control -d: %v: %s", err, b)
	}
	total, err := dumpTotal(out + ".1")
	if err != nil {
		return 0, err
	}
	// What the process does by the clock whether requests come or not
	// (revocation and device-registry polling, metrics) is counted over
	// the same time without requests and taken off: under callgrind the
	// requests take fifty times longer, and so would their share of it.
	if b, err := exec.Command("callgrind_control", "-z", pid).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("callgrind_control -z: %v: %s", err, b)
	}
	time.Sleep(took)
	if b, err := exec.Command("callgrind_control", "-d", pid).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("callgrind_control -d: %v: %s", err, b)
	}
	idle, err := dumpTotal(out + ".2")
	if err != nil {
		return 0, err
	}
	total -= idle
	if *instrOut != "" {
		b, err := os.ReadFile(out + ".1")
		if err != nil {
			return 0, err
		}
		name := strings.NewReplacer(" ", "-", "(", "", ")", "", ",", "").Replace(t.name)
		if err := os.WriteFile(filepath.Join(*instrOut, name+".callgrind"), b, 0o644); err != nil {
			return 0, err
		}
	}
	return float64(total) / float64(n), nil
}

// sendRequests sends n requests over conns keep-alive connections, each
// answered with 200 before the next is sent on the same connection.
func sendRequests(rawURL string, headers []string, conns, n int) error {
	req, addr, err := rawRequest(rawURL, headers)
	if err != nil {
		return err
	}
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		count := n / conns
		if i < n%conns {
			count++
		}
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for j := 0; j < count; j++ {
				if _, err := io.WriteString(c, req); err != nil {
					errs <- err
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- err
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("status %d, %v", resp.StatusCode, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for i := 0; i < conns; i++ {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

// dumpTotal reads the instruction total of a callgrind dump.
func dumpTotal(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "summary: "); ok {
			return strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "totals: "); ok {
			return strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no summary line", path)
}

// contractAssertion stands for sekisho's assertion in this bench (ES256,
// kid, the claims of DESIGN.md): the same length, 562 base64url
// characters with its two dots.
var contractAssertion = strings.Repeat("A", 100) + "." + strings.Repeat("A", 360) + "." + strings.Repeat("A", 100)

// contractHandler is the handler of runFasthttp's floor with sekisho's
// bytes, forwarding to c, whose address is upHost: DESIGN.md's upstream
// headers (X-Forwarded-*, X-Request-Id, the X-Sekisho-* convenience
// headers and an assertion of the real one's length, fixed here).
func contractHandler(c *fasthttp.HostClient, upHost string) fasthttp.RequestHandler {
	var seq atomic.Uint64
	return func(ctx *fasthttp.RequestCtx) {
		h := &ctx.Request.Header
		if len(h.Peek("Cookie")) == 0 {
			ctx.Error("no session", fasthttp.StatusUnauthorized)
			return
		}
		h.Del("Cookie")
		h.Set("X-Forwarded-For", "127.0.0.1")
		h.Set("X-Forwarded-Host", string(h.Host()))
		h.Set("X-Forwarded-Proto", "http")
		var id [16]byte
		n := seq.Add(1)
		for i := range id {
			id[i] = "abcdefghijklmnopqrstuvwxyz234567"[n>>(5*(i%12))&31]
		}
		h.SetBytesV("X-Request-Id", id[:])
		h.Set("X-Sekisho-User", "bench")
		h.Set("X-Sekisho-Roles", "staff")
		h.Set("X-Sekisho-Class", "2")
		h.Set("X-Sekisho-Assertion", contractAssertion)
		ctx.Request.SetHost(upHost) // as sekisho: the upstream's host, not the client's
		if err := c.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadGateway)
		}
	}
}

// runFasthttp is a proxy built on fasthttp alone (its server and its
// HostClient), for the instruction count's floor. With contract it is the
// floor with sekisho's bytes (contractHandler): it takes the same client
// request (Host and the ~450-byte session cookie, which it only removes,
// verifying nothing) and adds the headers sekisho adds upstream. Nothing
// is decided or recorded: what the same bytes cost the shared machine
// (wrk sending the cookie, the upstream parsing the headers) with a proxy
// that costs next to nothing itself.
func runFasthttp(addr, upstream string, contract bool) {
	u, err := url.Parse(upstream)
	if err != nil {
		log.Fatal(err)
	}
	c := &fasthttp.HostClient{Addr: u.Host, MaxConns: 1024}
	h := func(ctx *fasthttp.RequestCtx) {
		if err := c.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadGateway)
		}
	}
	if contract {
		h = contractHandler(c, u.Host)
	}
	log.Fatal(fasthttp.ListenAndServe(addr, h))
}
