package config

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestBadGolden loads every testdata/bad-*.yaml and compares the exact
// error text with bad-*.golden.
func TestBadGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/bad-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/bad-*.yaml")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			_, err := Load(file)
			if err == nil {
				t.Fatalf("Load(%s) succeeded, want errors", file)
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load(%s) = %T %v, want *Errors", file, err, err)
			}
			for _, e := range errs.List {
				if e.Line < 1 || e.File != file || e.Msg == "" {
					t.Errorf("incomplete error %+v", e)
				}
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("errors differ from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestLoadGood(t *testing.T) {
	cfg, err := Load("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	if got, want := len(cfg.Routes), 1; got != want {
		t.Fatalf("routes = %d, want %d", got, want)
	}
	r := cfg.Route("zaimu")
	if r == nil {
		t.Fatal(`Route("zaimu") = nil`)
	}
	if r.Upstream == nil || r.Upstream.String() != "http://10.2.0.10:8080" {
		t.Errorf("upstream = %v", r.Upstream)
	}
	if diff := cmp.Diff([]PathRule{{Prefix: "/export", Class: "3B"}}, r.Paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	if got := cfg.Zones.Names(); !cmp.Equal(got, []string{"chonai", "telework", "mynumber"}) {
		t.Errorf("zone order = %v", got)
	}
	if got, want := cfg.Server.TLS.Cert, filepath.Join(dir, "certs/server.pem"); got != want {
		t.Errorf("tls cert = %q, want %q", got, want)
	}
	if got := cfg.Server.TrustedProxies; !cmp.Equal(got, []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32"), netip.MustParsePrefix("10.0.1.0/24")}, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })) {
		t.Errorf("trusted proxies = %v", got)
	}
	// The file's 3A overrides the default's require list but keeps its label.
	c3a, ok := cfg.Class("3A")
	if !ok {
		t.Fatal(`Class("3A") missing`)
	}
	want3A := Class{Label: "機密性3A", MaxAuthAge: 15 * time.Minute, Require: []string{"passkey_uv", "device_cert"}, Audit: "sync"}
	if diff := cmp.Diff(want3A, c3a); diff != "" {
		t.Errorf("class 3A (-want +got):\n%s", diff)
	}
	if _, ok := cfg.Class("3C"); !ok {
		t.Error("default class 3C missing")
	}
	if cfg.Policy.Location == nil || cfg.Policy.Location.String() != "Asia/Tokyo" {
		t.Errorf("policy location = %v", cfg.Policy.Location)
	}
	if cfg.Policy.Profile != "beta-prime" || cfg.WebAuthn.RPName != "○○市 アクセスゲートウェイ" {
		t.Errorf("policy/webauthn not read: %+v %+v", cfg.Policy, cfg.WebAuthn)
	}
}

// TestFullExample loads the full example, which docs/config.md shows
// verbatim, and checks that the two have not drifted apart.
func TestFullExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "## 完全な設定例 / Full example\n\n```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok || block != string(file) {
		t.Errorf("the example in docs/config.md differs from testdata/full.yaml")
	}
	cfg, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(cfg.Routes); got != 3 {
		t.Errorf("routes = %d", got)
	}
	if r := cfg.Route("jinji"); r.Mode != ModeShadow || r.ClientCert != ClientCertRequired || r.Upstream.Scheme != "https" {
		t.Errorf("jinji = %+v", r)
	}
	if c, _ := cfg.Class("3A"); c.MaxAuthAge != 15*time.Minute || !cmp.Equal(c.Zones, []string{"chonai"}) || len(c.Require) != 3 {
		t.Errorf("3A = %+v", c)
	}
	if c, _ := cfg.Class("2"); c.MaxAuthAge != 8*time.Hour || c.Label != "機密性2" {
		t.Errorf("2 = %+v", c)
	}
	if got := cfg.ZoneOf(netip.MustParseAddr("10.9.3.4")); got != "mynumber" {
		t.Errorf("ZoneOf = %q", got)
	}
}

// TestMarshalRoundTrip checks that a loaded configuration marshalled with
// yaml.v3 (as the demo writes its file) loads back the same.
func TestMarshalRoundTrip(t *testing.T) {
	cfg, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("testdata/again.yaml", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	opts := cmp.Options{
		cmpopts.IgnoreFields(Config{}, "Path"),
		cmpopts.EquateEmpty(),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() }),
	}
	if diff := cmp.Diff(cfg, again, opts); diff != "" {
		t.Errorf("round trip (-first +second):\n%s", diff)
	}

	var z struct{ Zones Zones }
	if err := yaml.Unmarshal([]byte("zones: {b: [10.0.0.1], a: [10.1.0.0/16, \"2001:db8::/32\"]}"), &z); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(z.Zones); got != "[{b [10.0.0.1/32]} {a [10.1.0.0/16 2001:db8::/32]}]" {
		t.Errorf("yaml.Unmarshal zones = %s", got)
	}
	if err := yaml.Unmarshal([]byte("zones: {a: [10.1.2.3/16]}"), &z); err == nil {
		t.Error("yaml.Unmarshal accepted a prefix with host bits")
	}
}
