package monitor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
)

// staff is one person of the synthetic office.
type staff struct {
	id, device, ip, zone string
	counter              bool // 窓口: reads resident records all day
	honestDenials        int
}

// officeDay generates a realistic working day: 300 staff arriving between
// 08:30 and 09:00 and leaving between 17:15 and 18:15; each session starts
// with the login redirect and a login; requests every 1–6 minutes to a mix
// of class 2, 3C, 3B and 3A systems; a few honest denials, step-ups and a
// failed login or two.
func officeDay(rng *rand.Rand, people []staff, day time.Time) []*audit.Record {
	var recs []*audit.Record
	n := 0
	rec := func(at time.Time, s staff, ev, route, class, path, decision string, reasons ...string) *audit.Record {
		n++
		r := &audit.Record{Time: at, Event: ev, RequestID: fmt.Sprintf("%s-%06d", day.Format("0102"), n),
			User: s.id, Device: s.device, IP: s.ip, Zone: s.zone, Route: route, Class: class,
			Method: "GET", Path: path, Decision: decision, Enforced: true, Reasons: reasons}
		recs = append(recs, r)
		return r
	}
	routes := []struct {
		name, class string
		weight      int
	}{{"groupware", "2", 45}, {"bunsho", "2", 15}, {"zaimu", "3C", 15}, {"jinji", "3B", 8}, {"kokuho", "3B", 9}, {"juki", "3A", 8}}
	pick := func() (string, string) {
		w := rng.IntN(100)
		for _, r := range routes {
			if w < r.weight {
				return r.name, r.class
			}
			w -= r.weight
		}
		return "groupware", "2"
	}
	for _, s := range people {
		at := day.Add(8*time.Hour + 30*time.Minute + time.Duration(rng.IntN(30))*time.Minute)
		end := day.Add(17*time.Hour + 15*time.Minute + time.Duration(rng.IntN(60))*time.Minute)
		login := rec(at, s, audit.EventAccess, "groupware", "2", "/", audit.DecisionDeny, "not_authenticated")
		login.User, login.Device = "", ""
		if rng.IntN(20) == 0 { // a fumbled PIN
			rec(at.Add(10*time.Second), s, audit.EventAuthn, "", "", "", audit.DecisionDeny, "uv_required").Action = "login_failure"
		}
		rec(at.Add(20*time.Second), s, audit.EventAuthn, "", "", "", audit.DecisionAllow).Action = "login_success"
		denials := s.honestDenials
		for at = at.Add(time.Minute); at.Before(end); at = at.Add(time.Duration(60+rng.IntN(300)) * time.Second) {
			route, class := pick()
			if s.counter && rng.IntN(2) == 0 {
				route, class = "juki", "3A"
			}
			path := fmt.Sprintf("/%s/%d", route, rng.IntN(50))
			if class == "3A" || class == "3B" {
				path = fmt.Sprintf("/residents/%d", rng.IntN(100000))
			}
			switch {
			case denials > 0 && rng.IntN(40) == 0:
				denials--
				rec(at, s, audit.EventAccess, route, class, path, audit.DecisionDeny, "no_matching_rule")
			case class == "3A" && rng.IntN(15) == 0:
				rec(at, s, audit.EventAccess, route, class, path, audit.DecisionStepUp, "auth_too_old")
				rec(at.Add(30*time.Second), s, audit.EventAuthn, "", "", "", audit.DecisionAllow).Action = "stepup"
			default:
				rec(at, s, audit.EventAccess, route, class, path, audit.DecisionAllow)
			}
		}
	}
	slices.SortStableFunc(recs, func(a, b *audit.Record) int { return a.Time.Compare(b.Time) })
	return recs
}

func TestOrdinaryOfficeDaysRaiseNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 11))
	people := make([]staff, 300)
	for i := range people {
		s := staff{id: fmt.Sprintf("staff%03d", i), device: fmt.Sprintf("PC-%04d", i)}
		if i%5 == 0 { // teleworkers behind four NAT addresses
			s.zone, s.ip = "telework", fmt.Sprintf("10.200.0.%d", 1+i%4)
		} else {
			s.zone, s.ip = "chonai", fmt.Sprintf("10.1.%d.%d", i/200, 10+i%200)
		}
		s.counter = i%10 == 1
		if i%15 == 0 {
			s.honestDenials = 1 + rng.IntN(3)
		}
		people[i] = s
	}
	// Tuesday and Wednesday, 24–25 November 2026 (no holiday).
	days := []time.Time{jst(2026, 11, 24, 0, 0), jst(2026, 11, 25, 0, 0)}
	h := start(t, config.Monitor{}, days[0])
	total := 0
	for _, d := range days {
		recs := officeDay(rng, people, d)
		total += len(recs)
		for i, r := range recs {
			if i%512 == 0 {
				h.clk.set(r.Time)
				h.flush() // keep the queue from overflowing, as a live gateway's pace would
			}
			h.m.Observe(r)
		}
		h.clk.set(d.Add(23 * time.Hour))
		h.flush()
	}
	if total < 50_000 {
		t.Fatalf("only %d records: the synthetic day is too thin to mean anything", total)
	}
	if got := h.alerts(""); len(got) != 0 {
		for _, r := range got[:min(len(got), 5)] {
			t.Errorf("alert on ordinary traffic: %s %s: %s", r.Action, r.Target, detailOf(t, r).Summary)
		}
		t.Fatalf("%d alerts on %d ordinary records", len(got), total)
	}
	if d := h.m.Dropped(); d != 0 {
		t.Errorf("dropped %d records", d)
	}
	t.Logf("%d records over two days, no alert", total)

	// The same office with one insider on the second evening: the rules
	// that should fire do, and only for them.
	night := days[1].Add(22 * time.Hour)
	h.clk.set(night)
	var recs []*audit.Record
	for i := range 400 {
		recs = append(recs, access(night.Add(time.Duration(i)*3*time.Second), "staff001", "PC-0001", "10.1.0.11", "chonai", "juki", "3A", fmt.Sprintf("/residents/export/%d", i), "allow"))
	}
	h.feed(recs...)
	rules := map[string]bool{}
	for _, r := range h.alerts("") {
		if r.Target != "staff001" {
			t.Errorf("alert for %s: %s", r.Target, r.Action)
		}
		rules[r.Action] = true
	}
	if !rules[config.RuleOffHours] || !rules[config.RuleBulkRead] || len(rules) != 2 {
		t.Errorf("insider raised %v, want off_hours and bulk_read", rules)
	}
}
