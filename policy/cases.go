package policy

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sekisho/sekisho/config"
)

// Cases is a policy test table: requests and the decisions expected for
// them. See docs/policy.md for the file format.
type Cases struct {
	File string
	// Time is the default request time for cases that name none.
	Time  time.Time
	Cases []Case
}

// Case is one request and its expected decision.
type Case struct {
	Name string `yaml:"name"`
	Line int    `yaml:"-"`

	User       string   `yaml:"user"`
	Roles      []string `yaml:"roles"`
	Department string   `yaml:"department"`
	// Anonymous: no session.
	Anonymous bool   `yaml:"anonymous"`
	Route     string `yaml:"route"`
	Method    string `yaml:"method"`
	Path      string `yaml:"path"`
	// Zone, or IP to resolve through the configured zones.
	Zone string   `yaml:"zone"`
	IP   string   `yaml:"ip"`
	AMR  []string `yaml:"amr"`
	// AuthAge: how long ago the user authenticated. Default 0 (just now).
	AuthAge time.Duration `yaml:"auth_age"`
	Device  string        `yaml:"device"`
	// DeviceRegistered defaults to true when Device is set.
	DeviceRegistered *bool `yaml:"device_registered"`
	// DeviceOwner defaults to the user when Device is set.
	DeviceOwner      string `yaml:"device_owner"`
	DeviceDepartment string `yaml:"device_department"`
	Time             string `yaml:"time"`

	// Expect is allow, deny or stepup; Rule and Reasons are checked when set.
	Expect  string   `yaml:"expect"`
	Rule    string   `yaml:"rule"`
	Reasons []Reason `yaml:"reasons"`
	// Enforced, when set, checks shadow mode.
	Enforced *bool `yaml:"enforced"`
}

// LoadCases reads a cases file.
func LoadCases(path string) (*Cases, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading cases %s: %w", path, err)
	}
	return ParseCases(path, data)
}

var caseKeys = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range []string{"name", "user", "roles", "department", "anonymous", "route", "method", "path",
		"zone", "ip", "amr", "auth_age", "device", "device_registered", "device_owner", "device_department",
		"time", "expect", "rule", "reasons", "enforced"} {
		m[k] = true
	}
	return m
}()

// ParseCases reads a cases file's text; errors name file and line.
func ParseCases(name string, data []byte) (*Cases, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out := &Cases{File: name}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: 「cases:」の一覧が必要です (expected a mapping with cases:)", name)
	}
	root := doc.Content[0]
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "time":
			t, err := time.Parse(time.RFC3339, v.Value)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: time は RFC 3339 です (time must be RFC 3339): %w", name, v.Line, err)
			}
			out.Time = t
		case "cases":
			list = v
		default:
			return nil, fmt.Errorf("%s:%d: 不明な項目 %q (unknown key)", name, k.Line, k.Value)
		}
	}
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s: 「cases:」の一覧が必要です (expected cases: as a list)", name)
	}
	for _, n := range list.Content {
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: ケースは項目の集まりです (a case is a mapping)", name, n.Line)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !caseKeys[k.Value] {
				return nil, fmt.Errorf("%s:%d: 不明な項目 %q (unknown key)", name, k.Line, k.Value)
			}
		}
		var c Case
		if err := n.Decode(&c); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n.Line, err)
		}
		c.Line = n.Line
		if _, ok := ParseEffect(c.Expect); !ok {
			return nil, fmt.Errorf("%s:%d: expect は allow, deny, stepup のいずれかです (got %q)", name, n.Line, c.Expect)
		}
		if c.Route == "" {
			return nil, fmt.Errorf("%s:%d: route が必要です (route is required)", name, n.Line)
		}
		if c.Name == "" {
			c.Name = fmt.Sprintf("%s:%d", name, n.Line)
		}
		out.Cases = append(out.Cases, c)
	}
	return out, nil
}

// Request builds the request a case describes, resolving route, path and
// IP through cfg. now is the default time.
func (c *Case) Request(cfg *config.Config, now time.Time) (*Request, error) {
	t, err := Resolve(cfg, c.Route, c.Method, c.Path)
	if err != nil {
		return nil, err
	}
	req := &Request{
		User: c.User, Roles: c.Roles, Department: c.Department, Authenticated: !c.Anonymous,
		Route: t.Route, Class: t.Class, Segment: t.Segment, Action: t.Action, Mode: t.Mode,
		Zone: c.Zone, AMR: c.AMR, Device: c.Device, Method: strings.ToUpper(c.Method), Path: c.Path,
		DeviceDepartment: c.DeviceDepartment,
	}
	if req.Method == "" {
		req.Method = "GET"
	}
	if req.Path == "" {
		req.Path = "/"
	}
	if c.IP != "" {
		ip, err := netip.ParseAddr(c.IP)
		if err != nil {
			return nil, fmt.Errorf("ip %q: %w", c.IP, err)
		}
		z := ZoneOf(cfg, ip)
		if c.Zone != "" && c.Zone != z {
			return nil, fmt.Errorf("ip %s はゾーン %s です（zone: %s と矛盾）(ip is in zone %s, not %s)", c.IP, z, c.Zone, z, c.Zone)
		}
		req.Zone = z
	}
	if req.Zone == "" {
		req.Zone = "external"
	}
	req.Time = now
	if c.Time != "" {
		tm, err := time.Parse(time.RFC3339, c.Time)
		if err != nil {
			return nil, fmt.Errorf("time %q は RFC 3339 です (time must be RFC 3339): %w", c.Time, err)
		}
		req.Time = tm
	}
	if req.Authenticated {
		req.AuthTime = req.Time.Add(-c.AuthAge)
	}
	if c.Device != "" {
		req.DeviceRegistered = c.DeviceRegistered == nil || *c.DeviceRegistered
		req.DeviceOwner = c.DeviceOwner
		if req.DeviceOwner == "" {
			req.DeviceOwner = c.User
		}
	}
	return req, nil
}

// CaseResult is one case run.
type CaseResult struct {
	Case *Case
	Got  Decision
	// Diff is empty when the case passed; otherwise it says, in Japanese
	// and English, what differed.
	Diff string
	Err  error
}

// Failed reports whether the case did not pass.
func (r CaseResult) Failed() bool { return r.Diff != "" || r.Err != nil }

// Run decides every case with e. now is the default time when neither the
// case nor the file names one.
func (cs *Cases) Run(e *Engine, cfg *config.Config, now time.Time) []CaseResult {
	if !cs.Time.IsZero() {
		now = cs.Time
	}
	out := make([]CaseResult, 0, len(cs.Cases))
	for i := range cs.Cases {
		c := &cs.Cases[i]
		res := CaseResult{Case: c}
		req, err := c.Request(cfg, now)
		if err != nil {
			res.Err = fmt.Errorf("%s:%d: %w", cs.File, c.Line, err)
			out = append(out, res)
			continue
		}
		res.Got = e.Decide(req)
		res.Diff = c.diff(res.Got)
		out = append(out, res)
	}
	return out
}

func (c *Case) diff(got Decision) string {
	want, _ := ParseEffect(c.Expect)
	var lines []string
	if got.Effect != want {
		lines = append(lines, fmt.Sprintf("判定 (decision): 期待 %s / 結果 %s", want, got.Effect))
	}
	if c.Rule != "" && got.Rule != c.Rule {
		lines = append(lines, fmt.Sprintf("規則 (rule):     期待 %s / 結果 %s", c.Rule, got.Rule))
	}
	if c.Reasons != nil && !slices.Equal(c.Reasons, got.Reasons) {
		lines = append(lines, fmt.Sprintf("理由 (reasons):  期待 %s / 結果 %s", reasonList(c.Reasons), reasonList(got.Reasons)))
	}
	if c.Enforced != nil && *c.Enforced != got.Enforced {
		lines = append(lines, fmt.Sprintf("強制 (enforced): 期待 %t / 結果 %t", *c.Enforced, got.Enforced))
	}
	if len(lines) == 0 {
		return ""
	}
	lines = append(lines, fmt.Sprintf("  (結果の規則 rule: %s, 理由 reasons: %s)", got.Rule, reasonList(got.Reasons)))
	return strings.Join(lines, "\n")
}

func reasonList(rs []Reason) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// ErrCasesFailed is returned by tools when some case did not pass.
var ErrCasesFailed = errors.New("policy cases failed")
