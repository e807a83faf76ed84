package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sekisho/sekisho/config"
)

// A syslog sink forwards the trail to a syslog server as RFC 5424 messages
// over TCP or TLS with octet-counting framing (RFC 6587 §3.4.1). It reads the
// local files, not the writer's queue, so a sink that is down never slows the
// trail; its position (file and offset) is kept in a small state file in
// the trail's directory and it catches up after an outage. Delivery is at
// least once: after a reconnect or restart the last few seconds are sent
// again (see resendWindow), and receivers de-duplicate by seq.
type syslogSink struct {
	name      string
	network   string // "tcp"
	addr      string
	tlsConf   *tls.Config
	dir       string
	statePath string
	notify    chan struct{}
	hostname  string
	t         *Trail
}

// sinkState is the sink's position in the trail.
type sinkState struct {
	File   string `json:"file"`
	Offset int64  `json:"offset"`
}

func newSyslogSink(t *Trail, sc config.Sink) (*syslogSink, error) {
	u, err := url.Parse(sc.Address)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("audit sink address %q: want tcp://host:port or tls://host:port", sc.Address)
	}
	s := &syslogSink{
		name:    u.Scheme + "://" + u.Host,
		network: "tcp",
		addr:    u.Host,
		dir:     t.cfg.Dir,
		notify:  make(chan struct{}, 1),
		t:       t,
	}
	switch u.Scheme {
	case "tcp":
	case "tls":
		host, _, _ := net.SplitHostPort(u.Host)
		s.tlsConf = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if sc.CA != "" {
			pem, err := os.ReadFile(sc.CA)
			if err != nil {
				return nil, fmt.Errorf("audit sink %s: reading CA: %w", sc.Address, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("audit sink %s: no certificate in CA file %s", sc.Address, sc.CA)
			}
			s.tlsConf.RootCAs = pool
		}
	default:
		return nil, fmt.Errorf("audit sink address %q: scheme must be tcp or tls", sc.Address)
	}
	sum := sha256.Sum256([]byte(s.name))
	s.statePath = filepath.Join(t.cfg.Dir, "sink-"+hex.EncodeToString(sum[:6])+".state")
	s.hostname, _ = os.Hostname()
	if s.hostname == "" {
		s.hostname = "-"
	}
	return s, nil
}

func (t *Trail) startSinks() {
	if len(t.sinks) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.sinkCancel = cancel
	for _, s := range t.sinks {
		t.sinkWG.Add(1)
		go func() {
			defer t.sinkWG.Done()
			s.run(ctx)
		}()
	}
}

// buildSinks checks the configured sinks before anything is written.
func (t *Trail) buildSinks() error {
	for _, sc := range t.cfg.Sinks {
		switch sc.Type {
		case "syslog":
			s, err := newSyslogSink(t, sc)
			if err != nil {
				return err
			}
			t.sinks = append(t.sinks, s)
		case "postgres":
			// Shipped by a PGShipper, which needs the store's connection;
			// the gateway starts it beside the trail (NewPGShipper).
		default:
			return fmt.Errorf("audit sink type %q is unknown (不明な転送先の種類です); want syslog or postgres", sc.Type)
		}
	}
	return nil
}

func (t *Trail) stopSinks() {
	if t.sinkCancel != nil {
		t.sinkCancel()
		t.sinkWG.Wait()
	}
}

// notifySinks tells sinks that the files grew; it never blocks.
func (t *Trail) notifySinks() {
	for _, s := range t.sinks {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

func (s *syslogSink) run(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		progressed, err := s.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			backoff = 500 * time.Millisecond
		}
		s.t.m.sinkErrors.WithLabelValues(s.name).Inc()
		s.t.opts.log.Warn("audit: syslog sink unavailable; will catch up / syslog 転送先に接続できません", "sink", s.name, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// resendWindow is how far back a sink rewinds after a connection breaks:
// TCP accepts writes that a dying receiver never reads, so what was sent in
// the last seconds is sent again (receivers de-duplicate by seq).
const resendWindow = 5 * time.Second

// mark is a position reached by a flush.
type mark struct {
	at time.Time
	st sinkState
}

// session connects and ships until an error or ctx ends. The state file
// only ever holds a position older than resendWindow, so a new session
// (after a broken connection or a restart) re-sends the recent past.
func (s *syslogSink) session(ctx context.Context) (progressed bool, err error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	var conn net.Conn
	if s.tlsConf != nil {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: s.tlsConf}).DialContext(ctx, s.network, s.addr)
	} else {
		conn, err = d.DialContext(ctx, s.network, s.addr)
	}
	if err != nil {
		return false, fmt.Errorf("connecting to %s: %w", s.name, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// A syslog receiver never writes; a read that returns means it closed.
	dead := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		close(dead)
	}()
	st := s.loadState()
	committed := st
	var marks []mark
	commit := func() {
		cut := time.Now().Add(-resendWindow)
		i := 0
		for i < len(marks) && !marks[i].at.After(cut) {
			committed = marks[i].st
			i++
		}
		if i > 0 {
			marks = marks[i:]
			s.saveState(committed)
		}
	}
	defer func() { s.saveState(committed) }()
	w := bufio.NewWriterSize(conn, 64<<10)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		n, err := s.ship(conn, w, &st)
		if n > 0 {
			progressed = true
			marks = append(marks, mark{at: time.Now(), st: st})
		}
		if err != nil {
			return progressed, err
		}
		commit()
		if n > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return progressed, ctx.Err()
		case <-dead:
			return progressed, fmt.Errorf("%s closed the connection", s.name)
		case <-s.notify:
		case <-tick.C:
		}
	}
}

func (s *syslogSink) saveState(st sinkState) {
	if b, err := json.Marshal(st); err == nil {
		_ = writeFileAtomic(s.statePath, b, false)
	}
}

func (s *syslogSink) loadState() sinkState {
	var st sinkState
	if b, err := os.ReadFile(s.statePath); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

// ship sends complete lines after st, advancing through the files, and
// returns how many it sent.
func (s *syslogSink) ship(conn net.Conn, w *bufio.Writer, st *sinkState) (int, error) {
	names, err := listFiles(s.dir)
	if err != nil {
		return 0, err
	}
	if len(names) == 0 {
		return 0, nil
	}
	// Find the file to read: st.File, or the first one after it (retention
	// may have removed it — the records in it are then lost to the sink).
	i := 0
	for i < len(names) && names[i] < st.File {
		i++
	}
	if i == len(names) {
		return 0, nil
	}
	if names[i] != st.File {
		if st.File != "" {
			s.t.opts.log.Warn("audit: syslog sink position file is gone; continuing with the next file", "sink", s.name, "file", st.File)
		}
		st.File, st.Offset = names[i], 0
	}
	f, err := os.Open(filepath.Join(s.dir, st.File))
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", st.File, err)
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	n, rerr := f.ReadAt(buf, st.Offset)
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		return 0, fmt.Errorf("reading %s: %w", st.File, rerr)
	}
	chunk := buf[:n]
	end := bytes.LastIndexByte(chunk, '\n') + 1
	if end == 0 && n == len(buf) {
		end = n // a line longer than the buffer: send it cut, as is
	}
	sent := 0
	for rest := chunk[:end]; len(rest) > 0; {
		line := rest
		if k := bytes.IndexByte(rest, '\n'); k >= 0 {
			line, rest = rest[:k], rest[k+1:]
		} else {
			rest = nil
		}
		if err := s.writeFrame(w, line); err != nil {
			return sent, err
		}
		sent++
	}
	if sent > 0 {
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := w.Flush(); err != nil {
			return 0, fmt.Errorf("sending to %s: %w", s.name, err)
		}
		st.Offset += int64(end)
		s.t.m.sinkSent.WithLabelValues(s.name).Add(float64(sent))
		return sent, nil
	}
	// Nothing more here: move to the next file once this one is finished
	// (a newer file exists, so the writer no longer appends here).
	if i+1 < len(names) {
		st.File, st.Offset = names[i+1], 0
		return s.ship(conn, w, st)
	}
	return 0, nil
}

// writeFrame writes one RFC 5424 message with octet-counting framing:
// "LEN SP <PRI>1 TIMESTAMP HOST sekisho - MSGID - BOM JSON".
func (s *syslogSink) writeFrame(w *bufio.Writer, line []byte) error {
	ts, msgid, sev := "-", "torn", 4 // warning for a line that is not a record
	if r := lineTime(line); r != "" {
		ts = r
		msgid = lineEvent(line)
		sev = 6 // informational
		if bytes.Contains(line, []byte(`"decision":"deny"`)) || msgid == EventAlert {
			sev = 4
		}
	}
	const facility = 13 // log audit (RFC 5424 table 1)
	var hdr []byte
	hdr = append(hdr, '<')
	hdr = strconv.AppendInt(hdr, facility*8+int64(sev), 10)
	hdr = append(hdr, ">1 "...)
	hdr = append(hdr, ts...)
	hdr = append(hdr, ' ')
	hdr = append(hdr, s.hostname...)
	hdr = append(hdr, " sekisho - "...)
	hdr = append(hdr, msgid...)
	hdr = append(hdr, " - \xEF\xBB\xBF"...)
	w.WriteString(strconv.Itoa(len(hdr) + len(line)))
	w.WriteByte(' ')
	w.Write(hdr)
	_, err := w.Write(line)
	return err
}

// lineTime returns the time field of a record line, or "".
func lineTime(line []byte) string {
	i := bytes.Index(line, []byte(`,"time":"`))
	if i < 0 || !bytes.HasPrefix(line, []byte(`{"seq":`)) || len(line) < i+9+len(TimeLayout) {
		return ""
	}
	v := line[i+9 : i+9+len(TimeLayout)]
	if _, err := time.Parse(TimeLayout, string(v)); err != nil {
		return ""
	}
	return string(v)
}

// lineEvent returns the event field of a record line (a syslog MSGID:
// printable ASCII, at most 32 bytes), or "-".
func lineEvent(line []byte) string {
	i := bytes.Index(line, []byte(`,"event":"`))
	if i < 0 {
		return "-"
	}
	rest := line[i+10:]
	j := bytes.IndexByte(rest, '"')
	if j <= 0 || j > 32 {
		return "-"
	}
	for _, c := range rest[:j] {
		if c < 33 || c > 126 {
			return "-"
		}
	}
	return string(rest[:j])
}
