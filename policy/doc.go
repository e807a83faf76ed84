// Package policy decides every request by information-asset class
// (情報資産単位でのアクセス制御), the condition the 総務省 guideline sets
// for the β and β′ network models.
//
// # The policy file
//
// City IT staff write and read the policy: a CSV file, one rule a line,
// "#" comments anywhere. A rule says who may do what to which asset, under
// which named conditions:
//
//	condition, 庁内,     zone=chonai
//	condition, 新しいUV, amr=hwk+uv max_auth_age=1h
//	allow,  *,         class:2,     read|write, 庁内
//	stepup, role:財務, route:zaimu, export,     庁内 & 新しいUV
//	deny,   *,         segment:mynumber, *,     !マイナンバー系
//	group,  role:財務管理者, role:財務
//	holiday, 2026-01-01, 元日
//
// Subjects are user ids, roles ("role:財務"), departments ("dept:財務課"),
// "*" (any signed-in user) or "anonymous"; objects are routes, classes
// ("class:3B"), segments or "*"; actions are read, write, export, admin or
// "*". [Parse] reads the file and names file and line for every mistake.
// docs/policy.md is the full reference, in Japanese and English.
//
// # How a request is decided
//
// [Engine.Decide] takes a [Request] built from plain values (it imports
// nothing of net/http, the proxy or authn) and returns a [Decision]:
//
//  1. Casbin's role manager (the shipped model, [ModelText]) expands the
//     user, roles and department into every subject they inherit; rules
//     are matched on subject, object and action through an index built
//     from the same lines Casbin holds (a test checks that it agrees with
//     Casbin's own Enforce).
//  2. The named conditions of each matched rule are evaluated in Go: zone,
//     office hours (in Asia/Tokyo by default, ranges may cross midnight),
//     days, holidays, authentication methods and age, device, path.
//  3. deny overrides allow; a stepup rule whose other conditions hold but
//     whose authentication tests fail asks for re-authentication
//     ([StepUp]); nothing matching is a deny ("default-deny").
//  4. The class requirements from the configuration (factors,
//     max_auth_age, zones, audit: sync) are applied on top, so a permissive
//     rule can never weaken a class: a missing device certificate or a zone
//     outside the class is a deny, missing user verification or an old
//     authentication a step-up.
//
// Every non-allow carries typed [Reason] values; [Reason.Message] gives
// the safe words for the deny page. [Engine.Explain] shows the matched
// rules and what would change the outcome.
//
// # Speed and reloads
//
// Decisions are cached in a bounded LRU keyed on every input that matters;
// an entry expires at the next minute (office hours) or when an
// authentication-age test would flip. [Engine.Reload] validates the new
// file first and swaps the whole compiled policy, with a new cache,
// through an atomic pointer; a bad file keeps the old policy, is logged
// and counted. [Engine.Watch] reloads on file changes.
//
// # Profiles and cases
//
// [Profile] returns a commented policy for each network model (alpha,
// alpha-prime, beta, beta-prime); [ProfileCases] its table of expected
// decisions, which [Cases.Run] checks (the "sekisho policy test" verb).
package policy
