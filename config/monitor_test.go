package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMonitorSectionDefaults(t *testing.T) {
	cfg, err := Parse("/etc/sekisho/t.yaml", []byte(head))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Monitor
	if !m.On() || len(m.Channels) != 0 || len(m.Rules) != 0 {
		t.Errorf("absent section = %+v, want on with no channels and default rules", m)
	}
	if m.Location == nil || m.Location.String() != "Asia/Tokyo" {
		t.Errorf("Location = %v, want Asia/Tokyo from the policy default", m.Location)
	}
}

func TestMonitorSection(t *testing.T) {
	src := head + `monitor:
  timezone: Asia/Tokyo
  office_hours: "08:00-21:00"
  office_days: mon-sat
  holidays: ["2026-06-15"]
  sensitive_classes: ["3A"]
  group_window: 1h
  rules:
    denial_burst: {threshold: 20, ip_threshold: 100, window: 10m, severity: critical, response: stepup}
    new_zone: {enabled: false}
  channels:
    - {type: syslog, address: "tls://siem.example.lg.jp:6514", ca: certs/siem-ca.pem, min_severity: low}
    - {type: webhook, url: "https://hooks.example.lg.jp/sekisho", secret_env: SEKISHO_WEBHOOK_SECRET}
    - type: email
      address: mail.example.lg.jp:587
      from: "関所 <sekisho@example.lg.jp>"
      to: [csirt@example.lg.jp]
      starttls: true
      username: sekisho
      password_env: SEKISHO_SMTP_PASSWORD
`
	cfg, err := Parse("/etc/sekisho/t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Monitor
	if r := m.Rules[RuleDenialBurst]; r.Threshold != 20 || r.IPThreshold != 100 || r.Window != 10*time.Minute || r.Severity != "critical" || r.Response != "stepup" || !r.RuleOn() {
		t.Errorf("denial_burst = %+v", r)
	}
	if m.Rules[RuleNewZone].RuleOn() {
		t.Error("new_zone should be off")
	}
	if got := m.Channels[0].CA; got != filepath.Join("/etc/sekisho", "certs/siem-ca.pem") {
		t.Errorf("syslog CA = %q, want it resolved against the file's directory", got)
	}
	if m.Channels[2].From != "関所 <sekisho@example.lg.jp>" || !m.Channels[2].StartTLS {
		t.Errorf("email = %+v", m.Channels[2])
	}
	start, end, err := ParseOfficeHours(m.OfficeHours)
	if err != nil || start != 8*time.Hour || end != 21*time.Hour {
		t.Errorf("office hours = %v %v %v", start, end, err)
	}
	days, err := ParseOfficeDays(m.OfficeDays)
	if err != nil || len(days) != 6 || days[0] != time.Monday || days[5] != time.Saturday {
		t.Errorf("office days = %v %v", days, err)
	}
}

func TestMonitorSectionErrors(t *testing.T) {
	src := head + `monitor:
  timezone: Mars/Olympus
  office_hours: "18:00-08:00"
  office_days: mon-fry
  holidays: ["2026-13-01"]
  sensitive_classes: ["4Z"]
  group_window: -1m
  rules:
    denial_brust: {threshold: 3}
    off_hours: {severity: urgent, response: shoot}
    bulk_read: {factor: -2}
  channels:
    - {type: syslog, address: "udp://siem:514", facility: 30}
    - {type: webhook, url: "http://hooks.example.lg.jp/x"}
    - {type: email, address: mail, from: nobody, to: []}
    - {type: pager}
`
	_, err := Parse("t.yaml", []byte(src))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse = %v, want *Errors", err)
	}
	for _, want := range []string{
		`t.yaml:4: monitor.timezone: unknown time zone "Mars/Olympus"`,
		`t.yaml:5: monitor.office_hours: "18:00-08:00": the end must be after the start`,
		`t.yaml:6: monitor.office_days: "fry" is not a day`,
		`t.yaml:7: monitor.holidays[0]: "2026-13-01" is not a date`,
		`t.yaml:8: monitor.sensitive_classes[0]: unknown class "4Z"`,
		`t.yaml:9: monitor.group_window: -1m is negative`,
		`t.yaml:11: monitor.rules.denial_brust: unknown rule "denial_brust"`,
		`t.yaml:12: monitor.rules.off_hours.severity: "urgent" is not one of critical, high, medium, low`,
		`t.yaml:12: monitor.rules.off_hours.response: "shoot" is not one of stepup, revoke_session, revoke_device`,
		`t.yaml:13: monitor.rules.bulk_read: thresholds, windows and factors must not be negative`,
		`t.yaml:15: monitor.channels[0].address: "udp://siem:514": want tcp://host:port or tls://host:port`,
		`t.yaml:15: monitor.channels[0].facility: 30 is not a syslog facility`,
		`t.yaml:16: monitor.channels[1].url: "http://hooks.example.lg.jp/x": want an https URL`,
		`t.yaml:16: monitor.channels[1].secret_env: required`,
		`t.yaml:17: monitor.channels[2].address: "mail": want the SMTP server as host:port`,
		`t.yaml:17: monitor.channels[2].from: "nobody" is not an e-mail address`,
		`t.yaml:17: monitor.channels[2].to: at least one recipient`,
		`t.yaml:18: monitor.channels[3].type: "pager" is not one of syslog, webhook, email`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%s", want, err)
		}
	}
}
