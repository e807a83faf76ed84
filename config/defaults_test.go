package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Parse(filepath.Join(dir, "sekisho.yaml"), []byte(`
server: {tls: {cert: s.pem, key: k.pem}}
webauthn: {rp_id: gw.example.lg.jp}
routes:
  - {name: zaimu, host: zaimu.gw.example.lg.jp, upstream: "http://10.2.0.10:8080", segment: lgwan, class: "2"}
`))
	if err != nil {
		t.Fatal(err)
	}
	j := func(p string) string { return filepath.Join(dir, p) }
	checks := []struct {
		name      string
		got, want any
	}{
		{"server.listen", cfg.Server.Listen, ":8443"},
		{"server.shutdown_timeout", cfg.Server.ShutdownTimeout, 30 * time.Second},
		{"server.read_header_timeout", cfg.Server.ReadHeaderTimeout, 10 * time.Second},
		{"server.idle_timeout", cfg.Server.IdleTimeout, 120 * time.Second},
		{"server.max_header_bytes", cfg.Server.MaxHeaderBytes, 65536},
		{"server.park_idle_after", cfg.Server.ParkIdleAfter, 1000},
		{"server.fast_path", cfg.Server.FastPathOn(), true},
		{"server.gc_heap_floor_mib", cfg.Server.GCHeapFloorMiB, 64},
		{"server.language", cfg.Server.Language, "ja"},
		{"server.ocsp.timeout", cfg.Server.OCSP.Timeout, 3 * time.Second},
		{"server.ocsp.fail_open", cfg.Server.OCSP.FailOpen, false},
		{"store.driver", cfg.Store.Driver, "sqlite"},
		{"store.dsn", cfg.Store.DSN, j("data/sekisho.db")},
		{"webauthn.rp_name", cfg.WebAuthn.RPName, "sekisho"},
		{"webauthn.user_verification", cfg.WebAuthn.UserVerification, "required"},
		{"webauthn.ceremony_timeout", cfg.WebAuthn.CeremonyTimeout, 5 * time.Minute},
		{"webauthn.origins", cfg.WebAuthn.Origins, []string{"https://zaimu.gw.example.lg.jp", "https://zaimu.gw.example.lg.jp:8443"}},
		{"session.lifetime", cfg.Session.Lifetime, 10 * time.Hour},
		{"session.idle", cfg.Session.Idle, 30 * time.Minute},
		{"session.bind_to_device", cfg.Session.Bound(), true},
		{"session.key_rotation", cfg.Session.KeyRotation, 24 * time.Hour},
		{"session.assertion_lifetime", cfg.Session.AssertionLifetime, 60 * time.Second},
		{"routes[0].mode", cfg.Routes[0].Mode, "enforce"},
		{"routes[0].client_cert", cfg.Routes[0].ClientCert, "optional"},
		{"routes[0].timeout", cfg.Routes[0].Timeout, 60 * time.Second},
		{"policy.model", cfg.Policy.Model, "builtin"},
		{"policy.file", cfg.Policy.File, j("policy.csv")},
		{"policy.timezone", cfg.Policy.Timezone, "Asia/Tokyo"},
		{"policy.location", cfg.Policy.Location.String(), "Asia/Tokyo"},
		{"audit.dir", cfg.Audit.Dir, j("data/audit")},
		{"audit.key", cfg.Audit.Key, j("data/audit/audit.key")},
		{"audit.checkpoint_every", cfg.Audit.CheckpointEvery, 1000},
		{"audit.checkpoint_interval", cfg.Audit.CheckpointInterval, 60 * time.Second},
		{"audit.rotate_size", cfg.Audit.RotateSize, int64(256 << 20)},
		{"audit.retention", cfg.Audit.Retention, 8760 * time.Hour},
		{"devices.id_from", cfg.Devices.IDFrom, "san_uri"},
		{"devices.uri_prefix", cfg.Devices.URIPrefix, "urn:sekisho:device:"},
		{"zones", len(cfg.Zones), 0},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
	wantClasses := map[string]Class{
		"3A": {Label: "機密性3A", MaxAuthAge: 15 * time.Minute, Require: []string{"passkey_uv", "device_cert", "registered_device"}, Audit: "sync"},
		"3B": {Label: "機密性3B", MaxAuthAge: time.Hour, Require: []string{"passkey_uv", "device_cert"}, Audit: "sync"},
		"3C": {Label: "機密性3C", MaxAuthAge: 4 * time.Hour, Require: []string{"passkey_uv"}, Audit: "async"},
		"2":  {Label: "機密性2", MaxAuthAge: 10 * time.Hour, Require: []string{"passkey"}, Audit: "async"},
		"1":  {Label: "機密性1", Require: []string{}, Audit: "async"},
	}
	if diff := cmp.Diff(wantClasses, cfg.Classes); diff != "" {
		t.Errorf("classes (-want +got):\n%s", diff)
	}
}

// TestDefaultsKeepExplicit checks that written values, including an
// explicit zero retention ("keep everything"), are not replaced.
func TestDefaultsKeepExplicit(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(`
server: {http_listen: ":8080", listen: "127.0.0.1:443", language: en, max_header_bytes: 1024}
session: {lifetime: 8h, bind_to_device: false}
audit: {retention: 0s, dir: /var/lib/sekisho/audit, key: /etc/sekisho/audit.key, rotate_size: 1048576}
devices: {id_from: cn}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Audit.Retention != 0 {
		t.Errorf("retention = %v, want 0 (keep everything)", cfg.Audit.Retention)
	}
	if cfg.Session.Lifetime != 8*time.Hour || cfg.Session.Bound() {
		t.Errorf("session = %+v", cfg.Session)
	}
	if cfg.Server.Language != "en" || cfg.Server.MaxHeaderBytes != 1024 || cfg.Server.Listen != "127.0.0.1:443" {
		t.Errorf("server = %+v", cfg.Server)
	}
	if cfg.Audit.Dir != "/var/lib/sekisho/audit" || cfg.Audit.Key != "/etc/sekisho/audit.key" || cfg.Audit.RotateSize != 1<<20 {
		t.Errorf("audit = %+v", cfg.Audit)
	}
	if cfg.Devices.IDFrom != "cn" {
		t.Errorf("id_from = %q", cfg.Devices.IDFrom)
	}
}

// TestClassOverride checks the field-by-field merge of classes: with the
// shipped defaults, and that the defaults themselves are never changed.
func TestClassOverride(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(`
server: {http_listen: ":8080", client_ca: [ca.pem]}
zones: {chonai: [10.1.0.0/16]}
classes:
  "3A": {max_auth_age: 5m, zones: [chonai]}
  "1": {require: [passkey]}
  "2": {require: []}
  kokai: {require: []}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Class{
		"3A":    {Label: "機密性3A", MaxAuthAge: 5 * time.Minute, Require: []string{"passkey_uv", "device_cert", "registered_device"}, Audit: "sync", Zones: []string{"chonai"}},
		"3B":    {Label: "機密性3B", MaxAuthAge: time.Hour, Require: []string{"passkey_uv", "device_cert"}, Audit: "sync"},
		"3C":    {Label: "機密性3C", MaxAuthAge: 4 * time.Hour, Require: []string{"passkey_uv"}, Audit: "async"},
		"2":     {Label: "機密性2", MaxAuthAge: 10 * time.Hour, Require: []string{}, Audit: "async"},
		"1":     {Label: "機密性1", Require: []string{"passkey"}, Audit: "async"},
		"kokai": {Label: "kokai", Require: []string{}, Audit: "async"},
	}
	if diff := cmp.Diff(want, cfg.Classes); diff != "" {
		t.Errorf("classes (-want +got):\n%s", diff)
	}
	if c, _ := DefaultClasses()["3A"]; c.MaxAuthAge != 15*time.Minute || len(c.Zones) != 0 {
		t.Errorf("the shipped default changed: %+v", c)
	}
	cfg.Classes["3B"].Require[0] = "changed"
	if DefaultClasses()["3B"].Require[0] != "passkey_uv" {
		t.Error("a loaded configuration shares its slices with the shipped defaults")
	}
}

func TestPathResolution(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Parse(filepath.Join(dir, "conf", "sekisho.yaml"), []byte(`
server:
  tls: {cert: certs/server.pem, key: /etc/sekisho/server-key.pem}
  client_ca: [certs/ca1.pem, ../shared/ca2.pem]
  crl: crl.pem
store: {driver: sqlite, dsn: db/s.db}
webauthn: {rp_id: gw.example.lg.jp}
routes:
  - {name: a, host: a.gw.example.lg.jp, upstream: "https://10.0.0.1", upstream_ca: ca/up.pem, segment: lgwan, class: "2"}
policy: {file: rules/policy.csv}
audit:
  dir: /var/audit
  sinks: [{type: syslog, address: "tls://siem:6514", ca: siem-ca.pem}]
`))
	if err != nil {
		t.Fatal(err)
	}
	c := filepath.Join(dir, "conf")
	got := []string{cfg.Server.TLS.Cert, cfg.Server.TLS.Key, cfg.Server.ClientCA[0], cfg.Server.ClientCA[1], cfg.Server.CRL,
		cfg.Store.DSN, cfg.Routes[0].UpstreamCA, cfg.Policy.File, cfg.Audit.Dir, cfg.Audit.Key, cfg.Audit.Sinks[0].CA}
	want := []string{filepath.Join(c, "certs/server.pem"), "/etc/sekisho/server-key.pem", filepath.Join(c, "certs/ca1.pem"),
		filepath.Join(dir, "shared/ca2.pem"), filepath.Join(c, "crl.pem"), filepath.Join(c, "db/s.db"), filepath.Join(c, "ca/up.pem"),
		filepath.Join(c, "rules/policy.csv"), "/var/audit", "/var/audit/audit.key", filepath.Join(c, "siem-ca.pem")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}

	// Connection strings are not file names.
	for _, tt := range []struct{ driver, dsn string }{
		{"postgres", "postgres://u@db/sekisho"},
		{"sqlite", ":memory:"},
		{"sqlite", "file:test.db?mode=memory"},
	} {
		cfg, err := Parse(filepath.Join(dir, "s.yaml"), []byte("server: {http_listen: \":1\"}\nstore: {driver: "+tt.driver+", dsn: \""+tt.dsn+"\"}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Store.DSN != tt.dsn {
			t.Errorf("%s dsn %q became %q", tt.driver, tt.dsn, cfg.Store.DSN)
		}
	}

	// A relative configuration path resolves against the working directory.
	cfg, err = Parse("sekisho.yaml", []byte("server: {http_listen: \":1\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if wd, _ := filepath.Abs("."); cfg.Policy.File != filepath.Join(wd, "policy.csv") {
		t.Errorf("policy file = %q, want it in %s", cfg.Policy.File, wd)
	}
}

func TestDefaultOrigins(t *testing.T) {
	tests := []struct {
		name, server string
		hosts        []string
		rpID         string
		want         []string
	}{
		{"port 443", `{listen: ":443", tls: {cert: c, key: k}}`, []string{"a.gw.example.lg.jp", "b.gw.example.lg.jp"}, "gw.example.lg.jp",
			[]string{"https://a.gw.example.lg.jp", "https://b.gw.example.lg.jp"}},
		{"public port", `{public_port: 443, tls: {cert: c, key: k}}`, []string{"a.gw.example.lg.jp"}, "gw.example.lg.jp",
			[]string{"https://a.gw.example.lg.jp"}},
		{"demo on localhost", `{listen: "127.0.0.1:8443", http_listen: "127.0.0.1:8080", tls: {cert: c, key: k}}`, []string{"zaimu.localhost", "jinji.localhost"}, "localhost",
			[]string{"https://zaimu.localhost", "https://zaimu.localhost:8443", "http://zaimu.localhost:8080", "https://jinji.localhost", "https://jinji.localhost:8443", "http://jinji.localhost:8080"}},
		{"http behind a balancer, not localhost", `{http_listen: ":8080"}`, []string{"a.gw.example.lg.jp"}, "gw.example.lg.jp",
			[]string{"https://a.gw.example.lg.jp", "https://a.gw.example.lg.jp:8443"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := "server: " + tt.server + "\nwebauthn: {rp_id: " + tt.rpID + "}\nroutes:\n"
			for i, h := range tt.hosts {
				y += "  - {name: r" + string(rune('a'+i)) + ", host: " + h + ", upstream: \"http://127.0.0.1:9000\", segment: lgwan, class: \"2\"}\n"
			}
			cfg, err := Parse("t.yaml", []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, cfg.WebAuthn.Origins); diff != "" {
				t.Errorf("origins (-want +got):\n%s", diff)
			}
		})
	}
}

func TestZoneOf(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(`
server: {http_listen: ":1"}
zones:
  mynumber: [10.9.0.0/16]
  chonai: [10.0.0.0/8, 192.0.2.7]
  v6: ["2001:db8::/32"]
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ ip, want string }{
		{"10.9.1.1", "mynumber"}, // overlapping: the first zone in file order wins
		{"10.1.2.3", "chonai"},
		{"192.0.2.7", "chonai"},
		{"192.0.2.8", "external"},
		{"::ffff:10.1.2.3", "chonai"},
		{"2001:db8::1", "v6"},
		{"2001:db9::1", "external"},
		{"fe80::1%eth0", "external"},
		{"203.0.113.5", "external"},
	} {
		if got := cfg.ZoneOf(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("ZoneOf(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
	if got := (&Config{}).ZoneOf(netip.MustParseAddr("10.0.0.1")); got != ZoneExternal {
		t.Errorf("empty config ZoneOf = %q", got)
	}
}

func TestLookups(t *testing.T) {
	cfg, err := Load("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Route("nope"); r != nil {
		t.Errorf("Route(nope) = %+v", r)
	}
	r := cfg.Route("zaimu")
	r.Mode = ModeShadow
	if cfg.Routes[0].Mode != ModeShadow {
		t.Error("Route does not point into Routes")
	}
	if _, ok := cfg.Class("9"); ok {
		t.Error(`Class("9") found`)
	}
}

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"server.pem", "server-key.pem", "ca.pem", "policy.csv"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "crl.pem"), 0o700); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "sekisho.yaml")
	data := []byte(`server:
  tls: {cert: server.pem, key: server-key.pem}
  client_ca: [ca.pem, missing-ca.pem]
  crl: crl.pem
webauthn: {rp_id: gw.example.lg.jp}
routes:
  - {name: a, host: a.gw.example.lg.jp, upstream: "https://x", upstream_ca: up.pem, segment: lgwan, class: "2"}
`)
	if _, err := Parse(name, data); err != nil {
		t.Fatalf("without CheckFiles: %v", err)
	}
	_, err := Parse(name, data, CheckFiles())
	want := strings.Join([]string{
		name + ":3: server.client_ca[1]: " + filepath.Join(dir, "missing-ca.pem") + ": no such file (ファイルがありません)",
		name + ":4: server.crl: " + filepath.Join(dir, "crl.pem") + " is a directory, not a file (ディレクトリではなくファイルを指定してください)",
		name + ":7: routes[0].upstream_ca: " + filepath.Join(dir, "up.pem") + ": no such file (ファイルがありません)",
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}

	// The default policy file is checked too, reported at the first line.
	if err := os.Remove(filepath.Join(dir, "policy.csv")); err != nil {
		t.Fatal(err)
	}
	_, err = Parse(name, []byte("server: {http_listen: \":1\"}\n"), CheckFiles())
	if want := name + ":1: policy.file: " + filepath.Join(dir, "policy.csv") + ": no such file (ファイルがありません)"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
