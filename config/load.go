package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	// The time zone database is compiled in so that policy.timezone works
	// in a container without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// MaxFileSize bounds a configuration file.
const MaxFileSize = 4 << 20

// Load reads, parses and validates the configuration file at path, fills
// in defaults and resolves relative file names against the file's
// directory. When the file is not valid the error is an [*Errors] naming
// the file, line and key of every problem found; other errors (the file
// cannot be read) wrap the cause.
func Load(path string, opts ...Option) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading configuration %s: %w", path, err)
	}
	return Parse(path, data, opts...)
}

// Parse is [Load] for a configuration already in memory; name is used in
// error messages and its directory for resolving relative file names.
func Parse(name string, data []byte, opts ...Option) (*Config, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	errs := &Errors{}
	if len(data) > MaxFileSize {
		errs.add(name, 1, "", "file is larger than %d bytes (設定ファイルが大きすぎます)", MaxFileSize)
		return nil, errs
	}
	root := parseYAML(name, data, errs)
	if root == nil {
		return nil, errs.err()
	}
	cfg := &Config{Path: name, Classes: DefaultClasses()}
	d := newDecoder(name, errs)
	d.decode(root, reflect.ValueOf(cfg).Elem(), "")
	if d.stopped() {
		return nil, errs.err()
	}
	v := &validator{d: d, cfg: cfg}
	v.validate()
	if err := errs.err(); err != nil {
		return nil, err
	}
	v.defaults()
	resolvePaths(cfg, baseDir(name))
	if o.checkFiles {
		v.files()
		if err := errs.err(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses exactly one YAML document and returns its root node,
// or nil after adding the syntax error to errs.
func parseYAML(name string, data []byte, errs *Errors) (root *yaml.Node) {
	defer func() {
		// yaml.v3 has panicked on malformed input before; a bad file must
		// never take the gateway down.
		if r := recover(); r != nil {
			errs.add(name, 1, "", "cannot parse YAML (YAML として読めません)")
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			errs.add(name, 1, "", "the file is empty (設定ファイルが空です)")
		} else {
			addYAMLError(name, err, errs)
		}
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			addYAMLError(name, err, errs)
		} else {
			errs.add(name, next.Line, "", "more than one YAML document (--- で区切られた文書は 1 つだけにしてください)")
		}
		return nil
	}
	if len(doc.Content) == 0 {
		errs.add(name, 1, "", "the file is empty (設定ファイルが空です)")
		return nil
	}
	return doc.Content[0]
}

func addYAMLError(name string, err error, errs *Errors) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	msg = strings.ReplaceAll(msg, "\n", " ")
	errs.add(name, line, "", "YAML syntax error: %s (YAML の書き方に誤りがあります)", msg)
}

// defaults fills in what the file left out. It runs after validation, so
// it may assume valid values.
func (v *validator) defaults() {
	c := v.cfg
	s := &c.Server
	setDefault(&s.Listen, DefaultListen)
	setDefault(&s.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&s.IdleTimeout, DefaultIdleTimeout)
	setDefault(&s.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&s.ParkIdleAfter, DefaultParkIdleAfter)
	setDefault(&s.GCHeapFloorMiB, DefaultGCHeapFloorMiB)
	setDefault(&s.Language, DefaultLanguage)
	setDefault(&s.OCSP.Timeout, DefaultOCSPTimeout)

	setDefault(&c.Store.Driver, DefaultStoreDriver)
	if c.Store.Driver == "sqlite" {
		setDefault(&c.Store.DSN, DefaultSQLiteDSN)
	}

	w := &c.WebAuthn
	setDefault(&w.RPName, DefaultRPName)
	setDefault(&w.UserVerification, DefaultUserVerification)
	setDefault(&w.CeremonyTimeout, DefaultCeremonyTimeout)
	if len(w.Origins) == 0 {
		w.Origins = defaultOrigins(c)
	}

	ss := &c.Session
	setDefault(&ss.Lifetime, DefaultSessionLifetime)
	setDefault(&ss.Idle, DefaultSessionIdle)
	setDefault(&ss.KeyRotation, DefaultKeyRotation)
	setDefault(&ss.AssertionLifetime, DefaultAssertionLifetime)

	for name, cl := range c.Classes {
		setDefault(&cl.Label, name)
		setDefault(&cl.Audit, AuditAsync)
		if cl.Require == nil {
			cl.Require = []string{}
		}
		c.Classes[name] = cl
	}

	for i := range c.Routes {
		r := &c.Routes[i]
		setDefault(&r.Mode, ModeEnforce)
		setDefault(&r.ClientCert, ClientCertOptional)
		setDefault(&r.Timeout, DefaultRouteTimeout)
	}

	p := &c.Policy
	setDefault(&p.Model, DefaultPolicyModel)
	setDefault(&p.File, DefaultPolicyFile)
	setDefault(&p.Timezone, DefaultTimezone)

	a := &c.Audit
	setDefault(&a.Dir, DefaultAuditDir)
	setDefault(&a.CheckpointEvery, DefaultCheckpointEvery)
	setDefault(&a.CheckpointInterval, DefaultCheckpointInterval)
	setDefault(&a.RotateSize, DefaultRotateSize)
	if !v.present("audit.retention") {
		a.Retention = DefaultRetention // written as 0, it means keep everything
	}

	setDefault(&c.Devices.IDFrom, DefaultIDFrom)
	setDefault(&c.Devices.URIPrefix, DefaultURIPrefix)
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// defaultOrigins are https://<host> for each route host, with the public
// HTTPS port when it is not 443, and http://<host>:<port> for localhost
// hosts when server.http_listen is set (the demo).
func defaultOrigins(c *Config) []string {
	httpsPort := ""
	if c.Server.PublicPort != 0 {
		httpsPort = strconv.Itoa(c.Server.PublicPort)
	} else if _, port, err := net.SplitHostPort(c.Server.Listen); err == nil {
		httpsPort = port
	}
	httpPort := ""
	if c.Server.HTTPListen != "" {
		_, httpPort, _ = net.SplitHostPort(c.Server.HTTPListen)
	}
	var origins []string
	for _, r := range c.Routes {
		origins = append(origins, "https://"+r.Host)
		if httpsPort != "" && httpsPort != "443" {
			origins = append(origins, "https://"+net.JoinHostPort(r.Host, httpsPort))
		}
		if httpPort != "" && isLocalhost(r.Host) {
			if httpPort == "80" {
				origins = append(origins, "http://"+r.Host)
			} else {
				origins = append(origins, "http://"+net.JoinHostPort(r.Host, httpPort))
			}
		}
	}
	return slices.Compact(origins)
}

// baseDir is the absolute directory of the configuration file.
func baseDir(name string) string {
	dir := filepath.Dir(name)
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// resolvePaths makes every relative file name in c relative to dir. The
// audit key defaults to audit.key in the (resolved) audit directory.
func resolvePaths(c *Config, dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.Server.TLS.Cert)
	abs(&c.Server.TLS.Key)
	for i := range c.Server.ClientCA {
		abs(&c.Server.ClientCA[i])
	}
	abs(&c.Server.CRL)
	if c.Store.Driver == "sqlite" && !strings.HasPrefix(c.Store.DSN, "file:") && c.Store.DSN != ":memory:" {
		abs(&c.Store.DSN)
	}
	abs(&c.Policy.File)
	abs(&c.Audit.Dir)
	if c.Audit.Key == "" {
		c.Audit.Key = filepath.Join(c.Audit.Dir, DefaultAuditKeyName)
	}
	abs(&c.Audit.Key)
	for i := range c.Audit.Sinks {
		abs(&c.Audit.Sinks[i].CA)
	}
	for i := range c.Routes {
		abs(&c.Routes[i].UpstreamCA)
	}
}
