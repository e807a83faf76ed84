#!/bin/bash
# Where the whole machine's CPU goes per request under wrk
# (docs/performance.md, session 13): the proxy's, the upstream's and wrk's
# own user and kernel time from /proc/PID/stat, and the machine's user,
# kernel, idle and softirq time from /proc/stat, each divided by the
# requests of the same 6 s (from the 2nd second of a 9 s wrk -t2 -c64 run).
# Start the targets with
#   go build -o /tmp/benchbin ./scripts/bench && /tmp/benchbin -hold -idle 0 -tls=false -rates none -out -
# then, with the upstream's pid (pgrep -f 'role upstream'):
#   scripts/system-split.sh http://127.0.0.1:NGINX/ "$(pgrep -d' ' -f 'nginx: worker')" UPSTREAM_PID
#   scripts/system-split.sh http://127.0.0.1:SEKISHO/ SEKISHO_PID UPSTREAM_PID headers.lua
# (headers.lua: the Host and Cookie headers of the curl command -hold prints,
# as wrk.headers["Host"]="..." lines).
# "other" is the machine's busy time that none of the three accounts for
# (kernel threads, the audit trail's writeback, other processes).
set -euo pipefail
url=$1 pids=$2 up=$3 lua=${4:-}
ticks() { local u=0 s=0 p f; for p in $1; do read -r -a f < "/proc/$p/stat"; u=$((u + f[13])); s=$((s + f[14])); done; echo "$u $s"; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if [ -n "$lua" ]; then wrk -t2 -c64 -d9s -s "$lua" "$url" > "$out" & else wrk -t2 -c64 -d9s "$url" > "$out" & fi
wpid=$!
sleep 2
wp=$(pgrep -P "$wpid" -x wrk || pgrep -n -x wrk)
read -r pu0 ps0 < <(ticks "$pids"); read -r uu0 us0 < <(ticks "$up"); read -r wu0 ws0 < <(ticks "$wp")
read -r _ a0 b0 c0 d0 e0 f0 g0 _ < /proc/stat
sleep 6
read -r pu1 ps1 < <(ticks "$pids"); read -r uu1 us1 < <(ticks "$up"); read -r wu1 ws1 < <(ticks "$wp")
read -r _ a1 b1 c1 d1 e1 f1 g1 _ < /proc/stat
wait "$wpid"
rps=$(awk '/Requests\/sec/ {print $2}' "$out")
python3 - "$rps" "$(getconf CLK_TCK)" $pu0 $ps0 $pu1 $ps1 $uu0 $us0 $uu1 $us1 $wu0 $ws0 $wu1 $ws1 $a0 $b0 $c0 $d0 $e0 $f0 $g0 $a1 $b1 $c1 $d1 $e1 $f1 $g1 <<'PY'
import sys
v = [float(x) for x in sys.argv[1:]]
rps, hz = v[0], v[1]
us = 1e6 / hz / (rps * 6)  # microseconds per request of one tick
p = [(v[4] - v[2]) * us, (v[5] - v[3]) * us]
u = [(v[8] - v[6]) * us, (v[9] - v[7]) * us]
w = [(v[12] - v[10]) * us, (v[13] - v[11]) * us]
a, b = v[14:21], v[21:28]
d = [(b[i] - a[i]) * us for i in range(7)]  # user nice system idle iowait irq softirq
busy = d[0] + d[1] + d[2] + d[5] + d[6]
print("req/s %.0f  µs per request: proxy %.1f+%.1f  upstream %.1f+%.1f  wrk %.1f+%.1f  (user+kernel)  machine: busy %.1f (softirq %.1f) idle %.1f  other %.1f" % (
    rps, p[0], p[1], u[0], u[1], w[0], w[1], busy, d[6], d[3], busy - sum(p) - sum(u) - sum(w)))
PY
