// Package prometheus holds example Prometheus alerting rules and an
// Alertmanager configuration for sekisho; this test checks them without
// promtool.
package prometheus

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// decode parses path strictly: an unknown key is an error, as it is for
// Prometheus.
func decode(t *testing.T, path string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

var (
	goMetricName  = regexp.MustCompile(`Name:\s*"(sekisho_[a-z0-9_]+)"`)
	goNamespaced  = regexp.MustCompile(`Namespace:\s*"sekisho",\s*Subsystem:\s*"([a-z0-9_]+)",\s*Name:\s*"([a-z0-9_]+)"`)
	exprMetric    = regexp.MustCompile(`\b(sekisho_[a-z0-9_]+)`)
	promDuration  = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
	alertNameRule = regexp.MustCompile(`^Sekisho[A-Z][A-Za-z0-9]+$`)
)

// exportedMetrics reads the metric names sekisho's Go code registers.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	root := filepath.Join("..", "..")
	names := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "examples" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range goMetricName.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
		for _, m := range goNamespaced.FindAllStringSubmatch(string(src), -1) {
			names["sekisho_"+m[1]+"_"+m[2]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func balanced(s string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inQuote := false
	for _, c := range s {
		switch {
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, c)
		case pairs[c] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && !inQuote
}

func TestAlertingRules(t *testing.T) {
	var rf ruleFile
	decode(t, "sekisho-alerts.yml", &rf)
	metrics := exportedMetrics(t)
	for _, want := range []string{"sekisho_requests_total", "sekisho_audit_healthy", "sekisho_alerts_total", "sekisho_authn_ceremonies_total"} {
		if !metrics[want] {
			t.Fatalf("metric scan found no %s; found %d names", want, len(metrics))
		}
	}
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "monitoring.md"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	count := 0
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q is unnamed or empty", g.Name)
		}
		for _, r := range g.Rules {
			count++
			if !alertNameRule.MatchString(r.Alert) || r.Record != "" {
				t.Errorf("%s/%q: want an alert named Sekisho…", g.Name, r.Alert)
			}
			if seen[r.Alert] {
				t.Errorf("duplicate alert %s", r.Alert)
			}
			seen[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" || !balanced(r.Expr) {
				t.Errorf("%s: empty or unbalanced expr %q", r.Alert, r.Expr)
			}
			for _, m := range exprMetric.FindAllString(r.Expr, -1) {
				base := m
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if strings.HasSuffix(m, suf) && metrics[strings.TrimSuffix(m, suf)] {
						base = strings.TrimSuffix(m, suf)
					}
				}
				if !metrics[base] {
					t.Errorf("%s: expr uses %s, which sekisho does not export", r.Alert, m)
				}
			}
			if r.For != "" && !promDuration.MatchString(r.For) {
				t.Errorf("%s: for %q is not a Prometheus duration", r.Alert, r.For)
			}
			if !slices.Contains([]string{"critical", "high", "medium", "low"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
			}
			ja, en := r.Annotations["summary"], r.Annotations["summary_en"]
			if !strings.ContainsFunc(ja, func(c rune) bool { return c >= 0x3040 }) || en == "" {
				t.Errorf("%s: want a Japanese summary and an English summary_en", r.Alert)
			}
			rb, ok := strings.CutPrefix(r.Annotations["runbook"], "docs/monitoring.md#")
			if !ok || !strings.Contains(string(docs), `id="`+rb+`"`) {
				t.Errorf("%s: runbook %q has no anchor in docs/monitoring.md", r.Alert, r.Annotations["runbook"])
			}
		}
	}
	if count < 15 {
		t.Errorf("only %d rules", count)
	}
}

func TestAlertmanagerConfig(t *testing.T) {
	type route struct {
		Receiver       string   `yaml:"receiver"`
		GroupBy        []string `yaml:"group_by"`
		GroupWait      string   `yaml:"group_wait"`
		GroupInterval  string   `yaml:"group_interval"`
		RepeatInterval string   `yaml:"repeat_interval"`
		Matchers       []string `yaml:"matchers"`
		Routes         []route  `yaml:"routes"`
	}
	var am struct {
		Global       map[string]any `yaml:"global"`
		Route        route          `yaml:"route"`
		InhibitRules []struct {
			SourceMatchers []string `yaml:"source_matchers"`
			TargetMatchers []string `yaml:"target_matchers"`
			Equal          []string `yaml:"equal"`
		} `yaml:"inhibit_rules"`
		Receivers []struct {
			Name           string           `yaml:"name"`
			WebhookConfigs []map[string]any `yaml:"webhook_configs"`
			EmailConfigs   []map[string]any `yaml:"email_configs"`
		} `yaml:"receivers"`
	}
	decode(t, "alertmanager.yml", &am)
	receivers := map[string]bool{}
	for _, r := range am.Receivers {
		if len(r.WebhookConfigs)+len(r.EmailConfigs) == 0 {
			t.Errorf("receiver %s sends nowhere", r.Name)
		}
		receivers[r.Name] = true
	}
	var check func(r route, top bool)
	check = func(r route, top bool) {
		if (top || r.Receiver != "") && !receivers[r.Receiver] {
			t.Errorf("route to unknown receiver %q", r.Receiver)
		}
		if !top && len(r.Matchers) == 0 {
			t.Error("a child route without matchers catches everything")
		}
		for _, d := range []string{r.GroupWait, r.GroupInterval, r.RepeatInterval} {
			if d != "" {
				if _, err := time.ParseDuration(d); err != nil {
					t.Errorf("duration %q: %v", d, err)
				}
			}
		}
		for _, c := range r.Routes {
			check(c, false)
		}
	}
	check(am.Route, true)
	var rf ruleFile
	decode(t, "sekisho-alerts.yml", &rf)
	// Every severity the rules use is routed somewhere on purpose.
	routed := "critical high"
	for _, m := range am.Route.Routes {
		for _, x := range m.Matchers {
			routed = strings.ReplaceAll(routed, strings.Trim(strings.TrimPrefix(x, "severity="), `"`), "")
		}
	}
	if strings.TrimSpace(routed) != "" {
		t.Errorf("severities not routed: %q", routed)
	}
}
