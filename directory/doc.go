// Package directory keeps sekisho's staff accounts in step with the
// personnel system (人事異動): every April a city moves a large share of
// its staff between departments, and roles must follow on the same day.
//
// # Sources
//
// [ParseCSV] reads the personnel system's export (UTF-8 with or without
// BOM, or Shift_JIS): a header row naming the columns in Japanese or
// English (職員番号/id, 氏名/name, 所属/department, ロール/roles,
// 状態/status, 発令日/effective), then one row per person. Every mistake
// is reported with its line and column, all at once, and a file with any
// mistake is never applied. Roles must be known ([KnownRoles]: the
// configuration's directory.roles plus the roles the policy file names).
// [ReadLDAP] reads the same facts from LDAP or Active Directory: users
// under a base DN, their department attribute, and roles from the groups
// they are members of: directly, or with directory.ldap.nested_groups
// also through groups nested in them (cycles end; bounded by
// [MaxGroupNesting] and [MaxGroupMembers]).
//
// # Plan and apply
//
// [Plan] compares a [Source] with the store and returns a [ChangeSet]:
// users to add, change (display name, department, roles: before → after),
// disable and enable. A full import disables users it does not list
// (never deletes them), except those in directory.keep. [Apply] makes all
// of it in one store transaction (store.Directory.ApplyUsers), so a
// failure applies nothing; disabled users' sessions are revoked in the
// same transaction and end on every gateway within a second. Roles and
// department are read from the store on every request, so the next
// request already sees the change. One admin audit record is written per
// change (user_add, user_change, user_disable, user_enable,
// user_schedule) with every field before → after.
//
// # Scheduled changes
//
// A row whose 発令日 is in the future is stored as a pending change and
// applied when the day begins in Asia/Tokyo (directory.timezone) by the
// [Scheduler] that each running gateway starts. Several replicas may run
// it: a pending change is consumed in the same transaction that applies
// it, so only one replica applies (and audits) it.
package directory
