package audit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tamperTrail writes a closed single-file trail and returns its file and lines.
func tamperTrail(t *testing.T) (dir, path string, lines [][]byte) {
	t.Helper()
	cfg := testConfig(t)
	writeTrail(t, cfg, 30)
	names, err := listFiles(cfg.Dir)
	if err != nil || len(names) != 1 {
		t.Fatalf("want one file, got %v %v", names, err)
	}
	path = filepath.Join(cfg.Dir, names[0])
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines = bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if res := mustVerify(t, cfg.Dir); !res.OK() {
		t.Fatalf("untouched trail does not verify: %v", res.Problem)
	}
	return cfg.Dir, path, lines
}

func saveLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	data := append(bytes.Join(lines, []byte("\n")), '\n')
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func parse(t *testing.T, line []byte) *Record {
	t.Helper()
	r, err := ParseRecord(line)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// indexOfSeq returns the line index of seq.
func indexOfSeq(t *testing.T, lines [][]byte, seq uint64) int {
	t.Helper()
	for i, l := range lines {
		if r, err := ParseRecord(l); err == nil && r.Seq == seq {
			return i
		}
	}
	t.Fatalf("seq %d not found", seq)
	return -1
}

// rechain recomputes prev and hash from line i on, as an attacker without
// the audit key would, and returns the new lines.
func rechain(t *testing.T, lines [][]byte, i int) {
	t.Helper()
	prev := Genesis
	if i > 0 {
		prev = parse(t, lines[i-1]).Hash
	}
	for j := i; j < len(lines); j++ {
		d := decodeLoose(t, lines[j])
		d.Prev = prev
		lines[j] = Encode(d)
		prev = parse(t, lines[j]).Hash
	}
}

// decodeLoose decodes a line whose hash may be wrong.
func decodeLoose(t *testing.T, line []byte) *Record {
	t.Helper()
	var r Record
	if _, err := decode(line, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func firstCheckpointAfter(t *testing.T, lines [][]byte, seq uint64) uint64 {
	t.Helper()
	for _, l := range lines {
		r := parse(t, l)
		if r.Seq > seq && r.Event == EventCheckpoint {
			return r.Seq
		}
	}
	t.Fatal("no checkpoint")
	return 0
}

func TestTamperDetected(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, lines [][]byte) [][]byte
		wantSeq func(t *testing.T, lines [][]byte) uint64
		want    string // in the English reason
	}{
		{
			name: "edit a field",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				i := indexOfSeq(t, lines, 7)
				lines[i] = bytes.Replace(lines[i], []byte(`"decision":"allow"`), []byte(`"decision":"deny!"`), 1)
				return lines
			},
			wantSeq: func(*testing.T, [][]byte) uint64 { return 7 },
			want:    "edited",
		},
		{
			name: "delete a line",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				i := indexOfSeq(t, lines, 7)
				return append(lines[:i:i], lines[i+1:]...)
			},
			wantSeq: func(*testing.T, [][]byte) uint64 { return 8 },
			want:    "expected seq 7",
		},
		{
			name: "swap two lines",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				i := indexOfSeq(t, lines, 7)
				lines[i], lines[i+1] = lines[i+1], lines[i]
				return lines
			},
			wantSeq: func(*testing.T, [][]byte) uint64 { return 8 },
			want:    "expected seq 7",
		},
		{
			name: "insert a forged line with a correct hash",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				i := indexOfSeq(t, lines, 7)
				prev := parse(t, lines[i])
				forged := accessRecord(999)
				forged.User = "attacker"
				forged.Seq = 8
				forged.Time = prev.Time
				forged.Prev = prev.Hash
				out := append([][]byte{}, lines[:i+1]...)
				out = append(out, Encode(forged))
				return append(out, lines[i+1:]...)
			},
			wantSeq: func(*testing.T, [][]byte) uint64 { return 8 },
			want:    "duplicated",
		},
		{
			name: "insert a forged line and re-hash the rest of the chain",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				i := indexOfSeq(t, lines, 7)
				forged := accessRecord(999)
				forged.User = "attacker"
				forged.Seq = 8
				forged.Time = parse(t, lines[i]).Time
				out := append([][]byte{}, lines[:i+1]...)
				out = append(out, Encode(forged))
				out = append(out, lines[i+1:]...)
				for j := i + 2; j < len(out); j++ { // renumber
					r := decodeLoose(t, out[j])
					r.Seq++
					out[j] = Encode(r)
				}
				rechain(t, out, i+1)
				return out
			},
			// The first checkpoint after the insertion no longer seals the chain.
			wantSeq: func(t *testing.T, lines [][]byte) uint64 { return firstCheckpointAfter(t, lines, 7) + 1 }, // renumbered
			want:    "signed chain head",
		},
		{
			name: "truncate the tail",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				return lines[:len(lines)-4]
			},
			wantSeq: func(t *testing.T, lines [][]byte) uint64 { return parse(t, lines[len(lines)-5]).Seq + 1 },
			want:    "truncated",
		},
		{
			name: "replace a checkpoint signature (and re-hash)",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				seq := firstCheckpointAfter(t, lines, 5)
				i := indexOfSeq(t, lines, seq)
				r := decodeLoose(t, lines[i])
				other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				s, _ := newSigner(other)
				s.kid = mustKid(t, lines) // pretend to be the real key
				jws, err := s.sign(&checkpointPayload{Seq: r.Seq - 1, Head: r.Prev, Time: r.Time.Format(TimeLayout)})
				if err != nil {
					t.Fatal(err)
				}
				r.Checkpoint = jws
				lines[i] = Encode(r)
				rechain(t, lines, i+1)
				return lines
			},
			wantSeq: func(t *testing.T, lines [][]byte) uint64 { return firstCheckpointAfter(t, lines, 5) },
			want:    "signature",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, path, lines := tamperTrail(t)
			want := tc.wantSeq(t, lines)
			saveLines(t, path, tc.tamper(t, lines))
			res := mustVerify(t, dir)
			if res.OK() {
				t.Fatal("tampering not detected")
			}
			p := res.Problem
			if p.Seq != want || !strings.Contains(p.ReasonEN, tc.want) {
				t.Fatalf("problem = %v; want seq %d and reason containing %q", p, want, tc.want)
			}
			if !strings.HasPrefix(p.File, "audit-") && p.File != headFile {
				t.Fatalf("problem does not name the file: %v", p)
			}
			if err := res.Err(); err == nil || !strings.Contains(err.Error(), p.Reason) {
				t.Fatalf("Err() = %v", err)
			}
		})
	}
}

func mustKid(t *testing.T, lines [][]byte) string {
	t.Helper()
	for _, l := range lines {
		r := parse(t, l)
		if r.Event == EventCheckpoint {
			hdr, _, _ := strings.Cut(r.Checkpoint, ".")
			return kidOf(t, hdr)
		}
	}
	t.Fatal("no checkpoint")
	return ""
}

func TestVerifyWrongKey(t *testing.T) {
	cfg := testConfig(t)
	writeTrail(t, cfg, 3)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := newSigner(other)
	res, err := Verify(cfg.Dir, s.pub)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || !strings.Contains(res.Problem.ReasonEN, "signature") {
		t.Fatalf("a trail verified with the wrong key: %+v", res.Problem)
	}
}

func TestVerifyHeadFileTruncationWithoutClose(t *testing.T) {
	// Records cut off while the trail is open (no final checkpoint) are
	// caught by checkpoint.jws when a checkpoint was among them.
	cfg := testConfig(t)
	cfg.CheckpointEvery = 5
	clk := newFakeClock()
	tr, err := Open(cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		if err := tr.AppendDurable(t.Context(), accessRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := listFiles(cfg.Dir)
	path := filepath.Join(cfg.Dir, names[0])
	data, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	saveLines(t, path, lines[:3])
	res := mustVerify(t, cfg.Dir)
	if res.OK() || !strings.Contains(res.Problem.ReasonEN, "truncated") {
		t.Fatalf("truncation not detected: %+v", res.Problem)
	}
	_ = time.Second
}

func kidOf(t *testing.T, protectedB64 string) string {
	t.Helper()
	raw, err := base64RawURL(protectedB64)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := jsonUnmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

func TestRotateKey(t *testing.T) {
	cfg := testConfig(t)
	cfg.Key = filepath.Join(cfg.Dir, "audit.key")
	writeTrail(t, cfg, 12)
	oldKeys, err := LoadPublicKeys(cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := RotateKey(cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	writeTrail(t, cfg, 12) // reopened: signs with the new key
	all, err := LoadPublicKeys(cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	if all.Len() != 2 {
		t.Fatalf("JWKS after rotation has %d keys, want 2", all.Len())
	}
	if _, ok := all.LookupKeyID(kid); !ok {
		t.Fatal("the new key is not in the JWKS")
	}
	res, err := Verify(cfg.Dir, all)
	if err != nil || !res.OK() {
		t.Fatalf("verify with both keys: %v %v", err, res.Problem)
	}
	// With only the old key, the first checkpoint signed by the new one fails.
	res, err = Verify(cfg.Dir, oldKeys)
	if err != nil || res.OK() || !strings.Contains(res.Problem.ReasonEN, "signature") {
		t.Fatalf("verify with the old key only: %+v", res.Problem)
	}
	// The JWKS printed for auditors carries both.
	b, err := PublicJWKS(cfg.Key)
	if err != nil || strings.Count(string(b), `"kid"`) != 2 {
		t.Fatalf("PublicJWKS: %s %v", b, err)
	}
	if fi, err := os.Stat(cfg.Key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new key file mode: %v %v", fi.Mode(), err)
	}
}
