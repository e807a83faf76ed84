package policy

// Reason is why a decision is not a plain allow. The string is the audit
// spelling (the audit record's "reasons" field) and never changes once
// shipped; [Reason.Message] gives the words a user may see.
type Reason string

// Reasons. Their strings are part of the audit format: add, never rename.
const (
	// ReasonNotAuthenticated: no session; log in first.
	ReasonNotAuthenticated Reason = "not_authenticated"
	// ReasonNoMatchingRule: no rule allows this (default deny).
	ReasonNoMatchingRule Reason = "no_matching_rule"
	// ReasonExplicitDeny: a deny rule matched.
	ReasonExplicitDeny Reason = "explicit_deny"
	// ReasonZoneNotAllowed: the source network may not reach this.
	ReasonZoneNotAllowed Reason = "zone_not_allowed"
	// ReasonOutsideHours: outside the hours (or days) a rule allows.
	ReasonOutsideHours Reason = "outside_hours"
	// ReasonStepUpRequired: allowed after re-authentication.
	ReasonStepUpRequired Reason = "stepup_required"
	// ReasonPasskeyRequired: the session was not made with a passkey.
	ReasonPasskeyRequired Reason = "passkey_required"
	// ReasonUVRequired: user verification (PIN, biometrics) is required.
	ReasonUVRequired Reason = "uv_required"
	// ReasonAuthTooOld: the authentication is older than allowed.
	ReasonAuthTooOld Reason = "auth_too_old"
	// ReasonDeviceCertRequired: no valid device certificate on this request.
	ReasonDeviceCertRequired Reason = "device_cert_required"
	// ReasonDeviceNotRegistered: the device is not active in the registry.
	ReasonDeviceNotRegistered Reason = "device_not_registered"
	// ReasonDeviceNotOwned: the device belongs to someone else.
	ReasonDeviceNotOwned Reason = "device_not_owned"
	// ReasonConditionNotMet: another named condition of a rule did not hold.
	ReasonConditionNotMet Reason = "condition_not_met"
	// ReasonUnknownClass: the route's class is not configured (fail closed).
	ReasonUnknownClass Reason = "unknown_class"
)

var reasonMessages = map[Reason][2]string{
	ReasonNotAuthenticated:    {"ログインしてください", "Please sign in."},
	ReasonNoMatchingRule:      {"この操作は許可されていません。必要な場合は情報政策課へ申請してください", "This action is not permitted. Ask the IT department if you need it."},
	ReasonExplicitDeny:        {"この操作は禁止されています", "This action is prohibited."},
	ReasonZoneNotAllowed:      {"庁内ネットワークから接続してください", "Please connect from the office network."},
	ReasonOutsideHours:        {"利用可能な時間帯に接続してください", "Please try again during permitted hours."},
	ReasonStepUpRequired:      {"再認証が必要です", "Please authenticate again."},
	ReasonPasskeyRequired:     {"パスキーでログインしてください", "Please sign in with your passkey."},
	ReasonUVRequired:          {"パスキーで再認証してください（PIN または生体認証）", "Please re-authenticate with your passkey (PIN or biometrics)."},
	ReasonAuthTooOld:          {"パスキーで再認証してください", "Please re-authenticate with your passkey."},
	ReasonDeviceCertRequired:  {"市が配布した端末（端末証明書のある PC）から接続してください", "Please connect from a city-issued PC with its device certificate."},
	ReasonDeviceNotRegistered: {"この端末は登録されていません", "This device is not registered."},
	ReasonDeviceNotOwned:      {"この端末はあなたの所属に割り当てられていません", "This device is not assigned to you or your department."},
	ReasonConditionNotMet:     {"この条件では利用できません", "Not available under these conditions."},
	ReasonUnknownClass:        {"このシステムの設定に誤りがあります。情報政策課へ連絡してください", "This system is misconfigured. Please contact the IT department."},
}

// Message returns words that are safe to show the user on the deny page,
// in lang "ja" (default) or "en". They say what would help, never which
// rule or internal detail decided.
func (r Reason) Message(lang string) string {
	m, ok := reasonMessages[r]
	if !ok {
		if lang == "en" {
			return "Access denied."
		}
		return "アクセスできません"
	}
	if lang == "en" {
		return m[1]
	}
	return m[0]
}

// Reasons returns all known reasons, for documentation and tests.
func Reasons() []Reason {
	return []Reason{
		ReasonNotAuthenticated, ReasonNoMatchingRule, ReasonExplicitDeny,
		ReasonZoneNotAllowed, ReasonOutsideHours, ReasonStepUpRequired,
		ReasonPasskeyRequired, ReasonUVRequired, ReasonAuthTooOld,
		ReasonDeviceCertRequired, ReasonDeviceNotRegistered, ReasonDeviceNotOwned,
		ReasonConditionNotMet, ReasonUnknownClass,
	}
}
