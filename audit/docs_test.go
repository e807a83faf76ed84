package audit

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestIndependentVerifierInDocs runs the Python verifier printed in
// docs/audit.md against real trails, so the documented procedure stays true.
func TestIndependentVerifierInDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "<!-- independent-verifier -->\n```python\n")
	script, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("docs/audit.md has no independent-verifier python block")
	}
	python := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import cryptography").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but no python3 with the cryptography package (.ci/run installs python3-cryptography)")
		}
		t.Skip("python3 with the cryptography package is not available")
	}
	py := filepath.Join(t.TempDir(), "verify.py")
	os.WriteFile(py, []byte(script), 0o755)
	run := func(dir string) (string, bool) {
		t.Helper()
		jwks, err := PublicJWKS(filepath.Join(dir, "audit.key"))
		if err != nil {
			t.Fatal(err)
		}
		kp := filepath.Join(t.TempDir(), "pub.jwks")
		os.WriteFile(kp, jwks, 0o600)
		out, err := exec.Command(python, py, dir, kp).CombinedOutput()
		return strings.TrimSpace(string(out)), err == nil
	}

	// An intact trail over several files, with a sealed torn tail.
	cfg := testConfig(t)
	cfg.RotateSize = 3000
	writeTrail(t, cfg, 20)
	names, _ := listFiles(cfg.Dir)
	f, _ := os.OpenFile(filepath.Join(cfg.Dir, names[len(names)-1]), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":999,"torn`)
	f.Close()
	writeTrail(t, cfg, 5)
	if res := mustVerify(t, cfg.Dir); !res.OK() || len(res.Torn) != 1 {
		t.Fatalf("Go verify: %+v", res)
	}
	out, ok := run(cfg.Dir)
	if !ok || !strings.HasPrefix(out, "OK ") {
		t.Fatalf("python verifier on an intact trail: %s", out)
	}
	goRes := mustVerify(t, cfg.Dir)
	if !strings.Contains(out, " records") || !strings.Contains(out, "last seq "+strconv.FormatUint(goRes.LastSeq, 10)) {
		t.Fatalf("python and Go disagree: %s vs last seq %d", out, goRes.LastSeq)
	}

	// An edit is caught at the same seq as the Go verifier.
	dir, path, lines := tamperTrail(t)
	i := indexOfSeq(t, lines, 7)
	lines[i] = bytes.Replace(lines[i], []byte(`"tanaka"`), []byte(`"tanakA"`), 1)
	saveLines(t, path, lines)
	out, ok = run(dir)
	if ok || !strings.Contains(out, ":7") {
		t.Fatalf("python verifier missed an edit at line 7: %s", out)
	}
	// A truncated tail is caught against checkpoint.jws.
	dir, path, lines = tamperTrail(t)
	saveLines(t, path, lines[:len(lines)-3])
	if out, ok = run(dir); ok || !strings.Contains(out, "truncated") {
		t.Fatalf("python verifier missed truncation: %s", out)
	}
}
