package policy

import "time"

// Request is everything the engine decides on. It is built from plain
// values (the proxy converts its request context into one), so explain,
// the case runner and the gateway decide with the same code.
type Request struct {
	// User is the authenticated user id; Roles and Department come from
	// the store, never from the client. Roles may be written with or
	// without the "role:" prefix.
	User          string   `json:"user"`
	Roles         []string `json:"roles"`
	Department    string   `json:"department"`
	Authenticated bool     `json:"authenticated"`

	// Route facts: route name, asset class, network segment, action
	// (read, write, export, admin) and mode (enforce, shadow; "" is enforce).
	Route   string `json:"route"`
	Class   string `json:"class"`
	Segment string `json:"segment"`
	Action  string `json:"action"`
	Mode    string `json:"mode"`

	// Zone is the source zone ("chonai", "telework", …, "external").
	Zone string `json:"zone"`

	// AMR are the session's authentication methods (hwk, user, uv, mtls)
	// and AuthTime when the user last authenticated.
	AMR      []string  `json:"amr"`
	AuthTime time.Time `json:"auth_time"`

	// Device is the id from a valid client certificate on this request
	// ("" when none). DeviceRegistered: active in the device registry.
	// DeviceOwner and DeviceDepartment: whom the registry says it belongs to.
	Device           string `json:"device"`
	DeviceRegistered bool   `json:"device_registered"`
	DeviceOwner      string `json:"device_owner"`
	DeviceDepartment string `json:"device_department"`

	// Time of the request. Zero: the engine's clock.
	Time time.Time `json:"time"`

	// Method and normalised Path, for conditions that test them.
	Method string `json:"method"`
	Path   string `json:"path"`
}

// Effect is the outcome of a decision.
type Effect int

// Effects. The zero value is Deny so that a forgotten Decision fails closed.
const (
	Deny Effect = iota
	Allow
	StepUp
)

// String is the audit spelling: "deny", "allow", "stepup".
func (e Effect) String() string {
	switch e {
	case Allow:
		return "allow"
	case StepUp:
		return "stepup"
	}
	return "deny"
}

// ParseEffect reads "allow", "deny" or "stepup" (also "step-up").
func ParseEffect(s string) (Effect, bool) {
	switch s {
	case "allow":
		return Allow, true
	case "deny":
		return Deny, true
	case "stepup", "step-up":
		return StepUp, true
	}
	return Deny, false
}

// Decision is the engine's answer for one request.
type Decision struct {
	Effect Effect `json:"effect"`
	// Rule names what decided: "policy.csv:12" (file:line of the deciding
	// rule), "class:3A" (a class requirement overrode the rules), or
	// "default-deny" (no rule matched).
	Rule string `json:"rule"`
	// Reasons, in order of importance; empty for a plain allow.
	Reasons []Reason `json:"reasons"`
	// Enforced is false in shadow mode: the proxy records the decision
	// and forwards anyway.
	Enforced bool `json:"enforced"`
	// AuditSync: the class requires a durable audit record before the
	// request is forwarded.
	AuditSync bool `json:"audit_sync"`
}

// Rule names used when no policy line decided.
const (
	RuleDefaultDeny = "default-deny"
	rulePrefixClass = "class:"
)
