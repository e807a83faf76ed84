package policy

import (
	"fmt"
	"strings"
	"time"
)

// Explanation is a decision with how it was reached: who the request was
// taken to be, which rules matched it and what each did, and for anything
// but an allow, what would change the outcome. It is for people (IT staff,
// CSIRT); never show it to the requester.
type Explanation struct {
	Decision Decision `json:"decision"`
	Version  string   `json:"policy_version"`
	// Subjects and Objects the request was matched as (after inheritance).
	Subjects []string `json:"subjects"`
	Objects  []string `json:"objects"`
	// Rules whose subject, object and action matched, in file order.
	Rules []RuleTrace `json:"rules"`
	// ClassReasons are the class requirements the request did not meet.
	ClassReasons []Reason `json:"class_reasons,omitempty"`
	// Changes say what would change a deny or step-up.
	Changes []Change `json:"changes,omitempty"`
}

// RuleTrace is one matched rule and what its conditions did.
type RuleTrace struct {
	Rule   string `json:"rule"`
	Text   string `json:"text"`
	Effect Effect `json:"effect"`
	// Result: "applied", "stepup" (gates held, re-authentication needed)
	// or "not_applied".
	Result string `json:"result"`
	// Failed lists the tests that did not hold ("chonai_only: zone=chonai").
	Failed []string `json:"failed,omitempty"`
}

// Change is one thing that would change the decision, in Japanese and
// English. Rule is the rule that would then decide, when known.
type Change struct {
	Ja   string `json:"ja"`
	En   string `json:"en"`
	Rule string `json:"rule,omitempty"`
}

// MarshalText makes an Effect read as "allow", "deny" or "stepup" in JSON.
func (e Effect) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText reads "allow", "deny" or "stepup".
func (e *Effect) UnmarshalText(b []byte) error {
	v, ok := ParseEffect(string(b))
	if !ok {
		return fmt.Errorf("unknown effect %q (allow, deny, stepup)", b)
	}
	*e = v
	return nil
}

// Explain decides req without the cache and says how.
func (e *Engine) Explain(req *Request) Explanation {
	c := e.cur.Load()
	now := req.Time
	if now.IsZero() {
		now = e.clock()
	}
	ec := &evalCtx{req: req, now: now, local: now.In(c.loc), until: now.Add(time.Hour)}
	tr := &trace{}
	d := c.decide(req, ec, tr)
	x := Explanation{Decision: d, Version: c.version, Subjects: tr.subjects, Objects: tr.objects, ClassReasons: tr.class}
	for _, r := range tr.rules {
		rt := RuleTrace{Rule: r.rule.pos, Text: r.rule.Text, Effect: r.rule.Effect, Result: "not_applied"}
		switch {
		case r.applied:
			rt.Result = "applied"
		case r.stepup:
			rt.Result = "stepup"
		}
		for _, f := range r.failures {
			if f.test == "" {
				rt.Failed = append(rt.Failed, f.cond)
			} else {
				rt.Failed = append(rt.Failed, f.cond+": "+f.test)
			}
		}
		x.Rules = append(x.Rules, rt)
	}
	x.Changes = c.counterfactuals(req, d, now)
	if len(x.Changes) == 0 {
		x.Changes = c.changes(req, d, tr)
	}
	return x
}

func (c *compiled) changes(req *Request, d Decision, tr *trace) []Change {
	if d.Effect == Allow {
		return nil
	}
	var out []Change
	if strings.HasPrefix(d.Rule, rulePrefixClass) {
		cls := c.classes[req.Class]
		for _, r := range d.Reasons {
			if ch, ok := classFix(r, req.Class, cls.Zones, cls.MaxAuthAge); ok {
				out = append(out, ch)
			}
		}
		return out
	}
	if d.Rule == RuleDefaultDeny && !req.Authenticated {
		return []Change{{Ja: "ログインする", En: "sign in"}}
	}
	for _, r := range tr.rules {
		switch {
		case r.rule.Effect == Deny && r.applied && r.rule.pos == d.Rule:
			conds := make([]string, len(r.rule.Conds))
			for i, cr := range r.rule.Conds {
				conds[i] = cr.String()
			}
			what := "無条件 (unconditional)"
			if len(conds) > 0 {
				what = strings.Join(conds, " & ")
			}
			out = append(out, Change{Rule: r.rule.pos,
				Ja: fmt.Sprintf("%s の deny 規則（条件: %s）に当たらないこと。deny は allow より優先されます", r.rule.pos, what),
				En: fmt.Sprintf("not matching the deny rule at %s (conditions: %s); deny overrides allow", r.rule.pos, what)})
		case r.rule.Effect != Deny && !r.applied && len(r.failures) > 0 && d.Effect == Deny:
			var tests []string
			for _, f := range r.failures {
				if f.test == "" {
					tests = append(tests, "not "+strings.TrimPrefix(f.cond, "!"))
				} else {
					tests = append(tests, f.test)
				}
			}
			out = append(out, Change{Rule: r.rule.pos,
				Ja: fmt.Sprintf("%s の規則が適用される条件を満たすこと: %s", r.rule.pos, strings.Join(tests, ", ")),
				En: fmt.Sprintf("meeting the conditions of the rule at %s: %s", r.rule.pos, strings.Join(tests, ", "))})
		case r.stepup && r.rule.pos == d.Rule:
			var tests []string
			for _, f := range r.failures {
				tests = append(tests, f.test)
			}
			out = append(out, Change{Rule: r.rule.pos,
				Ja: fmt.Sprintf("パスキーで再認証すること（%s）", strings.Join(tests, ", ")),
				En: fmt.Sprintf("re-authenticating with a passkey (%s)", strings.Join(tests, ", "))})
		}
	}
	if d.Effect == StepUp && d.Rule != RuleDefaultDeny && len(out) == 0 {
		out = append(out, Change{Ja: "パスキーで再認証すること", En: "re-authenticating with a passkey"})
	}
	if d.Rule == RuleDefaultDeny && len(out) == 0 {
		out = append(out, Change{
			Ja: fmt.Sprintf("この利用者に %s への %s を許可する規則を追加すること（規則がありません）", req.Route, req.Action),
			En: fmt.Sprintf("adding a rule that allows %s on %s for this user (no rule matches)", req.Action, req.Route)})
	}
	return out
}

func classFix(r Reason, class string, zones []string, maxAge time.Duration) (Change, bool) {
	label := "機密性" + class
	switch r {
	case ReasonZoneNotAllowed:
		z := strings.Join(zones, ", ")
		return Change{Ja: fmt.Sprintf("%s の許可ゾーン（%s）から接続すること", label, z), En: fmt.Sprintf("connecting from a zone class %s allows (%s)", class, z)}, true
	case ReasonDeviceCertRequired:
		return Change{Ja: fmt.Sprintf("%s には端末証明書のある端末から接続すること", label), En: fmt.Sprintf("connecting with a device certificate (class %s)", class)}, true
	case ReasonDeviceNotRegistered:
		return Change{Ja: "端末を端末台帳に登録（有効化）すること", En: "registering (activating) the device in the device registry"}, true
	case ReasonDeviceNotOwned:
		return Change{Ja: "本人または所属課に割り当てられた端末を使うこと", En: "using a device assigned to the user or their department"}, true
	case ReasonPasskeyRequired:
		return Change{Ja: "パスキーでログインし直すこと", En: "signing in again with a passkey"}, true
	case ReasonUVRequired:
		return Change{Ja: "パスキーで再認証すること（PIN または生体認証による本人確認あり）", En: "re-authenticating with a passkey and user verification (PIN or biometrics)"}, true
	case ReasonAuthTooOld:
		if maxAge > 0 {
			return Change{Ja: fmt.Sprintf("%s 以内に認証し直すこと（%s）", maxAge, label), En: fmt.Sprintf("re-authenticating within %s (class %s)", maxAge, class)}, true
		}
		return Change{Ja: "認証し直すこと", En: "re-authenticating"}, true
	case ReasonNotAuthenticated:
		return Change{Ja: "ログインすること", En: "signing in"}, true
	case ReasonUnknownClass:
		return Change{Ja: fmt.Sprintf("設定の classes に %q を定義すること", class), En: fmt.Sprintf("defining class %q under classes in the configuration", class)}, true
	}
	return Change{}, false
}

// fix is one thing the requester (or IT) could change.
type fix struct {
	ja, en string
	apply  func(r *Request, now time.Time)
}

// counterfactuals decides the request again with one, two or three
// changes applied (source zone, device, fresh authentication, office
// hours) and reports the smallest sets of changes that would allow it.
func (c *compiled) counterfactuals(req *Request, d Decision, now time.Time) []Change {
	if d.Effect == Allow || !req.Authenticated {
		return nil
	}
	var fixes []fix
	for _, z := range c.zones {
		if z == req.Zone {
			continue
		}
		z := z
		fixes = append(fixes, fix{
			ja: fmt.Sprintf("接続元ゾーンを %s にする", z), en: fmt.Sprintf("connecting from zone %s", z),
			apply: func(r *Request, _ time.Time) { r.Zone = z },
		})
	}
	if req.Device == "" || !req.DeviceRegistered || !owned(req) {
		fixes = append(fixes, fix{
			ja: "本人に割り当てた登録済みの端末（端末証明書あり）を使う", en: "using a registered device with a certificate, assigned to the user",
			apply: func(r *Request, _ time.Time) {
				if r.Device == "" {
					r.Device = "(device)"
				}
				r.DeviceRegistered, r.DeviceOwner = true, r.User
			},
		})
	}
	fixes = append(fixes, fix{
		ja: "パスキーで本人確認（PIN・生体認証）付きの再認証をする", en: "re-authenticating with a passkey and user verification",
		apply: func(r *Request, now time.Time) {
			r.AMR = append(append([]string(nil), r.AMR...), "hwk", "uv")
			r.AuthTime = now
		},
	})
	if t, ok := c.nextOfficeMorning(now); ok {
		fixes = append(fixes, fix{
			ja: fmt.Sprintf("開庁日の日中（例: %s）に接続する", t.Format("2006-01-02 15:04")), en: fmt.Sprintf("connecting on a working day (e.g. %s)", t.Format("2006-01-02 15:04")),
			apply: func(r *Request, _ time.Time) { shift := t.Sub(r.Time); r.Time = t; r.AuthTime = r.AuthTime.Add(shift) },
		})
	}

	try := func(set []int) (string, bool) {
		r := *req
		r.AMR = append([]string(nil), req.AMR...)
		when := now
		for _, i := range set {
			fixes[i].apply(&r, when)
		}
		if r.Time.IsZero() {
			r.Time = now
		}
		ec := &evalCtx{req: &r, now: r.Time, local: r.Time.In(c.loc), until: r.Time.Add(time.Hour)}
		d := c.decide(&r, ec, nil)
		return d.Rule, d.Effect == Allow
	}
	var found [][]int
	var rules []string
	n := len(fixes)
	for size := 1; size <= 3 && len(found) == 0; size++ {
		var rec func(start int, set []int)
		rec = func(start int, set []int) {
			if len(set) == size {
				if rule, ok := try(set); ok {
					found = append(found, append([]int(nil), set...))
					rules = append(rules, rule)
				}
				return
			}
			for i := start; i < n; i++ {
				rec(i+1, append(set, i))
			}
		}
		rec(0, nil)
	}
	var out []Change
	for j, set := range found {
		ja := make([]string, len(set))
		en := make([]string, len(set))
		for k, i := range set {
			ja[k], en[k] = fixes[i].ja, fixes[i].en
		}
		out = append(out, Change{
			Ja:   "次のようにすれば許可されます: " + strings.Join(ja, "、"),
			En:   "allowed after " + strings.Join(en, " and "),
			Rule: rules[j],
		})
		if len(out) == 3 {
			break
		}
	}
	return out
}

// nextOfficeMorning is 10:00 local on the next weekday that is not a
// holiday, starting today; ok is false if now is already such a time.
func (c *compiled) nextOfficeMorning(now time.Time) (time.Time, bool) {
	local := now.In(c.loc)
	day := time.Date(local.Year(), local.Month(), local.Day(), 10, 0, 0, 0, c.loc)
	for i := 0; i < 14; i++ {
		d := day.AddDate(0, 0, i)
		if d.Weekday() == time.Saturday || d.Weekday() == time.Sunday || c.holidays[d.Format(time.DateOnly)] {
			continue
		}
		if d.Equal(day) && local.Hour() >= 9 && local.Hour() < 17 {
			return time.Time{}, false // already a working day's office hours
		}
		if !d.Before(local) {
			return d, true
		}
	}
	return time.Time{}, false
}
