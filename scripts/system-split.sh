#!/bin/bash
# Where the machine's CPU goes per request under wrk, process by process:
# the proxy, the bench's upstream, wrk itself, and the time no process
# used (docs/performance.md, "the upstream's share"). With the targets of
#   go build -o /tmp/benchbin ./scripts/bench && /tmp/benchbin -hold -idle 0 -tls=false -rates none -out -
# running:
#   scripts/system-split.sh http://127.0.0.1:PORT/ "$(pgrep -d' ' -f 'nginx: worker')"
#   scripts/system-split.sh http://127.0.0.1:PORT/ PID headers.lua     (sekisho)
#   scripts/system-split.sh http://UPSTREAM/ "" scripts/upstream-headers.lua
# The last form sends the upstream, directly, the headers sekisho adds
# (scripts/upstream-headers.lua): what they cost the upstream.
# It runs wrk -t2 -c64 for 10 s and measures the 6 s from the 2nd second,
# from /proc (user + kernel time of each process; idle from /proc/stat).
set -euo pipefail
url=$1 tp=$2 lua=${3:-}
up=$(pgrep -f "benchbin -role upstream")
ticks() { local s=0 p f; for p in $1; do read -r -a f < "/proc/$p/stat"; s=$((s + f[13] + f[14])); done; echo $s; }
idle() { awk '/^cpu / {print $5 + $6}' /proc/stat; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if [ -n "$lua" ]; then wrk -t2 -c64 -d10s -s "$lua" "$url" > "$out" & else wrk -t2 -c64 -d10s "$url" > "$out" & fi
sleep 0.5
wp=$(pgrep -x wrk)
sleep 1.5
a1=$(ticks "$tp") b1=$(ticks "$up") c1=$(ticks "$wp") i1=$(idle)
sleep 6
a2=$(ticks "$tp") b2=$(ticks "$up") c2=$(ticks "$wp") i2=$(idle)
wait
rps=$(awk '/Requests\/sec/ {print $2}' "$out")
python3 - "$rps" "$(getconf CLK_TCK)" $((a2 - a1)) $((b2 - b1)) $((c2 - c1)) $((i2 - i1)) <<'PY'
import sys
rps, hz = float(sys.argv[1]), int(sys.argv[2])
f = 1e6 / hz / (rps * 6)
proxy, upstream, wrk, idle = (int(x) * f for x in sys.argv[3:7])
print("req/s %.0f  µs per request: proxy %.1f  upstream %.1f  wrk %.1f  idle %.1f" % (rps, proxy, upstream, wrk, idle))
PY
