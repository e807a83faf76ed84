// Package examples holds ready configurations for cities piloting the
// α′, β and β′ network models of the 総務省 guideline, and a hardened
// systemd unit. It has no code of its own; its test runs every example
// with the real sekisho binary.
//
// # Examples
//
//   - alpha-prime/: α′ (terminals and internal systems in LGWAN, local
//     breakout to named cloud services).
//   - beta/: β (terminals in the internet-connected segment, internal
//     systems in LGWAN).
//   - beta-prime/: β′ (internal systems in the internet-connected segment
//     too).
//   - systemd/: sekisho.service, and sekisho-directory-sync.service with
//     its timer (hourly `users sync --apply` from LDAP).
//
// Each model directory has sekisho.yaml, policy.csv and cases.yaml. The
// certificate files the configuration names are not shipped: the test
// creates them with `sekisho certs` in a copy of the directory, then runs
// `sekisho config check` and `sekisho policy test`, as docs/guide.md tells
// a city to do.
//
// # How the test runs
//
// TestMain builds ./cmd/sekisho once into a temporary directory; every
// test calls that binary, so what is checked is what a city runs.
package examples
