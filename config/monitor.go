package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Monitor configures package monitor: rules that watch the decision stream
// and raise alerts, and the channels that notify the CSIRT. Owned by package
// monitor; see docs/monitoring.md. An absent section means monitoring on
// with the shipped thresholds and no notification channel (alerts still go
// to the audit trail and to Prometheus).
type Monitor struct {
	// Enabled: nil (absent) or true runs monitoring; false turns it off.
	Enabled *bool `yaml:"enabled"`
	// Timezone of office hours and holidays. Empty: policy.timezone, else
	// Asia/Tokyo.
	Timezone string         `yaml:"timezone"`
	Location *time.Location `yaml:"-"`
	// OfficeHours are the usual working hours, "HH:MM-HH:MM". Empty:
	// "07:30-20:00" (a wide day: overtime is normal; access to 3A/3B
	// outside it is worth a look).
	OfficeHours string `yaml:"office_hours"`
	// OfficeDays are the working days, e.g. "mon-fri" or "mon,tue,thu".
	// Empty: "mon-fri".
	OfficeDays string `yaml:"office_days"`
	// Holidays are extra closed days (YYYY-MM-DD) added to the shipped
	// Japanese calendar (国民の祝日 and 年末年始 12/29–1/3). Empty: none.
	Holidays []string `yaml:"holidays"`
	// SensitiveClasses are watched for off-hours access and bulk reading.
	// Empty: 3A and 3B.
	SensitiveClasses []string `yaml:"sensitive_classes"`
	// GroupWindow: a second occurrence of the same rule for the same
	// subject within this time of the last one counts into the open alert
	// instead of raising a new one. Zero: 30m.
	GroupWindow time.Duration `yaml:"group_window"`
	// LearnPeriod: devices and zones a user uses within this time of their
	// first record are learned silently (new_device, new_zone). Zero: 24h.
	LearnPeriod time.Duration `yaml:"learn_period"`
	// QueueSize bounds the records waiting for the rules; more are dropped
	// and counted (sekisho_monitor_dropped_total). Zero: 8192.
	QueueSize int `yaml:"queue_size"`
	// Rules tune the shipped rules by name (see [MonitorRuleNames]); an
	// absent rule keeps its defaults.
	Rules map[string]MonitorRule `yaml:"rules"`
	// Channels notify people and systems of alerts. Empty: none.
	Channels []MonitorChannel `yaml:"channels"`
	// Retries of one notification before it is given up. Zero: 5.
	Retries int `yaml:"retries"`
	// Backoff before the first retry; it doubles each time. Zero: 2s.
	Backoff time.Duration `yaml:"backoff"`
}

// On reports whether monitoring runs.
func (m Monitor) On() bool { return m.Enabled == nil || *m.Enabled }

// MonitorRule tunes one rule. Zero fields keep the rule's defaults, which
// docs/monitoring.md lists.
type MonitorRule struct {
	// Enabled: nil (absent) or true runs the rule; false turns it off.
	Enabled *bool `yaml:"enabled"`
	// Severity is "critical", "high", "medium" or "low".
	Severity string `yaml:"severity"`
	// Threshold: events per subject (user or device) within Window that
	// raise the alert; for bulk_read the least number of distinct paths
	// per hour that can be unusual.
	Threshold int `yaml:"threshold"`
	// IPThreshold: events per source address within Window
	// (denial_burst, login_failure_burst).
	IPThreshold int `yaml:"ip_threshold"`
	// Window of the count.
	Window time.Duration `yaml:"window"`
	// Ceiling: distinct paths of sensitive classes per user and hour that
	// always raise bulk_read.
	Ceiling int `yaml:"ceiling"`
	// Factor: bulk_read fires when an hour exceeds Factor times the user's
	// own baseline.
	Factor float64 `yaml:"factor"`
	// Response is an automatic response when the alert opens: "" (none,
	// the default), "stepup", "revoke_session" or "revoke_device".
	Response string `yaml:"response"`
}

// RuleOn reports whether the rule is enabled.
func (r MonitorRule) RuleOn() bool { return r.Enabled == nil || *r.Enabled }

// MonitorChannel is one notification channel.
type MonitorChannel struct {
	// Type is "syslog", "webhook" or "email".
	Type string `yaml:"type"`
	// MinSeverity: alerts below it are not sent here. Empty: "medium".
	MinSeverity string `yaml:"min_severity"`
	// MaxPerMinute bounds the alerts sent here (a storm of alerts, say one
	// per probing address, would otherwise flood a mailbox); the rest are
	// counted as dropped and stay in the audit trail. Zero: 30.
	MaxPerMinute int `yaml:"max_per_minute"`
	// Address: syslog "tcp://host:port" or "tls://host:port"; email the
	// SMTP server "host:port".
	Address string `yaml:"address"`
	// CA is a PEM bundle for syslog over TLS or SMTP STARTTLS. Empty:
	// system roots.
	CA string `yaml:"ca"`
	// Facility is the syslog facility number (1–23). Zero: 10 (authpriv);
	// 0 (kern) cannot be chosen.
	Facility int `yaml:"facility"`
	// URL of the webhook (https, or http on loopback for tests and local
	// relays).
	URL string `yaml:"url"`
	// SecretEnv names the environment variable holding the webhook's HMAC
	// secret (X-Sekisho-Signature). Required for webhooks.
	SecretEnv string `yaml:"secret_env"`
	// From and To of the e-mail.
	From string   `yaml:"from"`
	To   []string `yaml:"to"`
	// StartTLS upgrades the SMTP connection with STARTTLS (required when
	// set).
	StartTLS bool `yaml:"starttls"`
	// Username for SMTP AUTH PLAIN; PasswordEnv names the environment
	// variable with the password. Empty: no authentication.
	Username    string `yaml:"username"`
	PasswordEnv string `yaml:"password_env"`
}

// Rule names of package monitor. They are the alert records' action and the
// rule label of sekisho_alerts_total: add, never rename.
const (
	RuleDenialBurst       = "denial_burst"
	RuleLoginFailureBurst = "login_failure_burst"
	RuleBulkRead          = "bulk_read"
	RuleOffHours          = "off_hours"
	RuleRevokedAccess     = "revoked_access"
	RuleCounterRegression = "counter_regression"
	RuleNewDevice         = "new_device"
	RuleNewZone           = "new_zone"
	RuleAuditFailure      = "audit_failure"
	RuleMonitorOverload   = "monitor_overload"
)

// MonitorRuleNames lists every rule in documentation order.
func MonitorRuleNames() []string {
	return []string{RuleDenialBurst, RuleLoginFailureBurst, RuleBulkRead, RuleOffHours,
		RuleRevokedAccess, RuleCounterRegression, RuleNewDevice, RuleNewZone,
		RuleAuditFailure, RuleMonitorOverload}
}

// Severities, most severe first.
var monitorSeverities = []string{"critical", "high", "medium", "low"}

// DefaultOfficeHours and DefaultOfficeDays of the monitor.
const (
	DefaultMonitorOfficeHours = "07:30-20:00"
	DefaultMonitorOfficeDays  = "mon-fri"
)

// ParseOfficeHours reads "HH:MM-HH:MM" into offsets from midnight.
func ParseOfficeHours(s string) (start, end time.Duration, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want HH:MM-HH:MM", s)
	}
	if start, err = parseClock(a); err != nil {
		return 0, 0, err
	}
	if end, err = parseClock(b); err != nil {
		return 0, 0, err
	}
	if end <= start {
		return 0, 0, fmt.Errorf("%q: the end must be after the start", s)
	}
	return start, end, nil
}

func parseClock(s string) (time.Duration, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || (hh == 24 && mm != 0) || len(m) != 2 {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

var weekdayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseOfficeDays reads "mon-fri" or "mon,wed,fri" (ranges and lists mixed).
func ParseOfficeDays(s string) ([]time.Weekday, error) {
	var out []time.Weekday
	day := func(n string) (int, error) {
		for i, w := range weekdayNames {
			if strings.EqualFold(strings.TrimSpace(n), w) {
				return i, nil
			}
		}
		return 0, fmt.Errorf("%q is not a day (mon, tue, … sun)", n)
	}
	for part := range strings.SplitSeq(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		i, err := day(a)
		if err != nil {
			return nil, err
		}
		j := i
		if isRange {
			if j, err = day(b); err != nil {
				return nil, err
			}
		}
		for d := i; ; d = (d + 1) % 7 {
			out = append(out, time.Weekday(d))
			if d == j {
				break
			}
		}
	}
	return out, nil
}

// monitor validates the monitor: section and resolves its file names
// against the configuration's directory.
func (v *validator) monitor() {
	m := &v.cfg.Monitor
	switch {
	case m.Timezone != "":
		if loc, err := time.LoadLocation(m.Timezone); err != nil {
			v.errorf("monitor.timezone", "unknown time zone %q, e.g. Asia/Tokyo (タイムゾーンが不明です)", m.Timezone)
		} else {
			m.Location = loc
		}
	case v.cfg.Policy.Location != nil:
		m.Location = v.cfg.Policy.Location // policy.timezone, checked by policy()
	}
	if m.OfficeHours != "" {
		if _, _, err := ParseOfficeHours(m.OfficeHours); err != nil {
			v.errorf("monitor.office_hours", "%v, e.g. 07:30-20:00 (勤務時間は 07:30-20:00 の形で書いてください)", err)
		}
	}
	if m.OfficeDays != "" {
		if _, err := ParseOfficeDays(m.OfficeDays); err != nil {
			v.errorf("monitor.office_days", "%v, e.g. mon-fri (勤務日は mon-fri の形で書いてください)", err)
		}
	}
	for i, h := range m.Holidays {
		if _, err := time.Parse(time.DateOnly, h); err != nil {
			v.errorf(idx("monitor.holidays", i), "%q is not a date YYYY-MM-DD (日付は YYYY-MM-DD で書いてください)", h)
		}
	}
	for i, c := range m.SensitiveClasses {
		v.knownClass(idx("monitor.sensitive_classes", i), c)
	}
	for _, k := range []struct {
		key string
		d   time.Duration
	}{{"monitor.group_window", m.GroupWindow}, {"monitor.learn_period", m.LearnPeriod}, {"monitor.backoff", m.Backoff}} {
		if k.d < 0 {
			v.errorf(k.key, "must not be negative (負の値は指定できません)")
		}
	}
	if m.QueueSize < 0 {
		v.errorf("monitor.queue_size", "must not be negative (負の値は指定できません)")
	}
	if m.Retries < 0 {
		v.errorf("monitor.retries", "must not be negative (負の値は指定できません)")
	}
	names := MonitorRuleNames()
	for _, name := range sortedKeys(m.Rules) {
		r := m.Rules[name]
		path := "monitor.rules." + name
		if !slices.Contains(names, name) {
			v.errorf(path, "unknown rule %q; known: %s (ルール %q はありません)", name, strings.Join(names, ", "), name)
			continue
		}
		v.oneOf(path+".severity", r.Severity, monitorSeverities...)
		v.oneOf(path+".response", r.Response, "stepup", "revoke_session", "revoke_device")
		if r.Threshold < 0 || r.IPThreshold < 0 || r.Ceiling < 0 || r.Window < 0 || r.Factor < 0 {
			v.errorf(path, "thresholds, windows and factors must not be negative (負の値は指定できません)")
		}
	}
	dir := baseDir(v.cfg.Path)
	for i := range m.Channels {
		v.monitorChannel(idx("monitor.channels", i), &m.Channels[i], dir)
	}
}

func (v *validator) monitorChannel(path string, c *MonitorChannel, dir string) {
	v.oneOf(path+".min_severity", c.MinSeverity, monitorSeverities...)
	if c.MaxPerMinute < 0 {
		v.errorf(path+".max_per_minute", "must not be negative (負の値は指定できません)")
	}
	if c.CA != "" && !filepath.IsAbs(c.CA) {
		c.CA = filepath.Join(dir, c.CA)
	}
	switch c.Type {
	case "":
		v.errorf(path+".type", "required: syslog, webhook or email (syslog・webhook・email のいずれかを指定してください)")
	case "syslog":
		u, err := url.Parse(c.Address)
		switch {
		case c.Address == "":
			v.errorf(path+".address", "required for syslog, e.g. tls://siem.example.lg.jp:6514 (送信先を指定してください)")
		case err != nil || (u.Scheme != "tcp" && u.Scheme != "tls") || u.Port() == "" || u.Hostname() == "":
			v.errorf(path+".address", "%q: want tcp://host:port or tls://host:port (tcp://ホスト:ポート または tls://ホスト:ポート の形で書いてください)", c.Address)
		case c.CA != "" && u.Scheme != "tls":
			v.errorf(path+".ca", "only meaningful for a tls:// address (tls:// の送信先でのみ指定できます)")
		}
		if c.Facility < 0 || c.Facility > 23 {
			v.errorf(path+".facility", "%d is not a syslog facility 0–23 (facility は 0〜23 です)", c.Facility)
		}
	case "webhook":
		u, err := url.Parse(c.URL)
		switch {
		case c.URL == "":
			v.errorf(path+".url", "required for a webhook (送信先 URL を指定してください)")
		case err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))):
			v.errorf(path+".url", "%q: want an https URL (http only to a loopback address) (https の URL を指定してください)", c.URL)
		}
		if c.SecretEnv == "" {
			v.errorf(path+".secret_env", "required: the environment variable holding the signing secret (署名用の秘密を入れた環境変数名を指定してください)")
		}
	case "email":
		if _, _, err := net.SplitHostPort(c.Address); c.Address == "" || err != nil {
			v.errorf(path+".address", "%q: want the SMTP server as host:port, e.g. mail.example.lg.jp:587 (SMTP サーバーを ホスト:ポート で指定してください)", c.Address)
		}
		if _, err := mail.ParseAddress(c.From); err != nil {
			v.errorf(path+".from", "%q is not an e-mail address (メールアドレスではありません)", c.From)
		}
		if len(c.To) == 0 {
			v.errorf(path+".to", "at least one recipient (宛先を 1 つ以上指定してください)")
		}
		for i, to := range c.To {
			if _, err := mail.ParseAddress(to); err != nil {
				v.errorf(idx(path+".to", i), "%q is not an e-mail address (メールアドレスではありません)", to)
			}
		}
		if c.Username != "" && c.PasswordEnv == "" {
			v.errorf(path+".password_env", "required with username (username を指定したときはパスワードの環境変数名も必要です)")
		}
	default:
		v.oneOf(path+".type", c.Type, "syslog", "webhook", "email")
	}
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
