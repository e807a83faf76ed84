package policy

import (
	"slices"
	"strings"
	"time"
)

// evalCtx is one request being decided.
type evalCtx struct {
	req   *Request
	now   time.Time // the request's time
	local time.Time // now in the policy's time zone
	// until is when a cached copy of this decision stops being valid:
	// the next minute (office hours are minute-grained) or the moment an
	// authentication-age test that held would fail.
	until time.Time
}

func (ec *evalCtx) expireAt(t time.Time) {
	if t.Before(ec.until) {
		ec.until = t
	}
}

// failure is a test that did not hold.
type failure struct {
	cond   string // condition name ("!name" for a negated one)
	test   string // the test as written; "" for a negated condition
	reason Reason
	auth   bool // re-authentication can fix it (step-up)
}

// ruleResult is what one matched rule did, for Explain.
type ruleResult struct {
	rule     *Rule
	applied  bool // its conditions held (for stepup: its gates held)
	stepup   bool // stepup rule whose gates held but auth tests did not
	failures []failure
}

type trace struct {
	subjects []string
	objects  []string
	rules    []ruleResult
	class    []Reason // class requirement failures
}

// subjects returns who the request is: "*" or "anonymous", the user, the
// roles and the department, plus everything they inherit.
func (c *compiled) subjects(req *Request, buf []string) []string {
	if !req.Authenticated {
		return append(buf, "anonymous")
	}
	out := append(buf, "*")
	add := func(s string) {
		if s == "" || slices.Contains(out, s) {
			return
		}
		out = append(out, s)
		for _, a := range c.ancestors[s] {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	// A user id is a subject only if it cannot be mistaken for a role,
	// a department, "*" or "anonymous".
	if validName(req.User) && req.User != "anonymous" {
		add(req.User)
	}
	for _, r := range req.Roles {
		if strings.HasPrefix(r, "role:") {
			add(r)
		} else {
			add("role:" + r)
		}
	}
	if req.Department != "" {
		add("dept:" + req.Department)
	}
	return out
}

func objects(req *Request, buf []string) []string {
	out := append(buf, "*")
	if req.Route != "" {
		out = append(out, "route:"+req.Route)
	}
	if req.Class != "" {
		out = append(out, "class:"+req.Class)
	}
	if req.Segment != "" {
		out = append(out, "segment:"+req.Segment)
	}
	return out
}

// candidates returns the rules whose subject, object and action match,
// in file order.
func (c *compiled) candidates(subs, objs []string, action string, buf []*Rule) []*Rule {
	out := buf
	for _, s := range subs {
		bySub := c.index[s]
		if bySub == nil {
			continue
		}
		for _, o := range objs {
			for _, r := range bySub[o] {
				if !(slices.Contains(r.Actions, action) || slices.Contains(r.Actions, "*")) {
					continue
				}
				if !slices.Contains(out, r) {
					out = append(out, r)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b *Rule) int { return a.Line - b.Line })
	return out
}

// evalRule checks a matched rule's conditions.
func (c *compiled) evalRule(r *Rule, ec *evalCtx) ruleResult {
	res := ruleResult{rule: r}
	for _, ref := range r.Conds {
		cd := c.conds[ref.Name]
		if ref.Negate {
			held := true
			for i := range cd.Tests {
				if ok, _ := c.test(&cd.Tests[i], ec); !ok {
					held = false
					break
				}
			}
			if held {
				res.failures = append(res.failures, failure{cond: "!" + ref.Name, reason: ReasonConditionNotMet})
			}
			continue
		}
		for i := range cd.Tests {
			t := &cd.Tests[i]
			if ok, reason := c.test(t, ec); !ok {
				res.failures = append(res.failures, failure{cond: ref.Name, test: t.Text, reason: reason, auth: r.Effect == StepUp && t.isAuthTest()})
			}
		}
	}
	gates := true
	for _, f := range res.failures {
		if !f.auth {
			gates = false
		}
	}
	res.applied = gates && len(res.failures) == 0
	res.stepup = gates && len(res.failures) > 0
	return res
}

// test evaluates one test; when it fails it says why.
func (c *compiled) test(t *Test, ec *evalCtx) (bool, Reason) {
	req := ec.req
	switch t.Key {
	case testZone:
		return slices.Contains(t.Values, req.Zone), ReasonZoneNotAllowed
	case testRoute:
		return slices.Contains(t.Values, req.Route), ReasonConditionNotMet
	case testClass:
		return slices.Contains(t.Values, req.Class), ReasonConditionNotMet
	case testSegment:
		return slices.Contains(t.Values, req.Segment), ReasonConditionNotMet
	case testAction:
		return slices.Contains(t.Values, req.Action), ReasonConditionNotMet
	case testMethod:
		return slices.Contains(t.Values, strings.ToUpper(req.Method)), ReasonConditionNotMet
	case testPath:
		for _, p := range t.Values {
			if strings.HasPrefix(req.Path, p) {
				return true, ""
			}
		}
		return false, ReasonConditionNotMet
	case testHours:
		m := ec.local.Hour()*60 + ec.local.Minute()
		if t.from < t.to {
			return m >= t.from && m < t.to, ReasonOutsideHours
		}
		return m >= t.from || m < t.to, ReasonOutsideHours
	case testDays:
		return t.days[ec.local.Weekday()], ReasonOutsideHours
	case testHoliday:
		return c.holidays[ec.local.Format(time.DateOnly)] == t.yes, ReasonOutsideHours
	case testAMR:
		for _, v := range t.Values {
			if !slices.Contains(req.AMR, v) {
				switch {
				case v == "hwk":
					return false, ReasonPasskeyRequired
				case v == "uv":
					return false, ReasonUVRequired
				}
				return false, ReasonStepUpRequired
			}
		}
		return true, ""
	case testMaxAuthAge:
		if req.AuthTime.IsZero() || ec.now.Sub(req.AuthTime) > t.age {
			return false, ReasonAuthTooOld
		}
		ec.expireAt(req.AuthTime.Add(t.age + 1))
		return true, ""
	case testDevice:
		for _, v := range t.Values {
			if req.Device == "" {
				return false, ReasonDeviceCertRequired
			}
			switch v {
			case "registered":
				if !req.DeviceRegistered {
					return false, ReasonDeviceNotRegistered
				}
			case "owned":
				if !owned(req) {
					return false, ReasonDeviceNotOwned
				}
			}
		}
		return true, ""
	}
	return false, ReasonConditionNotMet
}

func owned(req *Request) bool {
	return (req.DeviceOwner != "" && req.DeviceOwner == req.User) ||
		(req.DeviceDepartment != "" && req.DeviceDepartment == req.Department)
}

func addReason(list []Reason, r Reason) []Reason {
	if slices.Contains(list, r) {
		return list
	}
	return append(list, r)
}

// decide is the whole decision, without the cache. tr, when not nil,
// collects what Explain shows.
func (c *compiled) decide(req *Request, ec *evalCtx, tr *trace) Decision {
	var sbuf, obuf [16]string
	var rbuf [16]*Rule
	subs := c.subjects(req, sbuf[:0])
	objs := objects(req, obuf[:0])
	cands := c.candidates(subs, objs, req.Action, rbuf[:0])
	if tr != nil {
		tr.subjects = slices.Clone(subs)
		tr.objects = slices.Clone(objs)
	}

	var denyRule, allowRule, stepRule *ruleResult
	var nearest []ruleResult // allow/stepup rules that did not apply
	for _, r := range cands {
		res := c.evalRule(r, ec)
		if tr != nil {
			tr.rules = append(tr.rules, res)
		}
		switch {
		case r.Effect == Deny && res.applied:
			if denyRule == nil {
				denyRule = &res
			}
		case r.Effect == Deny:
		case res.applied:
			if allowRule == nil {
				allowRule = &res
			}
		case res.stepup:
			if stepRule == nil {
				stepRule = &res
			}
		default:
			nearest = append(nearest, res)
		}
	}

	d := Decision{Enforced: req.Mode != "shadow"}
	cls, clsOK := c.classes[req.Class]
	if clsOK {
		d.AuditSync = cls.Audit == "sync"
	}
	switch {
	case denyRule != nil:
		d.Effect, d.Rule, d.Reasons = Deny, denyRule.rule.pos, []Reason{ReasonExplicitDeny}
		return d
	case allowRule != nil:
		d.Effect, d.Rule = Allow, allowRule.rule.pos
	case stepRule != nil:
		d.Effect, d.Rule = StepUp, stepRule.rule.pos
		d.Reasons = []Reason{ReasonStepUpRequired}
		for _, f := range stepRule.failures {
			d.Reasons = addReason(d.Reasons, f.reason)
		}
	default:
		d.Effect, d.Rule = Deny, RuleDefaultDeny
		if !req.Authenticated {
			d.Reasons = []Reason{ReasonNotAuthenticated}
			return d
		}
		// Say what the closest rules lacked: the fewest failed tests.
		best := -1
		for _, n := range nearest {
			if best < 0 || len(n.failures) < best {
				best = len(n.failures)
			}
		}
		for _, n := range nearest {
			if len(n.failures) != best {
				continue
			}
			for _, f := range n.failures {
				d.Reasons = addReason(d.Reasons, f.reason)
			}
		}
		if len(d.Reasons) == 0 {
			d.Reasons = []Reason{ReasonNoMatchingRule}
		}
		return d
	}

	// Class requirements apply on top of the rules: a permissive rule
	// never weakens a class.
	rule := rulePrefixClass + req.Class
	if !clsOK {
		d.Effect, d.Rule, d.Reasons = Deny, rule, []Reason{ReasonUnknownClass}
		return d
	}
	var deny, step []Reason
	if len(cls.Zones) > 0 && !slices.Contains(cls.Zones, req.Zone) {
		deny = addReason(deny, ReasonZoneNotAllowed)
	}
	needsAuth := len(cls.Require) > 0 || cls.MaxAuthAge > 0
	if !req.Authenticated && needsAuth {
		deny = addReason(deny, ReasonNotAuthenticated)
	}
	for _, f := range cls.Require {
		switch f {
		case FactorDeviceCert, FactorRegisteredDevice, FactorDeviceOwned:
			switch {
			case req.Device == "":
				deny = addReason(deny, ReasonDeviceCertRequired)
			case f == FactorRegisteredDevice && !req.DeviceRegistered:
				deny = addReason(deny, ReasonDeviceNotRegistered)
			case f == FactorDeviceOwned && !owned(req):
				deny = addReason(deny, ReasonDeviceNotOwned)
			}
		case FactorPasskey, FactorPasskeyUV:
			if !slices.Contains(req.AMR, "hwk") {
				step = addReason(step, ReasonPasskeyRequired)
			} else if f == FactorPasskeyUV && !slices.Contains(req.AMR, "uv") {
				step = addReason(step, ReasonUVRequired)
			}
		}
	}
	if req.Authenticated {
		maxAge := cls.MaxAuthAge
		if maxAge == 0 {
			maxAge = c.lifetime
		}
		if maxAge > 0 {
			if req.AuthTime.IsZero() || ec.now.Sub(req.AuthTime) > maxAge {
				step = addReason(step, ReasonAuthTooOld)
			} else {
				ec.expireAt(req.AuthTime.Add(maxAge + 1))
			}
		}
	}
	if tr != nil {
		tr.class = append(append(tr.class, deny...), step...)
	}
	switch {
	case len(deny) > 0:
		d.Effect, d.Rule, d.Reasons = Deny, rule, deny
	case len(step) > 0:
		if d.Effect == Allow {
			d.Rule = rule
			d.Reasons = []Reason{ReasonStepUpRequired}
		}
		d.Effect = StepUp
		for _, r := range step {
			d.Reasons = addReason(d.Reasons, r)
		}
	}
	return d
}
