package audit

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sekisho/sekisho/internal/word"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenRecord exercises every field and every escaping rule.
func goldenRecord() *Record {
	return &Record{
		Seq:        42,
		Time:       time.Date(2026, 11, 23, 1, 2, 3, 456789123, time.UTC),
		Event:      EventAccess,
		RequestID:  "01JDEXAMPLE",
		User:       "田中\t\"太郎\"\\",
		Roles:      []string{"zaimu", "kanri"},
		Device:     "pc-0012",
		CertFP:     strings.Repeat("0f", 32),
		AMR:        []string{"hwk", "uv", "mtls"},
		AuthTime:   time.Date(2026, 11, 23, 0, 30, 0, 0, time.FixedZone("JST", 9*3600)),
		IP:         "10.1.2.3",
		Zone:       "chonai",
		Route:      "zaimu",
		Class:      "3B",
		Segment:    "lgwan",
		Method:     "POST",
		Host:       "zaimu.gw.example.lg.jp",
		Path:       "/export?x=<&>\u2028\x01\n\xff",
		Decision:   DecisionAllow,
		Enforced:   true,
		Rule:       "p, role:zaimu, 3B, export",
		Reasons:    []string{},
		Status:     200,
		Bytes:      -1,
		DurationMS: 12.3456,
		Action:     "x",
		Target:     "y",
		Detail:     `{"a":1}`,
		Prev:       Genesis,
	}
}

func TestCanonicalGolden(t *testing.T) {
	got := append(Encode(goldenRecord()), '\n')
	const path = "testdata/canonical.golden"
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the frozen canonical encoding changed:\n got %s\nwant %s", got, want)
	}
	// It parses back to itself and its hash checks.
	r, err := ParseRecord(want)
	if err != nil {
		t.Fatal(err)
	}
	if again := append(Encode(r), '\n'); !bytes.Equal(again, want) {
		t.Fatalf("round trip differs:\n got %s\nwant %s", again, want)
	}
	if r.User != "田中\t\"太郎\"\\" || r.Time.Nanosecond() != 456789000 || r.DurationMS != 12.346 {
		t.Fatalf("decoded %+v", r)
	}
}

func TestParseRecordRejectsNonCanonical(t *testing.T) {
	line := Encode(goldenRecord())
	cases := map[string][]byte{
		"space added":       bytes.Replace(line, []byte(`"seq":42`), []byte(`"seq": 42`), 1),
		"escaped slash":     bytes.Replace(line, []byte(`"zaimu"`), []byte(`"za\/imu"`), 1),
		"unicode escape":    bytes.Replace(line, []byte(`"pc-0012"`), []byte(`"pc-\u0030012"`), 1),
		"fields reordered":  bytes.Replace(line, []byte(`"user":"田中\t\"太郎\"\\","roles":["zaimu","kanri"]`), []byte(`"roles":["zaimu","kanri"],"user":"田中\t\"太郎\"\\"`), 1),
		"extra field":       bytes.Replace(line, []byte(`,"prev"`), []byte(`,"x":1,"prev"`), 1),
		"hash upper case":   bytes.ToUpper(line[len(line)-66:]),
		"duration 2 digits": bytes.Replace(line, []byte(`12.346`), []byte(`12.35`), 1),
	}
	for name, l := range cases {
		if _, err := ParseRecord(l); err == nil {
			t.Errorf("%s: accepted %s", name, l)
		}
	}
}

func TestAppendTimeMatchesLayout(t *testing.T) {
	r := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 20000; i++ {
		tm := r.Add(time.Duration(i) * 7919 * 11 * time.Hour).Add(time.Duration(i*104729) * time.Nanosecond)
		if got, want := string(appendTime(nil, tm)), tm.Format(TimeLayout); got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
	for _, tm := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if got, want := string(appendTime(nil, tm)), tm.Format(TimeLayout); got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, s := range []string{"2026-11-23T01:02:03.456789Z", "0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z"} {
		got, ok := parseTime(s)
		want, err := time.Parse(TimeLayout, s)
		if !ok || err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%s) = %v %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "2026-11-23T01:02:03.456789", "2026-11-23 01:02:03.456789Z", "2026-1a-23T01:02:03.456789Z", "+026-11-23T01:02:03.456789Z"} {
		if _, ok := parseTime(s); ok {
			t.Errorf("parseTime(%q) accepted", s)
		}
	}
	// Out of range: parsed, but not canonical, so the record is refused.
	line := bytes.Replace(Encode(goldenRecord()), []byte("2026-11-23T01:02:03"), []byte("2026-02-30T01:02:03"), 1)
	if _, err := ParseRecord(line); err == nil {
		t.Error("30 February accepted")
	}
}

func TestRecordJSONRoundTrip(t *testing.T) {
	line := Encode(goldenRecord())
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatal(err)
	}
	if out, err := r.MarshalJSON(); err != nil || !bytes.Equal(out, line) {
		t.Fatalf("round trip:\n got %s\nwant %s", out, line)
	}
	// encoding/json escapes <, >, & and U+2028 in what MarshalJSON returns;
	// the values stay the same.
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var again Record
	if err := json.Unmarshal(out, &again); err != nil || again.Path != r.Path || again.Hash != r.Hash {
		t.Fatalf("json.Marshal round trip: %v %+v", err, again)
	}
	var loose Record
	if err := json.Unmarshal([]byte(`{"event":"admin","user":"sato","time":"2026-11-23T10:00:00+09:00","auth_time":""}`), &loose); err != nil {
		t.Fatal(err)
	}
	if loose.Event != "admin" || loose.Time.UTC().Hour() != 1 || !loose.AuthTime.IsZero() {
		t.Fatalf("loose: %+v", loose)
	}
}

// TestPlainWord: the word test agrees with plainByte for every byte value
// in every lane, and for pairs of bytes (borrows between lanes).
func TestPlainWord(t *testing.T) {
	for lane := range 8 {
		for b := range 256 {
			w := []byte("abcdefgh")
			w[lane] = byte(b)
			if got, want := plainWord(word.Load64(string(w), 0)), plainByte[b]; got != want {
				t.Fatalf("byte %#x in lane %d: word test %v, table %v", b, lane, got, want)
			}
		}
	}
	for b1 := range 256 {
		for b2 := range 256 {
			w := string([]byte{'a', byte(b1), byte(b2), 'b', 'c', 'd', 'e', 'f'})
			if got, want := plainWord(word.Load64(w, 0)), plainByte[b1] && plainByte[b2]; got != want {
				t.Fatalf("bytes %#x %#x: word test %v, want %v", b1, b2, got, want)
			}
		}
	}
}

// appendStringRef is the canonical string encoding written rune by rune,
// the simplest way: the reference FuzzAppendString holds appendString to.
func appendStringRef(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, "\uFFFD"...)
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r < 0x20:
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain ascii text here", "財務会計システム/予算", "a\"b\\c\nd\x00e\x7ff", "abcdefg\xffhijklmnop", "\xe8\xb2\xa1abcdefgh"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := appendString(nil, s), appendStringRef(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}
