package policy

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var posRE = regexp.MustCompile(`^fuzz\.csv(:\d+)?: `)

// FuzzLoad feeds arbitrary text to the policy loader: it must never panic,
// every error must name the file (and line), and whatever loads must
// decide without panicking.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(testPolicy))
	for _, name := range ProfileNames {
		b, _ := Profile(name)
		f.Add(b)
	}
	cfg := sampleConfig("fuzz.csv")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := compile(cfg, "fuzz.csv", data, tokyo(t), wedMorning)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !posRE.MatchString(line) && !strings.HasPrefix(line, "policy.") && !strings.HasPrefix(line, "classes.") {
					t.Fatalf("error line without a position: %q", line)
				}
			}
			var pe *Error
			if !errors.As(err, &pe) && !strings.Contains(err.Error(), "policy.") {
				t.Fatalf("error is not a *policy.Error: %v", err)
			}
			return
		}
		for _, r := range []*Request{req(nil), req(func(r *Request) { r.Authenticated = false }), req(func(r *Request) { r.Zone = "mynumber"; r.Segment = "mynumber" })} {
			ec := &evalCtx{req: r, now: r.Time, local: r.Time.In(c.loc), until: r.Time.Add(1)}
			d := c.decide(r, ec, &trace{})
			if d.Effect != Deny && d.Effect != Allow && d.Effect != StepUp {
				t.Fatalf("bad effect %d", d.Effect)
			}
			if d.Rule == "" {
				t.Fatal("decision without a rule")
			}
		}
	})
}

// FuzzParseCases: a cases file never panics the parser, and what parses
// builds requests without panicking.
func FuzzParseCases(f *testing.F) {
	for _, name := range ProfileNames {
		b, _ := ProfileCases(name)
		f.Add(b)
	}
	f.Add([]byte("cases:\n  - {route: zaimu, expect: allow, ip: \"::ffff:10.1.2.3\", time: \"2026-04-01T10:00:00Z\", device: x, device_registered: false}\n"))
	f.Add([]byte("time: nope\ncases: []\n"))
	cfg := sampleConfig("policy.csv")
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := ParseCases("cases.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cases.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		for i := range cs.Cases {
			_, _ = cs.Cases[i].Request(cfg, wedMorning)
		}
	})
}
