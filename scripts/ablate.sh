#!/bin/bash
# What each part of the gateway costs, in instructions per request
# (docs/performance.md, session 11): the instruction count of
# `go run ./scripts/bench -instructions N` for sekisho as it is, and for
# copies of the source with one part switched off by an edit:
#   noaudit    Gateway.record returns at once (no access record)
#   nometrics  Metrics.observe returns at once
#   nopolicy   every request allowed without asking the policy
#   nogw       all three, and no authentication: the forwarding alone
# The edits are made in a temporary copy of the working tree, never in
# the tree itself. Usage: scripts/ablate.sh [N] (default 3000).
set -euo pipefail
n=${1:-3000}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for name in base noaudit nometrics nopolicy nogw; do
	rm -rf "$tmp/src"
	mkdir "$tmp/src"
	(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tmp/src")
	python3 - "$name" "$tmp/src" <<'PY'
import sys
name, src = sys.argv[1], sys.argv[2]
g, m = src + '/proxy/gateway.go', src + '/proxy/metrics.go'
gs, ms = open(g).read(), open(m).read()
def rep(s, a, b):
    if a not in s:
        sys.exit('ablate: the source changed; update scripts/ablate.sh: ' + a.splitlines()[0])
    return s.replace(a, b, 1)
ret = '\tif true {\n\t\treturn\n\t}\n'
if name in ('noaudit', 'nogw'):
    sig = 'func (g *Gateway) record(ctx context.Context, e *Entry, durable bool) {\n'
    gs = rep(gs, sig, sig + ret)
if name in ('nometrics', 'nogw'):
    sig = 'func (m *Metrics) observe(info *reqctx.Info, rw *recordingWriter, end time.Time) {\n'
    ms = rep(ms, sig, sig + ret)
if name in ('nopolicy', 'nogw'):
    gs = rep(gs, '\tv := g.decide(ctx, info, t)\n', '\tv := Verdict{Effect: "allow", Enforced: true}\n')
if name == 'nogw':
    gs = rep(gs, '\tif !t.route.cfg.Public {\n\t\tif g.authn == nil {', '\tif false {\n\t\tif g.authn == nil {')
open(g, 'w').write(gs)
open(m, 'w').write(ms)
PY
	count=$(cd "$tmp/src" && go run ./scripts/bench -instructions "$n" 2>/dev/null | awk -F'|' '/sekisho \(class 2, defaults\)/ {gsub(/ /, "", $3); print $3}')
	echo "$name ${count:-failed}"
done
