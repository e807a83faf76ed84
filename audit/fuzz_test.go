package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// testdata/fuzz.key is a key for tests only; it signs the fuzz seed trails.
const fuzzKey = "testdata/fuzz.key"

// FuzzVerify feeds malformed trail files to the verifier: it must never
// panic, never fail to run on bad content, and never call a trail intact
// unless every line is a canonical record or sealed torn bytes.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("\n\n"))
	f.Add(append(Encode(goldenRecord()), '\n'))
	keys, err := LoadPublicKeys(fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "audit-20261123-0001.jsonl"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := Verify(dir, keys)
		if err != nil {
			t.Fatalf("Verify could not run on bad content: %v", err)
		}
		if !res.OK() {
			return
		}
		whole := data[:bytes.LastIndexByte(data, '\n')+1]
		if frag := int64(len(data) - len(whole)); res.PartialTail != frag {
			t.Fatalf("partial tail %d, want %d", res.PartialTail, frag)
		}
		if len(whole) == 0 {
			t.Fatal("a file without a whole line verified")
		}
		unreadable := 0
		for line := range bytes.SplitSeq(whole[:len(whole)-1], []byte("\n")) {
			if _, err := ParseRecord(line); err != nil {
				unreadable++
			}
		}
		if unreadable > 0 && len(res.Torn) == 0 {
			t.Fatalf("%d unreadable lines in an intact trail without a sealed torn region", unreadable)
		}
		if res.Records == 0 {
			t.Fatal("an intact trail without records")
		}
	})
}

// FuzzParseRecord: whatever parses is canonical — it re-encodes to itself.
func FuzzParseRecord(f *testing.F) {
	f.Add(Encode(goldenRecord()))
	f.Add([]byte(`{"seq":1}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRecord(line)
		if err != nil {
			return
		}
		if got := Encode(r); !bytes.Equal(got, bytes.TrimSuffix(line, []byte("\n"))) {
			t.Fatalf("parsed but not canonical:\n in %q\nout %q", line, got)
		}
	})
}
