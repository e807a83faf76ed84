package audit

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRedactPath(t *testing.T) {
	names := redactSet([]string{"my_number", "Token"})
	for in, want := range map[string]string{
		"/a":                               "/a",
		"/a?page=2":                        "/a?page=2",
		"/a?my_number=123456789012":        "/a?my_number=REDACTED",
		"/a?x=1&TOKEN=abc&my_number=9&y=2": "/a?x=1&TOKEN=REDACTED&my_number=REDACTED&y=2",
		"/a?my%5Fnumber=1":                 "/a?my%5Fnumber=REDACTED",
		"/a?token":                         "/a?token=REDACTED",
		"/a?token=a=b":                     "/a?token=REDACTED",
		"/a?tokens=1":                      "/a?tokens=1",
		"/a?my_number=1&my_number=2":       "/a?my_number=REDACTED&my_number=REDACTED",
		"/a?q=%ZZ&token=x":                 "/a?q=%ZZ&token=REDACTED",
		"/search?token=REDACTED":           "/search?token=REDACTED",
	} {
		if got := redactPath(in, names); got != want {
			t.Errorf("redactPath(%q) = %q, want %q", in, got, want)
		}
	}
	if got := redactPath("/a?token=x", nil); got != "/a?token=x" {
		t.Errorf("no names: %q", got)
	}
}

// FuzzRedactPath: the path before '?' is kept, the result is stable, and no
// value of a redacted parameter survives.
func FuzzRedactPath(f *testing.F) {
	for _, s := range []string{"/a?token=abc", "/a?my_number=1&x=2", "/?%74oken=secret", "/a?token&token=", "/a"} {
		f.Add(s)
	}
	names := redactSet([]string{"my_number", "token"})
	f.Fuzz(func(t *testing.T, p string) {
		got := redactPath(p, names)
		before, _, _ := strings.Cut(p, "?")
		if !strings.HasPrefix(got, before) {
			t.Fatalf("path changed: %q → %q", p, got)
		}
		if again := redactPath(got, names); again != got {
			t.Fatalf("not stable: %q → %q → %q", p, got, again)
		}
		_, q, ok := strings.Cut(got, "?")
		if !ok {
			return
		}
		for part := range strings.SplitSeq(q, "&") {
			k, v, _ := strings.Cut(part, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if names[strings.ToLower(name)] && v != Redacted {
				t.Fatalf("value of %q survived in %q", name, got)
			}
		}
	})
}

func TestCheckpointInterval(t *testing.T) {
	cfg := testConfig(t)
	cfg.CheckpointEvery = 1000
	cfg.CheckpointInterval = time.Minute
	clk := newFakeClock()
	tr, err := Open(cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.AppendDurable(t.Context(), accessRecord(1)); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, r := range readRecords(t, cfg.Dir) {
			if r.Event == EventCheckpoint && r.Action == "interval" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no interval checkpoint after the interval passed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
