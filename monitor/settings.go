package monitor

import (
	"bufio"
	_ "embed"
	"fmt"
	"strings"
	"time"

	"github.com/sekisho/sekisho/config"
)

// Severities, most severe first; rank 0 is the most severe.
var severities = []string{"critical", "high", "medium", "low"}

func severityRank(s string) int {
	for i, x := range severities {
		if x == s {
			return i
		}
	}
	return len(severities)
}

// rule is the resolved setting of one rule.
type rule struct {
	on          bool
	severity    string
	threshold   int
	ipThreshold int
	window      time.Duration
	ceiling     int
	factor      float64
	response    string
}

// defaultRules are the shipped thresholds. Keep docs/monitoring.md in step.
var defaultRules = map[string]rule{
	config.RuleDenialBurst:       {severity: "high", threshold: 10, ipThreshold: 30, window: 5 * time.Minute},
	config.RuleLoginFailureBurst: {severity: "high", threshold: 5, ipThreshold: 20, window: 10 * time.Minute},
	config.RuleBulkRead:          {severity: "high", threshold: 50, ceiling: 300, factor: 5, window: time.Hour},
	config.RuleOffHours:          {severity: "medium"},
	config.RuleRevokedAccess:     {severity: "critical"},
	config.RuleCounterRegression: {severity: "critical"},
	config.RuleNewDevice:         {severity: "medium"},
	config.RuleNewZone:           {severity: "low"},
	config.RuleAuditFailure:      {severity: "critical"},
	config.RuleMonitorOverload:   {severity: "high"},
}

// Defaults of the monitor: section.
const (
	defaultGroupWindow = 30 * time.Minute
	defaultLearnPeriod = 24 * time.Hour
	defaultQueueSize   = 8192
	defaultRetries     = 5
	defaultBackoff     = 2 * time.Second
	// baselineHours: bulk_read compares with a user's baseline only after
	// this many active hours have been seen.
	baselineHours = 8
	// ewmaAlpha weighs the newest hour in the baseline.
	ewmaAlpha = 0.2
	// revokeGrace ignores a revoked subject's records this soon after the
	// revocation: requests already in flight.
	revokeGrace = 5 * time.Second
)

// settings is the configuration resolved with defaults.
type settings struct {
	rules       map[string]rule
	loc         *time.Location
	start, end  time.Duration
	days        [7]bool
	holidays    map[int]string // yyyymmdd → name
	sensitive   map[string]bool
	groupWindow time.Duration
	learnPeriod time.Duration
	queueSize   int
	retries     int
	backoff     time.Duration
}

func newSettings(cfg config.Monitor) (*settings, error) {
	s := &settings{
		rules:       map[string]rule{},
		loc:         cfg.Location,
		groupWindow: or(cfg.GroupWindow, defaultGroupWindow),
		learnPeriod: or(cfg.LearnPeriod, defaultLearnPeriod),
		queueSize:   or(cfg.QueueSize, defaultQueueSize),
		retries:     or(cfg.Retries, defaultRetries),
		backoff:     or(cfg.Backoff, defaultBackoff),
		sensitive:   map[string]bool{},
	}
	if s.loc == nil {
		loc, err := time.LoadLocation(cmpOr(cfg.Timezone, config.DefaultTimezone))
		if err != nil {
			return nil, fmt.Errorf("monitor time zone: %w", err)
		}
		s.loc = loc
	}
	var err error
	if s.start, s.end, err = config.ParseOfficeHours(cmpOr(cfg.OfficeHours, config.DefaultMonitorOfficeHours)); err != nil {
		return nil, fmt.Errorf("monitor office hours: %w", err)
	}
	days, err := config.ParseOfficeDays(cmpOr(cfg.OfficeDays, config.DefaultMonitorOfficeDays))
	if err != nil {
		return nil, fmt.Errorf("monitor office days: %w", err)
	}
	for _, d := range days {
		s.days[d] = true
	}
	s.holidays = map[int]string{}
	for date, name := range Holidays() {
		d, err := time.Parse(time.DateOnly, date)
		if err != nil {
			return nil, fmt.Errorf("shipped holiday calendar: %w", err)
		}
		s.holidays[dateKey(d)] = name
	}
	for _, h := range cfg.Holidays {
		d, err := time.Parse(time.DateOnly, h)
		if err != nil {
			return nil, fmt.Errorf("monitor holiday %q: %w", h, err)
		}
		if _, ok := s.holidays[dateKey(d)]; !ok {
			s.holidays[dateKey(d)] = "閉庁日"
		}
	}
	classes := cfg.SensitiveClasses
	if len(classes) == 0 {
		classes = []string{"3A", "3B"}
	}
	for _, c := range classes {
		s.sensitive[c] = true
	}
	for name, def := range defaultRules {
		r := def
		r.on = true
		if c, ok := cfg.Rules[name]; ok {
			r.on = c.RuleOn()
			r.severity = cmpOr(c.Severity, r.severity)
			r.threshold = or(c.Threshold, r.threshold)
			r.ipThreshold = or(c.IPThreshold, r.ipThreshold)
			r.window = or(c.Window, r.window)
			r.ceiling = or(c.Ceiling, r.ceiling)
			r.factor = or(c.Factor, r.factor)
			r.response = c.Response
		}
		if severityRank(r.severity) == len(severities) {
			return nil, fmt.Errorf("rule %s: unknown severity %q", name, r.severity)
		}
		s.rules[name] = r
	}
	for name := range cfg.Rules {
		if _, ok := defaultRules[name]; !ok {
			return nil, fmt.Errorf("unknown monitor rule %q", name)
		}
	}
	return s, nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// officeTime reports whether t is within office hours on a working day
// that is not a holiday, and otherwise the local date's holiday name ("" on
// an ordinary day off or outside hours).
func (s *settings) officeTime(t time.Time) (ok bool, holiday string) {
	lt := t.In(s.loc)
	if name, closed := s.holidays[dateKey(lt)]; closed {
		return false, name
	}
	if !s.days[lt.Weekday()] {
		return false, ""
	}
	y, mo, d := lt.Date()
	tod := lt.Sub(time.Date(y, mo, d, 0, 0, 0, 0, s.loc))
	return tod >= s.start && tod < s.end, ""
}

// dateKey is the date of t (in its location) as yyyymmdd.
func dateKey(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

//go:embed holidays_jp.txt
var holidayData string

// Holidays returns the shipped calendar of closed days: Japanese public
// holidays (国民の祝日, 振替休日, 国民の休日) and the year-end closure
// (年末年始 12/29–1/3) for 2026 and 2027, as date → name.
func Holidays() map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(holidayData))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		date, name, _ := strings.Cut(line, " ")
		out[date] = strings.TrimSpace(name)
	}
	return out
}
