package audit

// This file is the audit record's canonical encoding. IT IS FROZEN.
//
// Every record ever written is hashed over these exact bytes, and auditors
// re-implement them to verify a trail without sekisho (docs/audit.md). A
// change here — field order, number or time format, string escaping —
// breaks the verification of every existing trail. The golden file
// testdata/canonical.golden pins it; if that test fails, revert the change.
//
// The encoding of a record is one JSON object on one line:
//
//   - fields in this fixed order: seq, time, event, request_id, user, roles,
//     device, cert_fp, amr, auth_time, ip, zone, route, class, segment,
//     method, host, path, decision, enforced, rule, reasons, status, bytes,
//     duration_ms, then the optional action, target, detail, checkpoint
//     (each omitted when empty), then prev, then hash;
//   - no white space anywhere;
//   - seq, status, bytes: decimal integers without sign (status, bytes may
//     be negative only as written by strconv: "-1");
//   - time, auth_time: "2006-01-02T15:04:05.000000Z" (UTC, microseconds);
//     auth_time is "" when unknown;
//   - duration_ms: a decimal with exactly three fraction digits ("12.345");
//   - enforced: true or false;
//   - roles, amr, reasons: arrays of strings, [] when empty;
//   - strings: UTF-8 as is, except '"' → \", '\\' → \\, newline → \n,
//     carriage return → \r, tab → \t, other bytes below 0x20 → \u00xx
//     (lower-case hex); invalid UTF-8 is replaced by U+FFFD before encoding.
//
// hash is the lower-case hex SHA-256 of the encoding of the record without
// its hash field, i.e. the line with `,"hash":"…"` removed:
// `{"seq":…,"prev":"…"}`. prev is the previous record's hash; the first
// record of a trail has prev = 64 zeros ([Genesis]).

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/sekisho/sekisho/internal/word"
)

// TimeLayout is the frozen time format of time and auth_time.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Genesis is the prev of the first record of a trail.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// appendBody appends the fields from time to checkpoint (both included),
// with no surrounding comma or brace. t must already be UTC and truncated to
// microseconds.
func appendBody(b []byte, r *Record, t time.Time) []byte {
	b = append(b, `"time":"`...)
	b = appendTime(b, t)
	b = append(b, `","event":`...)
	b = appendString(b, r.Event)
	b = append(b, `,"request_id":`...)
	b = appendString(b, r.RequestID)
	b = append(b, `,"user":`...)
	b = appendString(b, r.User)
	b = append(b, `,"roles":`...)
	b = appendStrings(b, r.Roles)
	b = append(b, `,"device":`...)
	b = appendString(b, r.Device)
	b = append(b, `,"cert_fp":`...)
	b = appendString(b, r.CertFP)
	b = append(b, `,"amr":`...)
	b = appendStrings(b, r.AMR)
	b = append(b, `,"auth_time":"`...)
	if !r.AuthTime.IsZero() {
		b = appendTime(b, r.AuthTime.UTC())
	}
	b = append(b, `","ip":`...)
	b = appendString(b, r.IP)
	b = append(b, `,"zone":`...)
	b = appendString(b, r.Zone)
	b = append(b, `,"route":`...)
	b = appendString(b, r.Route)
	b = append(b, `,"class":`...)
	b = appendString(b, r.Class)
	b = append(b, `,"segment":`...)
	b = appendString(b, r.Segment)
	b = append(b, `,"method":`...)
	b = appendString(b, r.Method)
	b = append(b, `,"host":`...)
	b = appendString(b, r.Host)
	b = append(b, `,"path":`...)
	b = appendString(b, r.Path)
	b = append(b, `,"decision":`...)
	b = appendString(b, r.Decision)
	b = append(b, `,"enforced":`...)
	b = strconv.AppendBool(b, r.Enforced)
	b = append(b, `,"rule":`...)
	b = appendString(b, r.Rule)
	b = append(b, `,"reasons":`...)
	b = appendStrings(b, r.Reasons)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, r.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, r.DurationMS, 'f', 3, 64)
	if r.Action != "" {
		b = append(b, `,"action":`...)
		b = appendString(b, r.Action)
	}
	if r.Target != "" {
		b = append(b, `,"target":`...)
		b = appendString(b, r.Target)
	}
	if r.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendString(b, r.Detail)
	}
	if r.Checkpoint != "" {
		b = append(b, `,"checkpoint":`...)
		b = appendString(b, r.Checkpoint)
	}
	return b
}

// appendUnhashed appends {"seq":N,<body>,"prev":"P"} — the bytes that are hashed.
func appendUnhashed[P string | []byte](b []byte, seq uint64, body []byte, prev P) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ',')
	b = append(b, body...)
	b = append(b, `,"prev":"`...)
	b = append(b, prev...)
	b = append(b, `"}`...)
	return b
}

// appendHashed turns the unhashed encoding at b[start:] into a full line:
// it replaces the closing brace with ,"hash":"H"} and a newline, and returns
// the hash.
func appendHashed(b []byte, start int) ([]byte, [sha256.Size]byte) {
	sum := sha256.Sum256(b[start:])
	b = b[:len(b)-1]
	b = append(b, `,"hash":"`...)
	n := len(b)
	b = append(b, make([]byte, hex.EncodedLen(sha256.Size))...)
	hex.Encode(b[n:], sum[:])
	b = append(b, "\"}\n"...)
	return b, sum
}

// Encode returns the canonical line of r (without the trailing newline),
// hashing it as the trail does: the hash field of r is ignored and the
// returned line carries the computed one.
func Encode(r *Record) []byte {
	body := appendBody(nil, r, r.Time.UTC())
	b := appendUnhashed(nil, r.Seq, body, r.Prev)
	b, _ = appendHashed(b, 0)
	return b[:len(b)-1]
}

// appendTime appends t (UTC) in TimeLayout; it is t.AppendFormat(b,
// TimeLayout) without the layout interpretation, which the writer and the
// verifier do for every record.
func appendTime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeLayout)
	}
	hour, min, sec := t.Clock()
	us := t.Nanosecond() / 1000
	d2 := func(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
	b = d2(b, year/100)
	b = d2(b, year%100)
	b = append(b, '-')
	b = d2(b, int(month))
	b = append(b, '-')
	b = d2(b, day)
	b = append(b, 'T')
	b = d2(b, hour)
	b = append(b, ':')
	b = d2(b, min)
	b = append(b, ':')
	b = d2(b, sec)
	b = append(b, '.')
	b = d2(b, us/10000)
	b = d2(b, us/100%100)
	b = d2(b, us%100)
	return append(b, 'Z')
}

const hexDigits = "0123456789abcdef"

// plainByte marks the ASCII bytes that are copied as they are.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainWord reports whether the 8 bytes of x are all plainByte:
// none below 0x20, none from 0x80 up, no '"' and no '\\'. Every other byte
// sets the high bit of some lane of one of the terms (x-0x20 for a byte
// below 0x20, x for 0x80 up, (x^c)-1 for a byte equal to c; a borrow
// crosses a lane only out of a byte that is itself not plain), and no
// plain byte does: false means only "look byte by byte", true is exact.
func plainWord(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	return ((x-0x20*ones)|x|((x^'"'*ones)-ones)|((x^'\\'*ones)-ones))&highs == 0
}

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && plainWord(word.Load64(s, i)) {
			i += 8
			continue
		}
		c := s[i]
		if plainByte[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// errSyntax is returned (wrapped) for a line that is not a canonical record.
var errSyntax = errors.New("not a canonical audit record")

// decoder reads the canonical encoding back. It is strict about field order
// and layout; together with the re-encoding check in [parseLine] it accepts
// exactly the lines [appendBody] can produce.
type decoder struct {
	b   []byte
	pos int
	err error
	// alias makes strings share b's memory instead of copying. Only for b
	// that is never modified afterwards (the verifier's chunks).
	alias bool
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", errSyntax, what, d.pos)
	}
}

func (d *decoder) lit(s string) {
	if d.err != nil {
		return
	}
	if len(d.b)-d.pos < len(s) || string(d.b[d.pos:d.pos+len(s)]) != s {
		d.fail("expected " + s)
		return
	}
	d.pos += len(s)
}

// peek reports whether the input continues with s.
func (d *decoder) peek(s string) bool {
	return d.err == nil && len(d.b)-d.pos >= len(s) && string(d.b[d.pos:d.pos+len(s)]) == s
}

func (d *decoder) str() string {
	if d.err != nil {
		return ""
	}
	if d.pos >= len(d.b) || d.b[d.pos] != '"' {
		d.fail("expected string")
		return ""
	}
	d.pos++
	start := d.pos
	// Fast path: no escapes.
	for d.pos < len(d.b) {
		c := d.b[d.pos]
		if c == '"' {
			var s string
			if d.alias && d.pos > start {
				s = unsafe.String(&d.b[start], d.pos-start)
			} else {
				s = string(d.b[start:d.pos])
			}
			d.pos++
			return s
		}
		if c == '\\' || c < 0x20 {
			break
		}
		d.pos++
	}
	buf := append([]byte(nil), d.b[start:d.pos]...)
	for d.pos < len(d.b) {
		c := d.b[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(buf)
		case c < 0x20:
			d.fail("control byte in string")
			return ""
		case c != '\\':
			buf = append(buf, c)
			d.pos++
			continue
		}
		if d.pos+1 >= len(d.b) {
			break
		}
		e := d.b[d.pos+1]
		d.pos += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'u':
			r := d.hex4()
			if utf16.IsSurrogate(r) && d.peek(`\u`) {
				d.pos += 2
				r = utf16.DecodeRune(r, d.hex4())
			}
			buf = utf8.AppendRune(buf, r)
		default:
			d.fail("bad escape")
			return ""
		}
	}
	d.fail("unterminated string")
	return ""
}

func (d *decoder) hex4() rune {
	if len(d.b)-d.pos < 4 {
		d.fail("short \\u escape")
		return 0
	}
	v, err := strconv.ParseUint(string(d.b[d.pos:d.pos+4]), 16, 16)
	if err != nil {
		d.fail("bad \\u escape")
		return 0
	}
	d.pos += 4
	return rune(v)
}

func (d *decoder) strs() []string {
	d.lit("[")
	var out []string
	if d.peek("]") {
		d.pos++
		return out
	}
	for d.err == nil {
		out = append(out, d.str())
		if d.peek(",") {
			d.pos++
			continue
		}
		d.lit("]")
		break
	}
	return out
}

// number returns the bytes of a JSON-ish number token (digits, sign, dot).
func (d *decoder) number() string {
	if d.err != nil {
		return ""
	}
	start := d.pos
	for d.pos < len(d.b) {
		c := d.b[d.pos]
		if (c >= '0' && c <= '9') || c == '-' || c == '.' {
			d.pos++
			continue
		}
		break
	}
	if start == d.pos {
		d.fail("expected number")
	}
	return string(d.b[start:d.pos])
}

func (d *decoder) uint() uint64 {
	s := d.number()
	if d.err != nil {
		return 0
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		d.fail("bad unsigned integer")
	}
	return v
}

func (d *decoder) int() int64 {
	s := d.number()
	if d.err != nil {
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		d.fail("bad integer")
	}
	return v
}

func (d *decoder) float() float64 {
	s := d.number()
	if d.err != nil {
		return 0
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		d.fail("bad number")
	}
	return v
}

func (d *decoder) bool() bool {
	switch {
	case d.peek("true"):
		d.pos += 4
		return true
	case d.peek("false"):
		d.pos += 5
		return false
	}
	d.fail("expected true or false")
	return false
}

func (d *decoder) time(allowEmpty bool) time.Time {
	s := d.str()
	if d.err != nil || (allowEmpty && s == "") {
		return time.Time{}
	}
	t, ok := parseTime(s)
	if !ok {
		d.fail("bad time")
	}
	return t
}

// parseTime reads TimeLayout. Out-of-range fields (month 13, 30 February)
// are normalised by time.Date and then fail the re-encoding check.
func parseTime(s string) (time.Time, bool) {
	if len(s) != len(TimeLayout) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
		s[16] != ':' || s[19] != '.' || s[26] != 'Z' {
		return time.Time{}, false
	}
	ok := true
	num := func(from, to int) int {
		v := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				ok = false
				return 0
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	t := time.Date(num(0, 4), time.Month(num(5, 7)), num(8, 10), num(11, 13), num(14, 16), num(17, 19), num(20, 26)*1000, time.UTC)
	return t, ok
}

// decode reads one line (without its newline) into r and returns the offset
// of `,"hash":` in line. It checks syntax only; [parseLine] checks that the
// line is canonical and its hash right.
func decode(line []byte, r *Record) (int, error) {
	return decodeWith(decoder{b: line}, r)
}

func decodeWith(d decoder, r *Record) (int, error) {
	d.lit(`{"seq":`)
	r.Seq = d.uint()
	d.lit(`,"time":`)
	r.Time = d.time(false)
	d.lit(`,"event":`)
	r.Event = d.str()
	d.lit(`,"request_id":`)
	r.RequestID = d.str()
	d.lit(`,"user":`)
	r.User = d.str()
	d.lit(`,"roles":`)
	r.Roles = d.strs()
	d.lit(`,"device":`)
	r.Device = d.str()
	d.lit(`,"cert_fp":`)
	r.CertFP = d.str()
	d.lit(`,"amr":`)
	r.AMR = d.strs()
	d.lit(`,"auth_time":`)
	r.AuthTime = d.time(true)
	d.lit(`,"ip":`)
	r.IP = d.str()
	d.lit(`,"zone":`)
	r.Zone = d.str()
	d.lit(`,"route":`)
	r.Route = d.str()
	d.lit(`,"class":`)
	r.Class = d.str()
	d.lit(`,"segment":`)
	r.Segment = d.str()
	d.lit(`,"method":`)
	r.Method = d.str()
	d.lit(`,"host":`)
	r.Host = d.str()
	d.lit(`,"path":`)
	r.Path = d.str()
	d.lit(`,"decision":`)
	r.Decision = d.str()
	d.lit(`,"enforced":`)
	r.Enforced = d.bool()
	d.lit(`,"rule":`)
	r.Rule = d.str()
	d.lit(`,"reasons":`)
	r.Reasons = d.strs()
	d.lit(`,"status":`)
	st := d.int()
	if st < math.MinInt32 || st > math.MaxInt32 {
		d.fail("status out of range")
	}
	r.Status = int(st)
	d.lit(`,"bytes":`)
	r.Bytes = d.int()
	d.lit(`,"duration_ms":`)
	r.DurationMS = d.float()
	if d.peek(`,"action":`) {
		d.pos += len(`,"action":`)
		r.Action = d.str()
	}
	if d.peek(`,"target":`) {
		d.pos += len(`,"target":`)
		r.Target = d.str()
	}
	if d.peek(`,"detail":`) {
		d.pos += len(`,"detail":`)
		r.Detail = d.str()
	}
	if d.peek(`,"checkpoint":`) {
		d.pos += len(`,"checkpoint":`)
		r.Checkpoint = d.str()
	}
	d.lit(`,"prev":`)
	r.Prev = d.str()
	hashAt := d.pos
	d.lit(`,"hash":`)
	r.Hash = d.str()
	d.lit("}")
	if d.err == nil && d.pos != len(d.b) {
		d.fail("trailing bytes")
	}
	return hashAt, d.err
}

// parseLine decodes line (without newline), checks that it is exactly the
// canonical encoding of what it decodes to and that its hash is right. buf
// is scratch space, returned for reuse.
func parseLine(line []byte, r *Record, buf []byte) ([]byte, error) {
	return parseLineWith(line, r, buf, false)
}

// parseLineWith is parseLine; with alias the record's strings share line's
// memory, which must then never change.
func parseLineWith(line []byte, r *Record, buf []byte, alias bool) ([]byte, error) {
	*r = Record{}
	hashAt, err := decodeWith(decoder{b: line, alias: alias}, r)
	if err != nil {
		return buf, err
	}
	// The hash is checked by comparison with the computed one below.
	if len(r.Prev) != 64 || !isLowerHex(r.Prev) || len(r.Hash) != 64 {
		return buf, fmt.Errorf("%w: prev or hash is not 64 lower-case hex digits", errSyntax)
	}
	buf = appendBody(buf[:0], r, r.Time)
	body := len(buf)
	buf = appendUnhashed(buf, r.Seq, buf[:body], r.Prev)
	enc := buf[body:]
	// enc ends with '}'; the line has ,"hash":"…"} in its place.
	if len(enc)-1 != hashAt || string(enc[:hashAt]) != string(line[:hashAt]) {
		return buf, fmt.Errorf("%w: not in canonical form", errSyntax)
	}
	sum := sha256.Sum256(enc)
	var want [64]byte
	hex.Encode(want[:], sum[:])
	if string(want[:]) != r.Hash {
		return buf, errHashMismatch
	}
	return buf, nil
}

var errHashMismatch = errors.New("hash does not match the record's content")

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
