package main

// The open-loop measurement: latency at the same offered rate for every
// target, as wrk2 measures it (Debian ships no wrk2, hence this generator).
//
// In the closed-loop saturation runs each of the -conns connections sends
// its next request only when the previous answer is read, so latency there
// is conns/throughput (Little's law) and its p99 only restates the
// throughput gap. Here requests are due on a fixed schedule whatever the
// target does, and each latency runs from the request's scheduled send
// time: a request that waited behind a slow answer counts that wait
// (coordinated omission corrected).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var ratesFlag = flag.String("rates", "0.25,0.5,0.75", "open-loop latency at these fractions of sekisho class 2's median saturation req/s, for nginx, the pooled bare proxy and sekisho alike ('' or 'none': skip)")

var (
	openURL    = flag.String("open", "", "instead of the load runs: one open-loop run against this URL (a target of -hold), at -open-rate for -duration, with -open-header lines; prints p50, p99, p99.9, max and the generator's lag")
	openRateF  = flag.Float64("open-rate", 5000, "with -open: requests per second")
	openHeader = flag.String("open-header", "", "with -open: extra request headers, separated by newlines or '|' (e.g. 'Host: bench.gw.localhost|Cookie: ...')")
)

// runOpenOnly is -open: one open-loop run, printed on one line, so that two
// held targets can be compared by hand in alternating runs.
func runOpenOnly() error {
	var hs []string
	for _, h := range strings.FieldsFunc(*openHeader, func(r rune) bool { return r == '\n' || r == '|' }) {
		if h = strings.TrimSpace(h); h != "" {
			hs = append(hs, h)
		}
	}
	warm := min(time.Second, *duration/4)
	r, err := runOpen(context.Background(), openLoad{URL: *openURL, Headers: hs, Rate: *openRateF, Conns: *conns, Duration: *duration, Warmup: warm})
	if err != nil {
		return err
	}
	fmt.Printf("%s rate %.0f achieved %.0f p50 %v p99 %v p99.9 %v max %v lag-p99 %v\n", *openURL, r.offered, r.achieved, r.p50, r.p99, r.p999, r.max, r.lag)
	return nil
}

// openLoad describes one open-loop run.
type openLoad struct {
	// URL is the target, http:// or https://.
	URL string
	// Headers are extra request headers, "Name: value"; a Host header
	// replaces the URL's host in the request.
	Headers []string
	// TLS configures the connections of an https URL; nil: tls.Config{}.
	TLS *tls.Config
	// Rate is the offered load in requests per second over all
	// connections; it must be positive.
	Rate float64
	// Conns is the number of keep-alive connections; 0 means 64.
	// Request k of the schedule is due at start + k/Rate and sent on
	// connection k mod Conns.
	Conns int
	// Duration is the whole run, warm-up included.
	Duration time.Duration
	// Warmup: requests due in the first Warmup are sent but not counted.
	Warmup time.Duration
}

// openResult is what one open-loop run measured over the requests due
// after the warm-up.
type openResult struct {
	offered  float64 // the schedule's rate, requests per second
	achieved float64 // requests due after the warm-up and answered by the end, per second
	// Latencies from each request's scheduled send time to its answer
	// fully read.
	p50, p99, p999, max time.Duration
	requests            int // latencies counted
	// unsent: requests due before the end that their connection, still
	// waiting for earlier answers, could not send in time.
	unsent int
	// lag is the 99th percentile of the generator's own delay in sending
	// (send time − the later of the due time and the previous answer):
	// timer wake-ups and scheduling on the shared machine, a floor under
	// every latency that is not the target's.
	lag time.Duration
	// errors: connections that failed (I/O, malformed answer, a status
	// other than 200). Any error also makes runOpen return an error.
	errors int
}

// connOut is what one connection of an open-loop run recorded.
type connOut struct {
	lat, lag  []time.Duration
	completed int
	unsent    int
	err       error
}

// rawRequest is the HTTP/1.1 GET request for rawURL with headers (a Host
// header replaces the URL's host), and the address to dial.
func rawRequest(rawURL string, headers []string) (req, addr string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", err
	}
	host := u.Host
	var hdr strings.Builder
	for _, h := range headers {
		if v, ok := strings.CutPrefix(h, "Host: "); ok {
			host = v
			continue
		}
		hdr.WriteString(h + "\r\n")
	}
	return fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", u.RequestURI(), host, hdr.String()), u.Host, nil
}

// runOpen runs one open-loop load: it opens l.Conns keep-alive connections,
// then sends requests on the schedule for l.Duration. A connection still
// waiting for an answer when its next request is due sends that request as
// soon as the answer is complete. Requests due after the end are not sent;
// answers in flight at the end are awaited. Any connection's failure fails
// the run.
func runOpen(ctx context.Context, l openLoad) (openResult, error) {
	if l.Conns == 0 {
		l.Conns = 64
	}
	if l.Rate <= 0 || l.Conns < 0 || l.Duration <= l.Warmup || l.Warmup < 0 {
		return openResult{}, fmt.Errorf("open-loop load: invalid rate %v, conns %d, duration %v, warm-up %v", l.Rate, l.Conns, l.Duration, l.Warmup)
	}
	req, addr, err := rawRequest(l.URL, l.Headers)
	if err != nil {
		return openResult{}, err
	}
	useTLS := strings.HasPrefix(l.URL, "https://")
	cs := make([]net.Conn, 0, l.Conns)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	// Every connection is open (and its TLS handshake done) before the
	// schedule starts, so no latency includes a connection setup.
	var d net.Dialer
	for i := 0; i < l.Conns; i++ {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return openResult{}, fmt.Errorf("open-loop load: connection %d: %w", i, err)
		}
		if useTLS {
			cfg := l.TLS
			if cfg == nil {
				cfg = &tls.Config{}
			}
			tc := tls.Client(c, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return openResult{}, fmt.Errorf("open-loop load: connection %d: TLS handshake: %w", i, err)
			}
			c = tc
		}
		cs = append(cs, c)
	}
	t0 := time.Now().Add(10 * time.Millisecond)
	end := t0.Add(l.Duration)
	// Answers in flight at the end get this long before the run fails.
	const grace = 10 * time.Second
	per := int(math.Ceil(l.Rate*l.Duration.Seconds()/float64(l.Conns))) + 1
	ps := make([]*pconn, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		c.SetDeadline(end.Add(grace))
		ps[i] = &pconn{c: c, req: []byte(req), counted: t0.Add(l.Warmup), end: end, prev: t0,
			out: connOut{lat: make([]time.Duration, 0, per), lag: make([]time.Duration, 0, per)}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps[i].read()
		}()
	}
	// Cancelling ctx ends the run early: the deadlines wake every reader.
	stop := context.AfterFunc(ctx, func() {
		for _, c := range cs {
			c.SetDeadline(time.Now())
		}
	})
	pace(ctx, ps, l.Rate, t0, end)
	for _, p := range ps {
		p.finish()
	}
	wg.Wait()
	stop()
	var all, lags []time.Duration
	res := openResult{offered: l.Rate}
	var completed int
	var firstErr error
	for i, p := range ps {
		o := p.out
		all = append(all, o.lat...)
		lags = append(lags, o.lag...)
		completed += o.completed
		res.unsent += o.unsent
		if o.err != nil {
			res.errors++
			if firstErr == nil {
				firstErr = fmt.Errorf("connection %d: %w", i, o.err)
			}
		}
	}
	res.achieved = float64(completed) / (l.Duration - l.Warmup).Seconds()
	res.requests = len(all)
	if firstErr != nil {
		return res, fmt.Errorf("open-loop load: %d of %d connections failed; first: %w", res.errors, l.Conns, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if len(all) == 0 {
		return res, errors.New("open-loop load: no request was due after the warm-up")
	}
	slices.Sort(all)
	slices.Sort(lags)
	res.p50, res.p99, res.p999 = quantile(all, 0.50), quantile(all, 0.99), quantile(all, 0.999)
	res.max = all[len(all)-1]
	res.lag = quantile(lags, 0.99)
	return res, nil
}

// pace schedules request k at t0 + k/rate on connection k mod len(ps),
// until end. It sleeps with nanosleep(2) rather than a Go timer: the
// runtime's timers wake an idle process with millisecond resolution
// (epoll_wait's timeout), which would add up to a millisecond to every
// latency measured. And it writes the request itself when the connection
// is idle, so that no goroutine hand-off delays it.
func pace(ctx context.Context, ps []*pconn, rate float64, t0, end time.Time) {
	for k := 0; ctx.Err() == nil; k++ {
		// Computed from k, not accumulated, so the schedule does not drift.
		due := t0.Add(time.Duration(float64(k) / rate * float64(time.Second)))
		if !due.Before(end) {
			return
		}
		for d := time.Until(due); d > 0; d = time.Until(due) {
			ts := syscall.NsecToTimespec(d.Nanoseconds())
			_ = syscall.Nanosleep(&ts, nil) // EINTR: the loop sleeps the rest
		}
		ps[k%len(ps)].schedule(due)
	}
}

// pconn is one connection of an open-loop run: the pacer sends a request
// on it when it is idle, or queues the request's due time when an answer
// is in flight; its reader then sends the next queued request as soon as
// that answer is read.
type pconn struct {
	c            net.Conn
	req          []byte
	counted, end time.Time // latencies of requests due before counted are not recorded

	mu       sync.Mutex
	busy     bool        // a request is in flight
	due      time.Time   // its due time
	ready    time.Time   // the later of due and the previous answer
	sent     time.Time   // when it was sent
	prev     time.Time   // when the previous answer was complete
	queue    []time.Time // due times waiting for the answer in flight
	finished bool        // the pacer is done
	out      connOut
}

// schedule is the pacer's part: the request due at due is due now.
func (p *pconn) schedule(due time.Time) {
	p.mu.Lock()
	now := time.Now()
	switch {
	case p.out.err != nil:
		p.mu.Unlock()
		return
	case !now.Before(p.end):
		p.out.unsent++ // the pacer itself fell behind
		p.mu.Unlock()
		return
	case p.busy:
		p.queue = append(p.queue, due)
		p.mu.Unlock()
		return
	}
	p.busy, p.due, p.ready, p.sent = true, due, due, now
	if p.prev.After(due) {
		p.ready = p.prev
	}
	p.mu.Unlock()
	// The answer cannot arrive, and the reader cannot write, before this
	// write is done.
	if _, err := p.c.Write(p.req); err != nil {
		p.fail(fmt.Errorf("sending: %w", err))
	}
}

// fail records the connection's first error and wakes its reader.
func (p *pconn) fail(err error) {
	p.mu.Lock()
	if p.out.err == nil {
		p.out.err = err
	}
	p.mu.Unlock()
	p.c.SetDeadline(time.Now())
}

// finish tells the reader that no request will come any more; an idle
// reader is woken to return.
func (p *pconn) finish() {
	p.mu.Lock()
	p.finished = true
	idle := !p.busy
	p.mu.Unlock()
	if idle {
		p.c.SetReadDeadline(time.Now())
	}
}

// read reads the answers and records the latencies, until the pacer is
// finished and no answer is in flight, or an error.
func (p *pconn) read() {
	br := bufio.NewReaderSize(p.c, 16<<10)
	for {
		err := readAnswer(br)
		done := time.Now()
		p.mu.Lock()
		if err != nil {
			if !(p.finished && !p.busy) && p.out.err == nil {
				p.out.err = err
			}
			p.mu.Unlock()
			return
		}
		if !p.busy {
			if p.out.err == nil {
				p.out.err = errors.New("an answer to no request")
			}
			p.mu.Unlock()
			return
		}
		if !p.due.Before(p.counted) {
			p.out.lat = append(p.out.lat, done.Sub(p.due))
			p.out.lag = append(p.out.lag, p.sent.Sub(p.ready))
		}
		if !p.due.Before(p.counted) && !done.After(p.end) {
			p.out.completed++
		}
		p.prev = done
		if len(p.queue) > 0 && done.Before(p.end) {
			p.due, p.ready = p.queue[0], done
			p.queue = p.queue[1:]
			if p.due.After(done) {
				p.ready = p.due // queued after the answer was read
			}
			p.sent = time.Now()
			p.mu.Unlock()
			if _, err := p.c.Write(p.req); err != nil {
				p.fail(fmt.Errorf("sending: %w", err))
				return
			}
			continue
		}
		// Behind schedule at the end: due but never sent.
		p.out.unsent += len(p.queue)
		p.queue = p.queue[:0]
		p.busy = false
		if p.finished {
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// quantile is the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// readAnswer reads one HTTP/1.1 answer from br — status line, headers and
// a Content-Length body, which it discards — and fails on anything else:
// a status other than 200, a chunked or unframed body, Connection: close.
// The generator keeps every connection open and must know where each
// answer ends.
func readAnswer(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("reading the status line: %w", err)
	}
	status := bytes.TrimRight(line, "\r\n")
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 ")) || len(status) < 12 || len(status) > 12 && status[12] != ' ' {
		return fmt.Errorf("malformed status line %q", status)
	}
	if string(status[9:12]) != "200" {
		return fmt.Errorf("answer %q, want 200", status)
	}
	n := int64(-1)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("reading the headers: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return fmt.Errorf("malformed header line %q", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if n >= 0 {
				return errors.New("two Content-Length headers")
			}
			n, err = strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("malformed Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			return fmt.Errorf("Transfer-Encoding %q: only Content-Length bodies are read", v)
		case bytes.EqualFold(k, []byte("Connection")) && bytes.Contains(bytes.ToLower(v), []byte("close")):
			return errors.New("the server closes the connection (Connection: close)")
		}
	}
	if n < 0 {
		return errors.New("answer without Content-Length")
	}
	if _, err := br.Discard(int(n)); err != nil {
		return fmt.Errorf("reading the body (%d bytes): %w", n, err)
	}
	return nil
}

// parseRates reads -rates: comma-separated fractions of the saturation
// throughput, each in (0, 1]; "" or "none" is none.
func parseRates(s string) ([]float64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var fs []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(v > 0 && v <= 1) {
			return nil, fmt.Errorf("-rates %q: %q is not a fraction in (0, 1]", s, f)
		}
		fs = append(fs, v)
	}
	return fs, nil
}

// openRate is the open-loop measurement at one offered rate.
type openRate struct {
	frac, rate float64
	targets    []*target
	results    [][]openResult // per target, one per round
}

// openWarmup is the part of each open-loop run that is not counted.
const openWarmup = time.Second

// measureOpen loads targets at each fraction of sat (requests per second),
// alternating the targets within each of -rounds rounds of -duration, with
// -conns connections.
func measureOpen(targets []*target, sat float64, fracs []float64) ([]openRate, error) {
	var rs []openRate
	for _, f := range fracs {
		or := openRate{frac: f, rate: f * sat, targets: targets, results: make([][]openResult, len(targets))}
		for r := 0; r < *rounds; r++ {
			for i, t := range targets {
				res, err := runOpen(context.Background(), openLoad{URL: t.url, Headers: t.headers, TLS: t.tls, Rate: or.rate,
					Conns: *conns, Duration: *duration, Warmup: openWarmup})
				if err != nil {
					return nil, fmt.Errorf("%s at %.0f req/s: %w", t.name, or.rate, err)
				}
				or.results[i] = append(or.results[i], res)
				log.Printf("open %.2f·S round %d %-52s offered %6.0f achieved %6.0f req/s  p50 %-9v p99 %-9v p99.9 %-9v max %-9v lag p99 %v unsent %d",
					f, r+1, t.name, res.offered, res.achieved, res.p50.Round(time.Microsecond), res.p99.Round(time.Microsecond),
					res.p999.Round(time.Microsecond), res.max.Round(time.Microsecond), res.lag.Round(time.Microsecond), res.unsent)
			}
		}
		rs = append(rs, or)
	}
	return rs, nil
}

// medianOpen is the median of each figure across rounds, taken separately.
func medianOpen(rs []openResult) openResult {
	pick := func(v func(openResult) float64) float64 {
		s := make([]float64, len(rs))
		for i, r := range rs {
			s[i] = v(r)
		}
		slices.Sort(s)
		return s[len(s)/2]
	}
	dur := func(v func(openResult) time.Duration) time.Duration {
		return time.Duration(pick(func(r openResult) float64 { return float64(v(r)) }))
	}
	return openResult{
		offered:  rs[0].offered,
		achieved: pick(func(r openResult) float64 { return r.achieved }),
		p50:      dur(func(r openResult) time.Duration { return r.p50 }),
		p99:      dur(func(r openResult) time.Duration { return r.p99 }),
		p999:     dur(func(r openResult) time.Duration { return r.p999 }),
		max:      dur(func(r openResult) time.Duration { return r.max }),
		lag:      dur(func(r openResult) time.Duration { return r.lag }),
		unsent:   int(pick(func(r openResult) float64 { return float64(r.unsent) })),
	}
}

// openReport writes the open-loop section: one table per rate, then the
// sekisho / nginx ratios. targets[0] must be nginx and the last sekisho.
func openReport(b *strings.Builder, rs []openRate, sat float64) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(b, "\n### 同じ到着率での遅延 / Latency at the same offered rate\n\n")
	fmt.Fprintf(b, "開ループ (open loop) の計測です。どの対象にも同じ一定の到着率で要求を送り (接続 %d 本、要求 k は開始から k/R 秒に予定)、\n", *conns)
	fmt.Fprintf(b, "遅延は予定の送信時刻から応答を読み終えるまでです (coordinated omission の補正、wrk2 と同じ考え方)。上の表の p99 は\n")
	fmt.Fprintf(b, "閉ループ (closed loop) の飽和時の値で、%d 本の接続では遅延 ≈ 接続数 / スループットなので、スループットの差を繰り返すだけです。\n", *conns)
	fmt.Fprintf(b, "(Open loop: every target gets the same fixed offered rate over %d keep-alive connections, request k due k/R s after the start,\n", *conns)
	fmt.Fprintf(b, "and each latency runs from the request's scheduled send time to its answer fully read, so waiting behind a slow answer counts\n")
	fmt.Fprintf(b, "(coordinated omission corrected, as wrk2). The saturation p99 above is closed loop: with %d connections it is ≈ connections / throughput.)\n\n", *conns)
	fmt.Fprintf(b, "- 基準 S (reference): sekisho class 2 の飽和スループットの中央値 (median saturation req/s, wrk rows) = %.0f req/s\n", sat)
	fmt.Fprintf(b, "- 各 %s、%d rounds、対象を交互に、最初の %v は数えない (each run %s, first %v discarded); 負荷生成器は Go (scripts/bench/rate.go)、同じ 2 コアを共有\n",
		*duration, *rounds, openWarmup, *duration, openWarmup)
	fmt.Fprintf(b, "- 「生成器の遅れ」は生成器自身の送信の遅れ (タイマーと共有 CPU) で、すべての遅延に含まれます (generator lag: its own delay in sending, part of every latency)\n")
	fmt.Fprintf(b, "- 達成 req/s は開始 %v 後から終了までに予定された要求のうち終了までに応答を読んだ数 / 秒; 95%% 未満は「未達」 (achieved: requests due after the warm-up answered by the end, per second; below 95%% of the offered rate is marked)\n", openWarmup)
	fmt.Fprintf(b, "- 200 以外の応答や通信の誤りがあれば計測全体を失敗とします: 誤り 0 (any non-200 or I/O error aborts the run: 0 errors)\n")
	for _, r := range rs {
		fmt.Fprintf(b, "\n#### %.2f·S = %.0f req/s\n\n", r.frac, r.rate)
		fmt.Fprintf(b, "| 対象 (target) | 達成 req/s (achieved) | p50 | p99 | p99.9 | 最大 (max) | 生成器の遅れ p99 (generator lag p99) |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for i, t := range r.targets {
			m := medianOpen(r.results[i])
			short := ""
			if m.achieved < 0.95*m.offered {
				short = " (未達 / short of the offered rate)"
			}
			fmt.Fprintf(b, "| %s | %.0f%s | %v | %v | %v | %v | %v |\n", t.name, m.achieved, short, m.p50.Round(time.Microsecond), m.p99.Round(time.Microsecond),
				m.p999.Round(time.Microsecond), m.max.Round(time.Microsecond), m.lag.Round(time.Microsecond))
		}
	}
	fmt.Fprintf(b, "\n| 到着率 (offered) | sekisho p99 / nginx p99 (target ≤ 1.5) | sekisho p50 / nginx p50 | fasthttp floor p99 / nginx p99 |\n|---|---:|---:|---:|\n")
	for _, r := range rs {
		n, s := medianOpen(r.results[0]), medianOpen(r.results[len(r.results)-1])
		fl := "—"
		for i, t := range r.targets {
			if t.name == floorName {
				fl = fmt.Sprintf("%.2f", float64(medianOpen(r.results[i]).p99)/float64(n.p99))
			}
		}
		fmt.Fprintf(b, "| %.2f·S = %.0f req/s | %.2f | %.2f | %s |\n", r.frac, r.rate, float64(s.p99)/float64(n.p99), float64(s.p50)/float64(n.p50), fl)
	}
}
