package config

import (
	"errors"
	"strings"
	"testing"
)

// okRoute is a valid route line for building small test files.
const okRoute = `  - {name: a, host: a.gw.example.lg.jp, upstream: "http://127.0.0.1:9000", segment: lgwan, class: "2"}
`

// head is a valid start of a file: lines 1–2; routes: starts at line 3.
const head = `server: {http_listen: "127.0.0.1:8080"}
webauthn: {rp_id: gw.example.lg.jp}
`

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each a substring of one error line, file:line: key: message
	}{
		{"unknown top-level key", "server: {http_listen: \":1\"}\nserverr: {}\n", []string{`t.yaml:2: serverr: unknown key; did you mean "server"?`}},
		{"unknown nested key", head + "routes:\n  - {name: a, host: a.gw.example.lg.jp, upstream: \"http://x\", segment: lgwan, class: \"2\", clas: x}\n",
			[]string{`t.yaml:4: routes[0].clas: unknown key; did you mean "class"?`}},
		{"duplicate key", "server:\n  listen: \":1\"\n  listen: \":2\"\n  http_listen: \":3\"\n", []string{`t.yaml:3: server.listen: duplicate key`}},
		{"anchor in unknown key", "server: {http_listen: \":1\"}\nbase: &b {listen: \":1\"}\n", []string{`t.yaml:2: base: unknown key`}},
		{"merge key inside", "server:\n  <<: {listen: \":1\"}\n  http_listen: \":3\"\n", []string{`t.yaml:2: server: merge keys (<<) are not supported`}},
		{"scalar for mapping", "server: yes\n", []string{`t.yaml:1: server: want a mapping of keys, got "yes"`}},
		{"top level list", "- a\n", []string{`t.yaml:1: want a mapping of keys, got a list`}},
		{"list for string", head + "routes:\n  - {name: [a], host: a.gw.example.lg.jp, upstream: \"http://x\", segment: lgwan, class: \"2\"}\n", []string{`t.yaml:4: routes[0].name: want a string (文字列), got a list`}},
		{"bad bool", "server: {http_listen: \":1\"}\nsession: {bind_to_device: yes}\n", []string{`t.yaml:2: session.bind_to_device: want true or false, got "yes"`}},
		{"bad int", "server: {http_listen: \":1\", max_header_bytes: 1k}\n", []string{`t.yaml:1: server.max_header_bytes: want a whole number, got "1k"`}},
		{"int overflow", "server: {http_listen: \":1\", public_port: 99999999999999999999}\n", []string{`t.yaml:1: server.public_port: "99999999999999999999" is not a whole number in range`}},
		{"gc_heap_floor_mib below -1", "server: {http_listen: \":1\", gc_heap_floor_mib: -2}\n", []string{`t.yaml:1: server.gc_heap_floor_mib: must be -1 (Go's own pacing) or a size in MiB`}},
		{"park_idle_after below -1", "server: {http_listen: \":1\", park_idle_after: -2}\n", []string{`t.yaml:1: server.park_idle_after: must be -1 (never) or a number of connections`}},
		{"bad port", "server: {http_listen: \":1\", public_port: 70000}\n", []string{`t.yaml:1: server.public_port: 70000 is not a port number`}},
		{"negative duration", "server: {http_listen: \":1\"}\nsession: {idle: -5m}\n", []string{`t.yaml:2: session.idle: -5m is negative`}},
		{"bad duration", "server: {http_listen: \":1\"}\nsession:\n  lifetime: 10 hours\n", []string{`t.yaml:3: session.lifetime: "10 hours" is not a duration`}},
		{"listen not host:port", "server: {listen: \"8443\", http_listen: \":1\"}\n", []string{`t.yaml:1: server.listen: "8443" is not host:port`}},
		{"listener clash", "server: {listen: \":8443\", http_listen: \":8443\", metrics_listen: \":8443\", tls: {cert: c, key: k}}\n", []string{
			`t.yaml:1: server.http_listen: same address as server.listen`,
			`t.yaml:1: server.metrics_listen: same address as another listener`,
		}},
		{"listener clash with default", "server: {http_listen: \":8443\"}\n", []string{`t.yaml:1: server.http_listen: same address as server.listen`}},
		{"tls missing", "server: {listen: \":8443\"}\n", []string{`t.yaml:1: server.tls: cert and key are required`}},
		{"tls key without cert", "server:\n  tls: {key: k.pem}\n", []string{`t.yaml:2: server.tls.cert: required when server.tls.key is set`}},
		{"no tls section at all", "store: {driver: sqlite}\n", []string{`t.yaml:1: server.tls: cert and key are required`}},
		{"bad language", "server: {http_listen: \":1\", language: fr}\n", []string{`t.yaml:1: server.language: "fr" is not one of ja, en`}},
		{"bare IP proxy ok, bad one not", "server:\n  http_listen: \":1\"\n  trusted_proxies: [10.0.0.1, \"fe80::1%eth0\"]\n", []string{`t.yaml:3: server.trusted_proxies[1]: "fe80::1%eth0": zoned addresses are not allowed`}},
		{"store driver", "server: {http_listen: \":1\"}\nstore: {driver: mysql}\n", []string{`t.yaml:2: store.driver: "mysql" is not one of sqlite, postgres`}},
		{"postgres without dsn", "server: {http_listen: \":1\"}\nstore: {driver: postgres}\n", []string{`t.yaml:2: store.dsn: required for the postgres driver`}},
		{"rp_id missing", "server: {http_listen: \":1\"}\nroutes:\n" + okRoute, []string{`t.yaml:1: webauthn.rp_id: required`}},
		{"rp_id missing in present section", "server: {http_listen: \":1\"}\nwebauthn:\n  rp_name: x\nroutes:\n" + okRoute, []string{`t.yaml:2: webauthn.rp_id: required`}},
		{"rp_id not a suffix", "server: {http_listen: \":1\"}\nwebauthn: {rp_id: other.example.jp}\nroutes:\n" + okRoute,
			[]string{`t.yaml:4: routes[0].host: "a.gw.example.lg.jp" is not webauthn.rp_id "other.example.jp" or a name below it`}},
		{"rp_id label boundary", "server: {http_listen: \":1\"}\nwebauthn: {rp_id: example.lg.jp}\nroutes:\n  - {name: a, host: a.badexample.lg.jp, upstream: \"http://x\", segment: lgwan, class: \"2\"}\n",
			[]string{`t.yaml:4: routes[0].host: "a.badexample.lg.jp" is not webauthn.rp_id`}},
		{"rp_id single label", "server: {http_listen: \":1\"}\nwebauthn: {rp_id: jp}\n", []string{`t.yaml:2: webauthn.rp_id: "jp" is not a registrable domain`}},
		{"rp_id upper case", "server: {http_listen: \":1\"}\nwebauthn: {rp_id: GW.example.jp}\n", []string{`t.yaml:2: webauthn.rp_id: host names must be lower case`}},
		{"user verification", "server: {http_listen: \":1\"}\nwebauthn: {user_verification: always}\n", []string{`t.yaml:2: webauthn.user_verification: "always" is not one of required, preferred, discouraged`}},
		{"aaguid", "server: {http_listen: \":1\"}\nwebauthn:\n  allowed_aaguids:\n    - 08987058-cadc-4b81-b6e1-30de50dcbe96\n    - not-a-uuid\n",
			[]string{`t.yaml:5: webauthn.allowed_aaguids[1]: "not-a-uuid" is not a UUID`}},
		{"origins", head + "routes:\n" + okRoute + "webauthn:\n", []string{`t.yaml:5: webauthn: duplicate key`}},
		{"origin checks", "server: {http_listen: \":1\"}\nwebauthn:\n  rp_id: gw.example.lg.jp\n  origins:\n    - http://a.gw.example.lg.jp\n    - https://a.gw.example.lg.jp/path\n    - https://a.*.gw.example.lg.jp\n    - https://evil.example.com\n    - https://*.gw.example.lg.jp:8443\n    - http://*.localhost:8080\n",
			[]string{
				`t.yaml:5: webauthn.origins[0]: "http://a.gw.example.lg.jp": an origin must be https (http only for localhost)`,
				`t.yaml:6: webauthn.origins[1]: "https://a.gw.example.lg.jp/path": an origin is scheme://host[:port] only`,
				`t.yaml:7: webauthn.origins[2]: "https://a.*.gw.example.lg.jp": "*" may only stand for the whole first label`,
				`t.yaml:8: webauthn.origins[3]: "https://evil.example.com": not webauthn.rp_id or a name below it`,
				`t.yaml:10: webauthn.origins[5]: "http://*.localhost:8080": not webauthn.rp_id or a name below it`,
			}},
		{"zone reserved and empty", "server: {http_listen: \":1\"}\nzones:\n  external: [0.0.0.0/0]\n  empty: []\n  nothing:\n  \"bad name\": [10.0.0.0/8]\n",
			[]string{
				`t.yaml:3: zones.external: the zone name "external" is reserved`,
				`t.yaml:4: zones.empty: a zone needs at least one network prefix`,
				`t.yaml:5: zones.nothing: a zone needs at least one network prefix`,
				`t.yaml:6: zones.bad name: zone names use letters`,
			}},
		{"zone prefix", "server: {http_listen: \":1\"}\nzones:\n  chonai: [10.1.0.0/16, 10.2.3.4/16, 300.1.1.1]\n", []string{
			`t.yaml:3: zones.chonai[1]: "10.2.3.4/16" has host bits set; did you mean 10.2.0.0/16?`,
			`t.yaml:3: zones.chonai[2]: "300.1.1.1" is not an IP address or prefix`,
		}},
		{"zone not a list", "server: {http_listen: \":1\"}\nzones:\n  chonai: 10.1.0.0/16\n", []string{`t.yaml:3: zones.chonai: want a list, got "10.1.0.0/16"`}},
		{"zones not a mapping", "server: {http_listen: \":1\"}\nzones: [10.1.0.0/16]\n", []string{`t.yaml:2: zones: want a mapping of zone name to prefixes, got a list`}},
		{"class checks", "server: {http_listen: \":1\"}\nclasses:\n  \"3A\": {require: [passkey, fingerprint], audit: always, zones: [chonai, external], integrity: \"3\"}\n",
			[]string{
				`t.yaml:3: classes.3A.require[1]: "fingerprint" is not one of passkey, passkey_uv, device_cert, registered_device, device_owned`,
				`t.yaml:3: classes.3A.audit: "always" is not one of sync, async`,
				`t.yaml:3: classes.3A.zones[0]: unknown zone "chonai"`,
				`t.yaml:3: classes.3A.integrity: "3" is not one of 1, 2`,
			}},
		{"class unknown key", "server: {http_listen: \":1\"}\nclasses:\n  \"2\": {max_auth_ag: 1h}\n", []string{`t.yaml:3: classes.2.max_auth_ag: unknown key; did you mean "max_auth_age"?`}},
		{"route required keys", head + "routes:\n  - {name: a}\n", []string{
			`t.yaml:4: routes[0].host: required`,
			`t.yaml:4: routes[0].upstream: required`,
			`t.yaml:4: routes[0].segment: required`,
			`t.yaml:4: routes[0].class: required`,
		}},
		{"duplicate names and hosts", head + "routes:\n" + okRoute + okRoute, []string{
			`t.yaml:5: routes[1].name: duplicate route name "a", also routes[0]`,
			`t.yaml:5: routes[1].host: duplicate host "a.gw.example.lg.jp", also routes[0]`,
		}},
		{"host forms", head + "routes:\n" +
			"  - {name: a, host: \"https://a.gw.example.lg.jp\", upstream: \"http://x\", segment: lgwan, class: \"2\"}\n" +
			"  - {name: b, host: \"b.gw.example.lg.jp:443\", upstream: \"http://x\", segment: lgwan, class: \"2\"}\n" +
			"  - {name: c, host: C.gw.example.lg.jp, upstream: \"http://x\", segment: lgwan, class: \"2\"}\n" +
			"  - {name: d, host: \"d_d.gw.example.lg.jp\", upstream: \"http://x\", segment: lgwan, class: \"2\"}\n" +
			"  - {name: e, host: \"10.0.0.1\", upstream: \"http://x\", segment: lgwan, class: \"2\"}\n" +
			"  - {name: \"f g\", host: \"f.gw.example.lg.jp/x\", upstream: \"http://x\", segment: lgwan, class: \"2\"}\n",
			[]string{
				`t.yaml:4: routes[0].host: a host name only, without a scheme`,
				`t.yaml:5: routes[1].host: a host name only, without a port`,
				`t.yaml:6: routes[2].host: host names must be lower case`,
				`t.yaml:7: routes[3].host: not a valid host name`,
				`t.yaml:8: routes[4].host: not a valid host name`,
				`t.yaml:9: routes[5].name: route names use letters`,
				`t.yaml:9: routes[5].host: a host name only, without a path`,
			}},
		{"upstream forms", head + "routes:\n" +
			"  - {name: a, host: a.gw.example.lg.jp, upstream: \"ftp://x\", segment: lgwan, class: \"2\"}\n" +
			"  - {name: b, host: b.gw.example.lg.jp, upstream: \"http://\", segment: lgwan, class: \"2\"}\n" +
			"  - {name: c, host: c.gw.example.lg.jp, upstream: \"http://x/?a=1\", segment: lgwan, class: \"2\"}\n" +
			"  - {name: d, host: d.gw.example.lg.jp, upstream: \"http://x/#f\", segment: lgwan, class: \"2\"}\n" +
			"  - {name: e, host: e.gw.example.lg.jp, upstream: \"http://u:p@x\", segment: lgwan, class: \"2\"}\n" +
			"  - {name: f, host: f.gw.example.lg.jp, upstream: \"10.0.0.1:8080\", segment: lgwan, class: \"2\"}\n" +
			"  - {name: g, host: g.gw.example.lg.jp, upstream: \"http://x:99999\", segment: lgwan, class: \"2\"}\n" +
			"  - {name: h, host: h.gw.example.lg.jp, upstream: \"http://x\", upstream_ca: ca.pem, segment: lgwan, class: \"2\"}\n",
			[]string{
				`t.yaml:4: routes[0].upstream: "ftp://x": the scheme must be http or https`,
				`t.yaml:5: routes[1].upstream: "http://" has no host`,
				`t.yaml:6: routes[2].upstream: "http://x/?a=1": no query or fragment allowed`,
				`t.yaml:7: routes[3].upstream: "http://x/#f": no query or fragment allowed`,
				`t.yaml:8: routes[4].upstream: "http://u:p@x": user information in the URL is not supported`,
				`t.yaml:9: routes[5].upstream: "10.0.0.1:8080": write the whole URL`,
				`t.yaml:10: routes[6].upstream: "http://x:99999": bad port`,
				`t.yaml:11: routes[7].upstream_ca: only meaningful for an https upstream`,
			}},
		{"route enums", head + "routes:\n  - name: a\n    host: a.gw.example.lg.jp\n    upstream: http://x\n    segment: web\n    class: \"2\"\n    mode: audit\n    client_cert: always\n",
			[]string{
				`t.yaml:7: routes[0].segment: "web" is not one of mynumber, lgwan, internet`,
				`t.yaml:9: routes[0].mode: "audit" is not one of enforce, shadow`,
				`t.yaml:10: routes[0].client_cert: "always" is not one of optional, required`,
			}},
		{"client cert required without CA", head + "routes:\n  - {name: a, host: a.gw.example.lg.jp, upstream: \"http://x\", segment: lgwan, class: \"2\", client_cert: required}\n",
			[]string{`t.yaml:4: routes[0].client_cert: required, but server.client_ca is empty`}},
		{"device class without CA", head + "routes:\n  - {name: a, host: a.gw.example.lg.jp, upstream: \"http://x\", segment: lgwan, class: \"3B\"}\n",
			[]string{`t.yaml:4: routes[0].class: class "3B" requires device_cert, but server.client_ca is empty`}},
		{"unknown classes", head + "routes:\n  - name: a\n    host: a.gw.example.lg.jp\n    upstream: http://x\n    segment: lgwan\n    class: \"4\"\n    paths:\n      - {prefix: /x, class: 3D}\n",
			[]string{
				`t.yaml:8: routes[0].class: unknown class "4"; known: 1, 2, 3A, 3B, 3C`,
				`t.yaml:10: routes[0].paths[0].class: unknown class "3D"`,
			}},
		{"path prefixes", head + "routes:\n  - name: a\n    host: a.gw.example.lg.jp\n    upstream: http://x\n    segment: lgwan\n    class: \"2\"\n    paths:\n" +
			"      - {prefix: export}\n" +
			"      - {prefix: /a/../b}\n" +
			"      - {prefix: /a//b}\n" +
			"      - {prefix: /a%2fb}\n" +
			"      - {prefix: '/a\\b'}\n" +
			"      - {prefix: \"/a\\0b\"}\n" +
			"      - {prefix: /.sekisho/admin}\n" +
			"      - {prefix: /ok, action: delete, mode: log}\n" +
			"      - {prefix: /ok}\n" +
			"      - {class: \"2\"}\n" +
			"      - {prefix: \"/a\\tb\"}\n",
			[]string{
				`t.yaml:10: routes[0].paths[0].prefix: a path prefix must start with /`,
				`t.yaml:11: routes[0].paths[1].prefix: a path prefix must not contain ..`,
				`t.yaml:12: routes[0].paths[2].prefix: a path prefix must not contain //`,
				`t.yaml:13: routes[0].paths[3].prefix: a path prefix must not contain % escapes`,
				`t.yaml:14: routes[0].paths[4].prefix: a path prefix must not contain a backslash`,
				`t.yaml:15: routes[0].paths[5].prefix: a path prefix must not contain NUL`,
				`t.yaml:16: routes[0].paths[6].prefix: /.sekisho/ is reserved`,
				`t.yaml:17: routes[0].paths[7].action: "delete" is not one of export, admin`,
				`t.yaml:17: routes[0].paths[7].mode: "log" is not one of enforce, shadow`,
				`t.yaml:18: routes[0].paths[8].prefix: duplicate prefix "/ok", also paths[7]`,
				`t.yaml:19: routes[0].paths[9].prefix: required`,
				`t.yaml:20: routes[0].paths[10].prefix: a path prefix must not contain control characters`,
			}},
		{"case-insensitive duplicate prefix", head + "routes:\n  - name: a\n    host: a.gw.example.lg.jp\n    upstream: http://x\n    segment: lgwan\n    class: \"2\"\n    case_insensitive: true\n    paths: [{prefix: /Export}, {prefix: /export}]\n",
			[]string{`t.yaml:10: routes[0].paths[1].prefix: duplicate prefix "/export", also paths[0]`}},
		{"public route class", head + "routes:\n  - {name: a, host: a.gw.example.lg.jp, upstream: \"http://x\", segment: internet, class: \"2\", public: true}\n" +
			"  - {name: b, host: b.gw.example.lg.jp, upstream: \"http://x\", segment: internet, class: \"1\", public: true, paths: [{prefix: /admin, class: \"2\"}]}\n",
			[]string{
				`t.yaml:4: routes[0].public: only a class "1" route can be public, this one is "2"`,
				`t.yaml:5: routes[1].paths[0].class: the route is public`,
			}},
		{"policy", "server: {http_listen: \":1\"}\npolicy: {timezone: Asia/Nowhere, profile: gamma}\n", []string{
			`t.yaml:2: policy.timezone: unknown time zone "Asia/Nowhere"`,
			`t.yaml:2: policy.profile: "gamma" is not one of alpha, alpha-prime, beta, beta-prime`,
		}},
		{"audit", "server: {http_listen: \":1\"}\naudit:\n  checkpoint_every: -1\n  rotate_size: -5\n  redact: [token, \"\"]\n  sinks:\n    - {type: kafka}\n    - {type: syslog}\n    - {type: syslog, address: \"udp://siem:514\"}\n    - {type: syslog, address: \"tcp://siem:514\", ca: ca.pem}\n    - {type: postgres, address: x}\n    - {address: x}\n",
			[]string{
				`t.yaml:3: audit.checkpoint_every: must not be negative`,
				`t.yaml:4: audit.rotate_size: must not be negative`,
				`t.yaml:5: audit.redact[1]: empty parameter name`,
				`t.yaml:7: audit.sinks[0].type: "kafka" is not one of syslog, postgres`,
				`t.yaml:8: audit.sinks[1].address: required for syslog`,
				`t.yaml:9: audit.sinks[2].address: "udp://siem:514": want tcp://host:port or tls://host:port`,
				`t.yaml:10: audit.sinks[3].ca: only meaningful for a tls:// address`,
				`t.yaml:11: audit.sinks[4].address: not used by a postgres sink`,
				`t.yaml:12: audit.sinks[5].type: required`,
			}},
		{"devices", "server: {http_listen: \":1\"}\ndevices: {id_from: serial}\n", []string{`t.yaml:2: devices.id_from: "serial" is not one of san_uri, san_dns, san_upn, san_email, cn`}},
		{"one error per mistake", head + "routes:\n  - {name: a, host: a.gw.example.lg.jp, upstream: \"http://x\", segment: lgwan, class: [\"2\"]}\n",
			[]string{`t.yaml:4: routes[0].class: want a string (文字列), got a list`}},
		{"empty file", "", []string{`t.yaml:1: the file is empty`}},
		{"comment only", "# nothing\n", []string{`t.yaml:1: the file is empty`}},
		{"two documents", "server: {http_listen: \":1\"}\n---\nserver: {}\n", []string{`t.yaml:2: more than one YAML document`}},
		{"syntax", "server:\n  listen: [\n", []string{`t.yaml:2: YAML syntax error: did not find expected node content`}},
		{"billion laughs", laughs(), []string{`more than 100000 YAML nodes`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want %q", tt.want)
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want *Errors: %v", err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%s", w, err)
				}
			}
			for _, e := range errs.List {
				if e.Line < 1 || e.File != "t.yaml" {
					t.Errorf("error without a place: %+v", e)
				}
			}
		})
	}
}

// laughs is a YAML alias bomb: 400 aliases of a route with 400 paths,
// about half a million nodes from 20 KB of text.
func laughs() string {
	return "server: {http_listen: \":1\"}\nroutes:\n  - &r {name: a, paths: [" +
		strings.Repeat("{prefix: /a}, ", 399) + "{prefix: /a}]}\n" +
		strings.Repeat("  - *r\n", 399)
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{"http only, no routes", "server: {http_listen: \":8080\"}\n"},
		{"localhost demo", "server: {http_listen: \"127.0.0.1:8080\"}\nwebauthn: {rp_id: localhost}\nroutes:\n  - {name: a, host: zaimu.localhost, upstream: \"http://127.0.0.1:9000\", segment: lgwan, class: \"2\"}\n"},
		{"rp_id equals host", "server: {http_listen: \":1\"}\nwebauthn: {rp_id: gw.example.lg.jp}\nroutes:\n  - {name: a, host: gw.example.lg.jp, upstream: \"https://x.internal:8443/base/\", segment: internet, class: \"1\", public: true}\n"},
		{"overlapping zones", "server: {http_listen: \":1\"}\nzones:\n  a: [10.0.0.0/8]\n  b: [10.1.0.0/16, \"2001:db8::/32\", 192.0.2.1]\n"},
		{"class with new name and zones", "server: {http_listen: \":1\"}\nzones: {chonai: [10.0.0.0/8]}\nclasses:\n  kokai: {label: 公開, require: []}\n  \"3A\": {zones: [chonai]}\n"},
		{"null sections", "server: {http_listen: \":1\"}\nstore:\nzones:\nclasses:\nroutes:\naudit: ~\n"},
		{"anchors and aliases", "server: {http_listen: \":1\"}\nzones:\n  a: &nets [10.0.0.0/8]\n  b: *nets\n"},
		{"zero retention", "server: {http_listen: \":1\"}\naudit: {retention: 0s}\n"},
		{"postgres", "server: {http_listen: \":1\"}\nstore: {driver: postgres, dsn: \"postgres://u@db/sekisho\"}\n"},
		{"syslog sinks", "server: {http_listen: \":1\"}\naudit:\n  sinks:\n    - {type: syslog, address: \"tls://siem:6514\", ca: ca.pem}\n    - {type: postgres}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse("t.yaml", []byte(tt.yaml)); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}

func TestTooManyErrors(t *testing.T) {
	_, err := Parse("t.yaml", []byte("server:\n"+strings.Repeat("  x: 1\n", 5000)))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v", err)
	}
	if got := len(errs.List); got != maxErrors+1 {
		t.Fatalf("%d errors, want %d", got, maxErrors+1)
	}
	last := errs.List[maxErrors]
	if last.Line != 102 || !strings.HasPrefix(last.Msg, "too many errors") {
		t.Errorf("last error = %+v", last)
	}
}
