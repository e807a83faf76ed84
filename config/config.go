package config

import (
	"net/netip"
	"net/url"
	"time"
)

// Config is a whole sekisho configuration, parsed and validated by [Load].
// Every relative file path in it has been resolved against the directory of
// the configuration file, so callers never join paths themselves.
type Config struct {
	// Path is the file the configuration was loaded from ("" when built in code).
	Path string `yaml:"-"`

	Server   Server   `yaml:"server"`
	Store    Store    `yaml:"store"`
	WebAuthn WebAuthn `yaml:"webauthn"`
	Session  Session  `yaml:"session"`
	// Zones are the named source networks, in file order. A source address
	// is in the first zone whose prefixes contain it; otherwise in the zone
	// "external".
	// The name "external" is reserved for addresses in no zone.
	Zones Zones `yaml:"zones"`
	// Classes are the shipped defaults ([DefaultClasses]: 3A, 3B, 3C, 2, 1)
	// merged field by field with the file's classes: section.
	Classes map[string]Class `yaml:"classes"`
	Routes  []Route          `yaml:"routes"`
	Policy  Policy           `yaml:"policy"`
	Audit   Audit            `yaml:"audit"`
	Devices Devices          `yaml:"devices"`
	// Monitor watches the decision stream and raises alerts (package
	// monitor). Absent: on, with the shipped rules and no notification.
	Monitor Monitor `yaml:"monitor"`
	// Directory: staff imports and LDAP sync (see directory.go).
	Directory Directory `yaml:"directory"`
}

// Server is the listener side of the gateway.
type Server struct {
	// Listen is the HTTPS address. Default ":8443".
	Listen string `yaml:"listen"`
	// HTTPListen, if set, serves plain HTTP. It is meant for the demo on
	// localhost (a secure context for WebAuthn) and for deployments behind a
	// TLS-terminating load balancer listed in TrustedProxies. Empty: none.
	HTTPListen string `yaml:"http_listen"`
	TLS        TLS    `yaml:"tls"`
	// ClientCA lists PEM bundles trusted to issue device certificates.
	// Empty: client certificates are not requested.
	ClientCA []string `yaml:"client_ca"`
	// CRL is a PEM or DER CRL file, reloaded when it changes. Empty: none.
	CRL string `yaml:"crl"`
	// OCSP controls OCSP checking for certificates that name a responder.
	OCSP OCSP `yaml:"ocsp"`
	// TrustedProxies are the peers whose X-Forwarded-For is believed (a
	// bare address in the file means that one host).
	// Empty: X-Forwarded-For from clients is ignored and rebuilt.
	TrustedProxies []netip.Prefix `yaml:"trusted_proxies"`
	// MetricsListen serves /healthz, /readyz and /metrics. Empty: none.
	MetricsListen string `yaml:"metrics_listen"`
	// Pprof serves Go's profiler under /debug/pprof/ on the metrics
	// listener (never on the public ones). Default false.
	Pprof bool `yaml:"pprof"`
	// PublicPort is the HTTPS port users reach (e.g. 443 behind a load
	// balancer), used in links sekisho prints (enrollment URLs) and in the
	// default WebAuthn origins. Zero: the port of Listen.
	PublicPort int `yaml:"public_port"`
	// ShutdownTimeout bounds graceful shutdown. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ReadHeaderTimeout bounds how long a client may take to send headers
	// (slowloris). Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// BodyReadTimeout bounds the wait for each next piece of a request body
	// (a stalled upload must not hold a gateway and an upstream connection
	// for ever; nginx's client_body_timeout). Default 60s.
	BodyReadTimeout time.Duration `yaml:"body_read_timeout"`
	// IdleTimeout for keep-alive client connections. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds request headers. Default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// ParkIdleAfter: once a public listener holds this many connections,
	// an HTTP/1.1 keep-alive connection that has just been answered
	// waits for its next request without a goroutine of net/http and its
	// buffers (about 17 KiB each), in a small wait of its own, and goes
	// back to net/http when the next request arrives. Default 1000; -1:
	// never.
	ParkIdleAfter int `yaml:"park_idle_after"`
	// FastPath lets sekisho's own HTTP/1 connection loop serve the plain
	// keep-alive GETs (no body, no upgrade) that net/http's server would
	// accept, and forward them through h1transport.Exchange; every other
	// request goes to net/http's server. Default true; false: net/http
	// serves every request (docs/performance.md says what it buys).
	FastPath *bool `yaml:"fast_path"`
	// GCHeapFloorMiB: the garbage collector does not start a collection
	// before the heap reaches this many MiB (nor before Go's own goal, twice
	// the live heap), which spares a lightly filled gateway dozens of
	// collections a second under load (internal/gctune). Default 64; -1:
	// Go's own pacing. GOGC or GOMEMLIMIT in the environment take
	// precedence.
	GCHeapFloorMiB int `yaml:"gc_heap_floor_mib"`
	// Language is the default page language, "ja" or "en". Default "ja".
	Language string `yaml:"language"`
}

// FastPathOn reports whether server.fast_path is on (the default).
func (s Server) FastPathOn() bool { return s.FastPath == nil || *s.FastPath }

// GCHeapFloor is server.gc_heap_floor_mib in bytes, 0 when off.
func (s Server) GCHeapFloor() uint64 {
	if s.GCHeapFloorMiB <= 0 {
		return 0
	}
	return uint64(s.GCHeapFloorMiB) << 20
}

// TLS names the gateway's own certificate.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// OCSP settings for device certificates.
type OCSP struct {
	// Enabled turns on OCSP checks for certificates that carry a responder URL.
	Enabled bool `yaml:"enabled"`
	// FailOpen lets a certificate through when the responder is unreachable.
	// Default false: an unreachable responder refuses the certificate.
	FailOpen bool `yaml:"fail_open"`
	// Timeout for one OCSP request. Default 3s.
	Timeout time.Duration `yaml:"timeout"`
}

// Devices says how a device id is read from a certificate issued by an
// external CA (sekisho's own CA always uses the SAN URI urn:sekisho:device:ID).
type Devices struct {
	// IDFrom is one of "san_uri" (default), "san_dns", "san_upn", "san_email", "cn".
	IDFrom string `yaml:"id_from"`
	// URIPrefix is stripped from a SAN URI. Default "urn:sekisho:device:".
	URIPrefix string `yaml:"uri_prefix"`
	// Registration says how a device enters the registry that the
	// registered_device factor checks: "first_use" (default: a device with
	// a valid certificate from a trusted CA is registered when first seen,
	// owner from its certificate) or "manual" (it waits as "pending" until
	// an administrator registers it in the console, or `sekisho certs
	// issue --config` registered it when issuing its certificate). Use
	// manual when the trusted CA also issues certificates to PCs that must
	// not count as registered (an AD CS auto-enrolment for every PC).
	Registration string `yaml:"registration"`
}

// ManualRegistration reports whether devices wait for an administrator.
func (d Devices) ManualRegistration() bool { return d.Registration == "manual" }

// Store selects persistence.
type Store struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `yaml:"driver"`
	// DSN is a file path for sqlite (default data/sekisho.db) or a
	// PostgreSQL connection string.
	DSN string `yaml:"dsn"`
}

// WebAuthn relying-party settings.
type WebAuthn struct {
	// RPID is the relying party id, a registrable domain suffix of every
	// route host ("localhost" for *.localhost hosts). Required when any
	// route exists.
	RPID string `yaml:"rp_id"`
	// RPName is shown by authenticators. Default "sekisho".
	RPName string `yaml:"rp_name"`
	// Origins allowed in client data; "*" may stand for one leading label
	// ("https://*.gw.example.lg.jp"). Default: https://<host> for each route
	// host, plus https://<host>:<port> when the public port (PublicPort, else
	// Listen's) is not 443, plus http://<host>:<port of HTTPListen> for
	// localhost and *.localhost hosts when HTTPListen is set.
	Origins []string `yaml:"origins"`
	// UserVerification is "required" (default), "preferred" or "discouraged".
	UserVerification string `yaml:"user_verification"`
	// AllowedAAGUIDs restricts registration to these authenticator models.
	// Empty: any.
	AllowedAAGUIDs []string `yaml:"allowed_aaguids"`
	// RefuseBackupEligible refuses synced (backup-eligible) passkeys.
	RefuseBackupEligible bool `yaml:"refuse_backup_eligible"`
	// CeremonyTimeout bounds a registration or login ceremony. Default 5m.
	CeremonyTimeout time.Duration `yaml:"ceremony_timeout"`
}

// Session lifetimes.
type Session struct {
	// Lifetime is the absolute session lifetime. Default 10h.
	Lifetime time.Duration `yaml:"lifetime"`
	// Idle ends a session unused for this long. Default 30m.
	Idle time.Duration `yaml:"idle"`
	// BindToDevice refuses a cookie issued with a device certificate when it
	// comes without that certificate. Default true.
	BindToDevice *bool `yaml:"bind_to_device"`
	// KeyRotation is how often a new signing key is made. Default 24h.
	KeyRotation time.Duration `yaml:"key_rotation"`
	// AssertionLifetime is the lifetime of X-Sekisho-Assertion. Default 60s.
	AssertionLifetime time.Duration `yaml:"assertion_lifetime"`
}

// Bound reports whether sessions are bound to the device certificate.
func (s Session) Bound() bool { return s.BindToDevice == nil || *s.BindToDevice }

// Zone is one named source network.
type Zone struct {
	Name     string
	Prefixes []netip.Prefix
}

// Zones in file order.
type Zones []Zone

// Class is the requirement set of one information-asset class
// (自治体機密性 3A/3B/3C/2/1).
type Class struct {
	// Label is the human name, e.g. "機密性3A". Default: the class name.
	Label string `yaml:"label"`
	// MaxAuthAge is the oldest authentication accepted. Zero: the session lifetime.
	MaxAuthAge time.Duration `yaml:"max_auth_age"`
	// Require lists factors: "passkey", "passkey_uv", "device_cert",
	// "registered_device", "device_owned".
	Require []string `yaml:"require"`
	// Audit is "sync" (forward only after the record is durable) or
	// "async" (default).
	Audit string `yaml:"audit"`
	// Zones, if set, are the only source zones from which the class may be
	// reached at all, whatever the rules say.
	Zones []string `yaml:"zones"`
	// Integrity and Availability labels (完全性, 可用性): "1" or "2".
	Integrity    string `yaml:"integrity"`
	Availability string `yaml:"availability"`
}

// Route is one internal system behind the gateway.
type Route struct {
	Name string `yaml:"name"`
	// Host is the exact host name (no port) the route answers.
	Host string `yaml:"host"`
	// Upstream is the internal system's base URL (http or https, with a
	// host, no query or fragment), parsed by Load from UpstreamRaw.
	Upstream    *url.URL `yaml:"-"`
	UpstreamRaw string   `yaml:"upstream"`
	// Segment is "mynumber", "lgwan" or "internet". Required.
	Segment string `yaml:"segment"`
	// Class is the default asset class of the route. Required.
	Class string `yaml:"class"`
	// Paths override class or action below a prefix; longest prefix wins.
	Paths []PathRule `yaml:"paths"`
	// Mode is "enforce" (default) or "shadow".
	Mode string `yaml:"mode"`
	// ClientCert is "optional" (default) or "required".
	ClientCert string `yaml:"client_cert"`
	// Timeout bounds waiting for the upstream's response headers. Default 60s.
	// Streaming bodies are not bounded by it.
	Timeout time.Duration `yaml:"timeout"`
	// UpstreamCA is a PEM bundle for an https upstream. Empty: system roots.
	UpstreamCA string `yaml:"upstream_ca"`
	// PreserveHost sends the client's Host upstream instead of the upstream's.
	PreserveHost bool `yaml:"preserve_host"`
	// CaseInsensitive matches path prefixes without regard to letter case.
	CaseInsensitive bool `yaml:"case_insensitive"`
	// Public is served without authentication (class 1 only).
	Public bool `yaml:"public"`
}

// PathRule overrides the class or action of a path prefix.
type PathRule struct {
	Prefix string `yaml:"prefix"`
	// Class overrides the route's class. Empty: the route's.
	Class string `yaml:"class"`
	// Action is "export" or "admin"; empty: read/write from the method.
	Action string `yaml:"action"`
	// Mode overrides the route's mode below this prefix.
	Mode string `yaml:"mode"`
}

// Audit trail settings. See package audit.
type Audit struct {
	// Dir holds the trail. Default data/audit.
	Dir string `yaml:"dir"`
	// Key is the checkpoint signing key (PEM, created when missing).
	// Default <Dir>/audit.key.
	Key string `yaml:"key"`
	// CheckpointEvery records. Default 1000.
	CheckpointEvery int `yaml:"checkpoint_every"`
	// CheckpointInterval: a checkpoint at least this often while records
	// arrive. Default 60s.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// RotateSize in bytes. Default 256 MiB.
	RotateSize int64 `yaml:"rotate_size"`
	// Retention: files older than this are removed. Default 8760h (1 year);
	// 0 keeps everything.
	Retention time.Duration `yaml:"retention"`
	// Redact lists query parameter names whose values are replaced by "REDACTED".
	Redact []string `yaml:"redact"`
	// Sinks forward records elsewhere.
	Sinks []Sink `yaml:"sinks"`
}

// Sink is one audit forwarding target.
type Sink struct {
	// Type is "syslog" or "postgres".
	Type string `yaml:"type"`
	// Address for syslog: "tcp://host:port" or "tls://host:port".
	Address string `yaml:"address"`
	// CA for syslog over TLS.
	CA string `yaml:"ca"`
	// DSN for postgres. Empty: the store's.
	DSN string `yaml:"dsn"`
}
