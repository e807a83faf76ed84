package config

import (
	"cmp"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validator checks a decoded configuration and reports each problem at the
// line of the key at fault (or of its nearest present parent when the key
// is missing).
type validator struct {
	d   *decoder
	cfg *Config
}

func (v *validator) errorf(path, format string, args ...any) {
	for p := path; ; p = parent(p) {
		if v.d.bad[p] {
			return // already reported when decoding
		}
		if p == "" {
			break
		}
	}
	v.d.errs.add(v.d.file, v.line(path), path, format, args...)
}

// line is the line of path, or of its nearest parent that is in the file.
func (v *validator) line(path string) int {
	for p := path; p != ""; p = parent(p) {
		if l, ok := v.d.lines[p]; ok {
			return l
		}
	}
	return 1
}

// present reports whether path was written in the file.
func (v *validator) present(path string) bool {
	_, ok := v.d.lines[path]
	return ok
}

// parent strips the last ".key" or "[i]" from a key path.
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func (v *validator) oneOf(path, got string, allowed ...string) {
	if got == "" || slices.Contains(allowed, got) {
		return
	}
	v.errorf(path, "%q is not one of %s (%s のいずれかを指定してください)", got, strings.Join(allowed, ", "), strings.Join(allowed, "・"))
}

func (v *validator) validate() {
	v.server()
	v.store()
	v.zones()
	v.classes()
	v.routes()
	v.webauthn() // after routes: checks rp_id against route hosts
	v.policy()
	v.audit()
	v.monitor()
	v.oneOf("devices.id_from", v.cfg.Devices.IDFrom, "san_uri", "san_dns", "san_upn", "san_email", "cn")
	v.oneOf("devices.registration", v.cfg.Devices.Registration, "first_use", "manual")
	v.directory()
}

func (v *validator) server() {
	s := &v.cfg.Server
	v.hostPort("server.listen", s.Listen)
	v.hostPort("server.http_listen", s.HTTPListen)
	v.hostPort("server.metrics_listen", s.MetricsListen)
	listen := cmp.Or(s.Listen, DefaultListen)
	// Port 0 (any free port, as tests use) never collides.
	if s.HTTPListen != "" && s.HTTPListen == listen && !strings.HasSuffix(listen, ":0") {
		v.errorf("server.http_listen", "same address as server.listen (listen と同じアドレスです)")
	}
	if s.MetricsListen != "" && !strings.HasSuffix(s.MetricsListen, ":0") && (s.MetricsListen == listen || s.MetricsListen == s.HTTPListen) {
		v.errorf("server.metrics_listen", "same address as another listener (他の待ち受けと同じアドレスです)")
	}
	switch {
	case s.TLS.Cert == "" && s.TLS.Key != "":
		v.errorf("server.tls.cert", "required when server.tls.key is set (key を指定したときは cert も必要です)")
	case s.TLS.Cert != "" && s.TLS.Key == "":
		v.errorf("server.tls.key", "required when server.tls.cert is set (cert を指定したときは key も必要です)")
	case s.TLS.Cert == "" && s.HTTPListen == "":
		v.errorf("server.tls", "cert and key are required unless only server.http_listen is used (TLS 証明書と秘密鍵を指定してください)")
	}
	for i, ca := range s.ClientCA {
		if ca == "" {
			v.errorf(idx("server.client_ca", i), "empty file name (ファイル名が空です)")
		}
	}
	if s.PublicPort < 0 || s.PublicPort > 65535 {
		v.errorf("server.public_port", "%d is not a port number (ポート番号は 1〜65535 です)", s.PublicPort)
	}
	if s.MaxHeaderBytes < 0 {
		v.errorf("server.max_header_bytes", "must not be negative (負の値は指定できません)")
	}
	if s.ParkIdleAfter < -1 {
		v.errorf("server.park_idle_after", "must be -1 (never) or a number of connections (-1 または接続数を指定してください)")
	}
	if s.GCHeapFloorMiB < -1 || s.GCHeapFloorMiB > 1<<20 {
		v.errorf("server.gc_heap_floor_mib", "must be -1 (Go's own pacing) or a size in MiB up to 1048576 (-1 または MiB 単位の大きさを指定してください)")
	}
	v.oneOf("server.language", s.Language, "ja", "en")
}

// hostPort checks a listen address such as ":8443" or "127.0.0.1:9090".
func (v *validator) hostPort(path, addr string) {
	if addr == "" {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errorf(path, "%q is not host:port, e.g. \":8443\" (\"ホスト:ポート\" の形で書いてください)", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.errorf(path, "%q: bad port %q (ポート番号が不正です)", addr, port)
	}
	if strings.ContainsAny(host, " /") {
		v.errorf(path, "%q: bad host %q (ホストが不正です)", addr, host)
	}
}

func (v *validator) store() {
	st := &v.cfg.Store
	v.oneOf("store.driver", st.Driver, "sqlite", "postgres")
	if st.Driver == "postgres" && st.DSN == "" {
		v.errorf("store.dsn", "required for the postgres driver (postgres では接続文字列が必要です)")
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (v *validator) zones() {
	for _, z := range v.cfg.Zones {
		path := "zones." + z.Name
		switch {
		case z.Name == ZoneExternal:
			v.errorf(path, "the zone name %q is reserved for addresses in no zone (%q は予約済みのゾーン名です)", ZoneExternal, ZoneExternal)
		case !nameRE.MatchString(z.Name):
			v.errorf(path, "zone names use letters, digits, '.', '_' and '-' (ゾーン名に使えない文字があります)")
		}
		if len(z.Prefixes) == 0 {
			v.errorf(path, "a zone needs at least one network prefix (ゾーンにネットワークを 1 つ以上指定してください)")
		}
	}
}

var factors = []string{FactorPasskey, FactorPasskeyUV, FactorDeviceCert, FactorRegisteredDevice, FactorDeviceOwned}

func (v *validator) classes() {
	for _, name := range sortedKeys(v.cfg.Classes) {
		c := v.cfg.Classes[name]
		path := "classes." + name
		if !nameRE.MatchString(name) {
			v.errorf(path, "class names use letters, digits, '.', '_' and '-' (分類名に使えない文字があります)")
		}
		for i, f := range c.Require {
			if !slices.Contains(factors, f) {
				v.errorf(idx(path+".require", i), "%q is not one of %s (%s のいずれかを指定してください)", f, strings.Join(factors, ", "), strings.Join(factors, "・"))
			}
		}
		v.oneOf(path+".audit", c.Audit, AuditSync, AuditAsync)
		for i, z := range c.Zones {
			if z != ZoneExternal && !slices.ContainsFunc(v.cfg.Zones, func(cz Zone) bool { return cz.Name == z }) {
				v.errorf(idx(path+".zones", i), "unknown zone %q (ゾーン %q は定義されていません)", z, z)
			}
		}
		v.oneOf(path+".integrity", c.Integrity, "1", "2")
		v.oneOf(path+".availability", c.Availability, "1", "2")
	}
}

func (v *validator) knownClass(path, class string) {
	if _, ok := v.cfg.Classes[class]; !ok {
		v.errorf(path, "unknown class %q; known: %s (分類 %q は定義されていません)", class, strings.Join(sortedKeys(v.cfg.Classes), ", "), class)
	}
}

func (v *validator) routes() {
	names := map[string]int{}
	hosts := map[string]int{}
	for i := range v.cfg.Routes {
		r := &v.cfg.Routes[i]
		path := idx("routes", i)
		switch {
		case r.Name == "":
			v.errorf(path+".name", "required (必須です)")
		case !nameRE.MatchString(r.Name):
			v.errorf(path+".name", "route names use letters, digits, '.', '_' and '-' (ルート名に使えない文字があります)")
		case r.Name == "admin":
			v.errorf(path+".name", `"admin" is reserved for the admin console (admin は管理コンソール用に予約されています)`)
		default:
			if j, dup := names[r.Name]; dup {
				v.errorf(path+".name", "duplicate route name %q, also routes[%d] (ルート名が重複しています)", r.Name, j)
			} else {
				names[r.Name] = i
			}
		}
		if r.Host == "" {
			v.errorf(path+".host", "required (必須です)")
		} else if msg := checkHost(r.Host); msg != "" {
			v.errorf(path+".host", "%s", msg)
		} else if j, dup := hosts[r.Host]; dup {
			v.errorf(path+".host", "duplicate host %q, also routes[%d] (ホスト名が重複しています)", r.Host, j)
		} else {
			hosts[r.Host] = i
		}
		v.upstream(path, r)
		if r.Segment == "" {
			v.errorf(path+".segment", "required: mynumber, lgwan or internet (ネットワーク分離の系統を指定してください)")
		}
		v.oneOf(path+".segment", r.Segment, SegmentMyNumber, SegmentLGWAN, SegmentInternet)
		if r.Class == "" {
			v.errorf(path+".class", "required (情報資産の機密性分類を指定してください)")
		} else {
			v.knownClass(path+".class", r.Class)
		}
		v.oneOf(path+".mode", r.Mode, ModeEnforce, ModeShadow)
		v.oneOf(path+".client_cert", r.ClientCert, ClientCertOptional, ClientCertRequired)
		if r.ClientCert == ClientCertRequired && len(v.cfg.Server.ClientCA) == 0 {
			v.errorf(path+".client_cert", "required, but server.client_ca is empty so no certificate can be asked for (server.client_ca が空のため端末証明書を要求できません)")
		}
		if r.Public && r.Class != "1" && r.Class != "" {
			v.errorf(path+".public", "only a class \"1\" route can be public, this one is %q (認証なしで公開できるのは機密性1のみです)", r.Class)
		}
		v.needsClientCA(path+".class", r.Class)
		v.paths(path, r)
	}
}

// needsClientCA refuses a class that asks for a device certificate when no
// device CA is configured: no request could ever satisfy it.
func (v *validator) needsClientCA(path, class string) {
	if len(v.cfg.Server.ClientCA) > 0 {
		return
	}
	c, ok := v.cfg.Classes[class]
	if !ok {
		return
	}
	for _, f := range c.Require {
		if f == FactorDeviceCert || f == FactorRegisteredDevice || f == FactorDeviceOwned {
			v.errorf(path, "class %q requires %s, but server.client_ca is empty, so no request could be allowed (端末証明書の CA が設定されていません)", class, f)
			return
		}
	}
}

func (v *validator) upstream(path string, r *Route) {
	p := path + ".upstream"
	if r.UpstreamRaw == "" {
		v.errorf(p, "required (転送先 URL を指定してください)")
		return
	}
	u, err := url.Parse(r.UpstreamRaw)
	switch {
	case !strings.Contains(r.UpstreamRaw, "://"):
		v.errorf(p, "%q: write the whole URL, e.g. http://10.2.0.10:8080 (http:// から始まる URL を書いてください)", r.UpstreamRaw)
		return
	case err != nil:
		v.errorf(p, "%q is not a URL (URL として読めません)", r.UpstreamRaw)
		return
	case u.Scheme != "http" && u.Scheme != "https":
		v.errorf(p, "%q: the scheme must be http or https (http または https の URL を指定してください)", r.UpstreamRaw)
		return
	case u.Host == "" || u.Hostname() == "":
		v.errorf(p, "%q has no host (ホスト名がありません)", r.UpstreamRaw)
		return
	case u.User != nil:
		v.errorf(p, "%q: user information in the URL is not supported (URL に認証情報は書けません)", r.UpstreamRaw)
		return
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(r.UpstreamRaw, "#"):
		v.errorf(p, "%q: no query or fragment allowed (クエリやフラグメントは指定できません)", r.UpstreamRaw)
		return
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.errorf(p, "%q: bad port (ポート番号が不正です)", r.UpstreamRaw)
			return
		}
	}
	if r.UpstreamCA != "" && u.Scheme != "https" {
		v.errorf(path+".upstream_ca", "only meaningful for an https upstream (https の転送先でのみ指定できます)")
	}
	r.Upstream = u
}

// checkHost returns why h is not an acceptable route host, or "".
func checkHost(h string) string {
	switch {
	case strings.Contains(h, "://"):
		return "a host name only, without a scheme (スキームを付けずにホスト名だけを書いてください)"
	case strings.ContainsAny(h, "/?#"):
		return "a host name only, without a path (パスを付けずにホスト名だけを書いてください)"
	case strings.Contains(h, ":"):
		return "a host name only, without a port (ポート番号を付けずにホスト名だけを書いてください)"
	case strings.ToLower(h) != h:
		return "host names must be lower case (ホスト名は小文字で書いてください)"
	case !validDNSName(h) && strings.ContainsFunc(h, func(r rune) bool { return r > 0x7f }):
		return "not a valid host name; write internationalised names in punycode (xn--…) (日本語ドメインは xn-- で始まる形で書いてください)"
	case !validDNSName(h):
		return "not a valid host name (ホスト名として正しくありません)"
	}
	return ""
}

// validDNSName reports whether h is a lower-case DNS name of letters,
// digits and hyphens, not an IP address.
func validDNSName(h string) bool {
	if h == "" || len(h) > 253 || net.ParseIP(h) != nil {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func (v *validator) paths(path string, r *Route) {
	seen := map[string]int{}
	for j, pr := range r.Paths {
		p := idx(path+".paths", j)
		if msg := checkPrefix(pr.Prefix); msg != "" {
			v.errorf(p+".prefix", "%s", msg)
		} else {
			key := pr.Prefix
			if r.CaseInsensitive {
				key = strings.ToLower(key)
			}
			if k, dup := seen[key]; dup {
				v.errorf(p+".prefix", "duplicate prefix %q, also paths[%d] (パスが重複しています)", pr.Prefix, k)
			} else {
				seen[key] = j
			}
		}
		if pr.Class != "" {
			v.knownClass(p+".class", pr.Class)
			v.needsClientCA(p+".class", pr.Class)
			if r.Public && pr.Class != "1" {
				v.errorf(p+".class", "the route is public, so every path is served without authentication; only class \"1\" fits (公開ルートでは機密性1以外は指定できません)")
			}
		}
		v.oneOf(p+".action", pr.Action, "export", "admin")
		v.oneOf(p+".mode", pr.Mode, ModeEnforce, ModeShadow)
	}
}

// checkPrefix returns why a path prefix is not acceptable, or "". Prefixes
// are compared with normalised request paths, so anything normalisation
// removes could never match and is refused here.
func checkPrefix(p string) string {
	switch {
	case p == "":
		return "required (パスを指定してください)"
	case p[0] != '/':
		return "a path prefix must start with / (パスは / で始めてください)"
	case strings.Contains(p, ".."):
		return "a path prefix must not contain .. (.. は使えません)"
	case strings.Contains(p, "//"):
		return "a path prefix must not contain // (// は使えません)"
	case strings.Contains(p, "%"):
		return "a path prefix must not contain % escapes; write the characters themselves (% エスケープは使えません)"
	case strings.Contains(p, `\`):
		return "a path prefix must not contain a backslash (\\ は使えません)"
	case strings.ContainsRune(p, 0):
		return "a path prefix must not contain NUL (NUL 文字は使えません)"
	case strings.HasPrefix(p, "/.sekisho/") || p == "/.sekisho":
		return "/.sekisho/ is reserved for sekisho itself (/.sekisho/ は予約されています)"
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return "a path prefix must not contain control characters (制御文字は使えません)"
		}
	}
	return ""
}

func (v *validator) webauthn() {
	w := &v.cfg.WebAuthn
	if w.RPID == "" {
		if len(v.cfg.Routes) > 0 {
			v.errorf("webauthn.rp_id", "required: the domain shared by every route host, e.g. gw.example.lg.jp (全ルートのホストに共通するドメインを指定してください)")
		}
	} else if msg := checkHost(w.RPID); msg != "" {
		v.errorf("webauthn.rp_id", "%s", msg)
	} else if !strings.Contains(w.RPID, ".") && w.RPID != "localhost" {
		v.errorf("webauthn.rp_id", "%q is not a registrable domain (登録可能なドメインではありません)", w.RPID)
	} else {
		for i, r := range v.cfg.Routes {
			if r.Host != "" && checkHost(r.Host) == "" && !underDomain(r.Host, w.RPID) {
				v.errorf(idx("routes", i)+".host", "%q is not webauthn.rp_id %q or a name below it; passkeys could not be used there (rp_id の配下にないホストではパスキーを使えません)", r.Host, w.RPID)
			}
		}
	}
	for i, o := range w.Origins {
		if msg := checkOrigin(o, w.RPID); msg != "" {
			v.errorf(idx("webauthn.origins", i), "%q: %s", o, msg)
		}
	}
	v.oneOf("webauthn.user_verification", w.UserVerification, "required", "preferred", "discouraged")
	for i, a := range w.AllowedAAGUIDs {
		if !uuidRE.MatchString(a) {
			v.errorf(idx("webauthn.allowed_aaguids", i), "%q is not a UUID such as 08987058-cadc-4b81-b6e1-30de50dcbe96 (UUID の形式ではありません)", a)
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// underDomain reports whether host is domain or a name below it.
func underDomain(host, domain string) bool {
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// isLocalhost reports whether host is localhost or below it, which browsers
// treat as a secure context even over plain http.
func isLocalhost(host string) bool { return underDomain(host, "localhost") }

// checkOrigin returns why o is not an acceptable WebAuthn origin, or "".
func checkOrigin(o, rpID string) string {
	u, err := url.Parse(o)
	if err != nil {
		return "not a URL (URL として読めません)"
	}
	host := u.Hostname()
	switch {
	case u.Scheme != "https" && !(u.Scheme == "http" && isLocalhost(strings.TrimPrefix(host, "*."))):
		return "an origin must be https (http only for localhost) (https のオリジンを指定してください)"
	case host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "an origin is scheme://host[:port] only (オリジンはスキーム・ホスト・ポートだけで書きます)"
	}
	bare := strings.TrimPrefix(host, "*.")
	if strings.Contains(bare, "*") {
		return "\"*\" may only stand for the whole first label, as in https://*.gw.example.lg.jp (* は先頭のラベルにのみ使えます)"
	}
	if msg := checkHost(bare); msg != "" {
		return msg
	}
	if rpID != "" && !underDomain(bare, rpID) {
		return "not webauthn.rp_id or a name below it (rp_id の配下ではありません)"
	}
	return ""
}

func (v *validator) policy() {
	p := &v.cfg.Policy
	tz := p.Timezone
	if tz == "" {
		tz = DefaultTimezone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		v.errorf("policy.timezone", "unknown time zone %q, e.g. Asia/Tokyo (タイムゾーンが不明です)", tz)
	} else {
		p.Location = loc
	}
	v.oneOf("policy.profile", p.Profile, "alpha", "alpha-prime", "beta", "beta-prime")
}

func (v *validator) audit() {
	a := &v.cfg.Audit
	if a.CheckpointEvery < 0 {
		v.errorf("audit.checkpoint_every", "must not be negative (負の値は指定できません)")
	}
	if a.RotateSize < 0 {
		v.errorf("audit.rotate_size", "must not be negative (負の値は指定できません)")
	}
	for i, r := range a.Redact {
		if strings.TrimSpace(r) == "" {
			v.errorf(idx("audit.redact", i), "empty parameter name (パラメータ名が空です)")
		}
	}
	for i, s := range a.Sinks {
		path := idx("audit.sinks", i)
		switch s.Type {
		case "":
			v.errorf(path+".type", "required: syslog or postgres (syslog か postgres を指定してください)")
		case "syslog":
			u, err := url.Parse(s.Address)
			switch {
			case s.Address == "":
				v.errorf(path+".address", "required for syslog, e.g. tls://siem.example.lg.jp:6514 (送信先を指定してください)")
			case err != nil || (u.Scheme != "tcp" && u.Scheme != "tls") || u.Port() == "" || u.Hostname() == "":
				v.errorf(path+".address", "%q: want tcp://host:port or tls://host:port (tcp://ホスト:ポート または tls://ホスト:ポート の形で書いてください)", s.Address)
			case s.CA != "" && u.Scheme != "tls":
				v.errorf(path+".ca", "only meaningful for a tls:// address (tls:// の送信先でのみ指定できます)")
			}
		case "postgres":
			if s.Address != "" {
				v.errorf(path+".address", "not used by a postgres sink; use dsn (postgres では dsn を使います)")
			}
		default:
			v.oneOf(path+".type", s.Type, "syslog", "postgres")
		}
	}
}

func idx(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
