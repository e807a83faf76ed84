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

// Change is one thing that would change the decision, in Japanese and English.
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
	x.Changes = c.changes(req, d, tr)
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
