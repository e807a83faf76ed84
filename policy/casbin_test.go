package policy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
)

// TestIndexAgreesWithCasbin is the contract between the fast path and the
// Casbin model: for random policies and requests, "some allow rule matches
// and no deny rule matches" computed by Casbin's own Enforce over the
// shipped model equals the engine's decision (classes and conditions are
// kept out of the way).
func TestIndexAgreesWithCasbin(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	objs := []string{"*", "route:zaimu", "route:groupware", "route:jinji", "class:2", "class:3B", "segment:lgwan", "segment:internet"}
	acts := []string{"read", "write", "export", "admin", "*"}
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	subject := func() string {
		switch rng.IntN(4) {
		case 0:
			return fmt.Sprintf("u%d", rng.IntN(12))
		case 1:
			return fmt.Sprintf("dept:d%d", rng.IntN(3))
		case 2:
			return "*"
		}
		return fmt.Sprintf("role:r%d", rng.IntN(8))
	}
	for round := 0; round < 15; round++ {
		var b strings.Builder
		for i := 0; i < 10; i++ { // acyclic: roles inherit only higher-numbered roles
			a, p := rng.IntN(8), rng.IntN(8)
			if a < p {
				fmt.Fprintf(&b, "group, role:r%d, role:r%d\n", a, p)
			}
			fmt.Fprintf(&b, "group, u%d, role:r%d\n", rng.IntN(12), rng.IntN(8))
		}
		for i := 0; i < 25; i++ {
			eff := "allow"
			if rng.IntN(4) == 0 {
				eff = "deny"
			}
			fmt.Fprintf(&b, "%s, %s, %s, %s\n", eff, subject(), pick(objs), pick(acts))
		}
		text := b.String()
		e, _ := newEngine(t, text)
		allowE, denyE := casbinWithEffect(t, e, "allow"), casbinWithEffect(t, e, "deny")

		for i := 0; i < 200; i++ {
			r := req(func(r *Request) {
				r.User = fmt.Sprintf("u%d", rng.IntN(12))
				r.Roles = nil
				if rng.IntN(2) == 0 {
					r.Roles = []string{fmt.Sprintf("r%d", rng.IntN(8))}
				}
				r.Department = fmt.Sprintf("d%d", rng.IntN(3))
				r.Route = pick([]string{"zaimu", "groupware", "jinji"})
				r.Class = "2"
				r.Segment = pick([]string{"lgwan", "internet"})
				r.Action = pick(acts[:4])
			})
			subs := []string{r.User, "dept:" + r.Department}
			for _, x := range r.Roles {
				subs = append(subs, "role:"+x)
			}
			objects := []string{"route:" + r.Route, "class:" + r.Class, "segment:" + r.Segment}
			var anyAllow, anyDeny bool
			for _, s := range subs {
				for _, o := range objects {
					if ok, err := allowE.Enforce(s, o, r.Action); err != nil {
						t.Fatal(err)
					} else if ok {
						anyAllow = true
					}
					if ok, err := denyE.Enforce(s, o, r.Action); err != nil {
						t.Fatal(err)
					} else if ok {
						anyDeny = true
					}
				}
			}
			want := Deny
			if anyAllow && !anyDeny {
				want = Allow
			}
			if got := e.Decide(r); got.Effect != want {
				t.Fatalf("round %d: %+v\nengine %s (%s), Casbin allow=%t deny=%t\npolicy:\n%s", round, r, got.Effect, got.Rule, anyAllow, anyDeny, text)
			}
		}
	}
}

// casbinWithEffect builds a Casbin enforcer over the engine's policy with
// the shipped model, its effect replaced by "some rule of this effect matches".
func casbinWithEffect(t *testing.T, e *Engine, eft string) *casbin.Enforcer {
	t.Helper()
	text := strings.Replace(modelText,
		"e = some(where (p.eft == allow)) && !some(where (p.eft == deny))",
		"e = some(where (p.eft == allow))", 1)
	if text == modelText {
		t.Fatal("model effect line not found")
	}
	m, err := model.NewModelFromString(text)
	if err != nil {
		t.Fatal(err)
	}
	f := *e.File()
	var rules []*Rule
	for _, r := range f.Rules {
		if r.Effect.String() == eft {
			cp := *r
			cp.Effect = Allow // "allow" is what the replaced effect looks for
			rules = append(rules, &cp)
		}
	}
	f.Rules = rules
	enf, err := casbin.NewEnforcer(m, &fileAdapter{f: &f})
	if err != nil {
		t.Fatal(err)
	}
	return enf
}
