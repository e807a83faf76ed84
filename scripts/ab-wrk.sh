#!/bin/bash
# Two running gateways compared with wrk in ABBA order (docs/performance.md,
# session 12): N pairs of 5 s runs, A then B in odd pairs and B then A in
# even ones, so that neither gains from running first while the shared
# machine's speed drifts. Prints each pair's B/A throughput ratio, their
# median and mean, and in how many pairs B was ahead.
# Hold two revisions side by side, e.g.
#   git archive OLDREV | tar -x -C /tmp/old && (cd /tmp/old && go build -o /tmp/benchA ./scripts/bench)
#   (cd /tmp/old && /tmp/benchA -hold -idle 0 -tls=false -rates none -out - > /tmp/holdA.log) &
#   go build -o /tmp/benchB ./scripts/bench && /tmp/benchB -hold -idle 0 -tls=false -rates none -out - > /tmp/holdB.log &
# and write each one's Host and Cookie (the curl line of its log) into a Lua
# file as scripts/cpu-split.sh wants. Usage:
#   scripts/ab-wrk.sh URL_A LUA_A URL_B LUA_B [N]   (default N 16)
set -euo pipefail
ua=$1 la=$2 ub=$3 lb=$4 n=${5:-16}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rps() { wrk -t2 -c64 -d5s -s "$2" "$1" | awk '/Requests\/sec/ {print $2}'; }
for i in $(seq 1 "$n"); do
	if [ $((i % 2)) = 1 ]; then
		a=$(rps "$ua" "$la"); b=$(rps "$ub" "$lb")
	else
		b=$(rps "$ub" "$lb"); a=$(rps "$ua" "$la")
	fi
	echo "$a $b" >> "$out"
done
python3 - "$out" <<'PY'
import statistics, sys
pairs = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
q = [b / a for a, b in pairs]
print("B/A per pair:", " ".join("%.2f" % x for x in q))
print("median %.3f  mean %.3f  B ahead in %d of %d  (A median %.0f req/s, B median %.0f req/s)" % (
    statistics.median(q), statistics.mean(q), sum(x > 1 for x in q), len(q),
    statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs)))
PY
