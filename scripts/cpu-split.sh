#!/bin/bash
# CPU time and system calls per request of running processes under wrk
# (docs/performance.md, "where the CPU goes"). Start the targets with
#   go build -o /tmp/benchbin ./scripts/bench && /tmp/benchbin -hold -idle 0 -tls=false -rates none -out -
# then, for nginx's workers and for sekisho (its pid and the Lua file with
# the Host and Cookie headers that -hold prints as a curl command):
#   scripts/cpu-split.sh http://127.0.0.1:PORT/ "$(pgrep -d' ' -f 'nginx: worker')"
#   scripts/cpu-split.sh http://127.0.0.1:PORT/ PID headers.lua
# It runs wrk -t2 -c64 for 10 s and measures the 6 s from the 2nd second:
# user and kernel time from /proc/PID/stat, system calls from perf stat.
set -euo pipefail
url=$1 pids=$2 lua=${3:-}
ticks() { local u=0 s=0 p f; for p in $pids; do read -r -a f < "/proc/$p/stat"; u=$((u + f[13])); s=$((s + f[14])); done; echo "$u $s"; }
out=$(mktemp) perfout=$(mktemp)
trap 'rm -f "$out" "$perfout"' EXIT
if [ -n "$lua" ]; then wrk -t2 -c64 -d10s -s "$lua" "$url" > "$out" & else wrk -t2 -c64 -d10s "$url" > "$out" & fi
sleep 2
read -r u0 s0 < <(ticks)
perf stat -e raw_syscalls:sys_enter -p "$(echo $pids | tr ' ' ',')" -o "$perfout" -- sleep 6 > /dev/null 2>&1
read -r u1 s1 < <(ticks)
wait
rps=$(awk '/Requests\/sec/ {print $2}' "$out")
calls=$(awk '/raw_syscalls/ {gsub(",", "", $1); print $1}' "$perfout")
hz=$(getconf CLK_TCK)
python3 - "$rps" "$u0" "$s0" "$u1" "$s1" "$calls" "$hz" <<'PY'
import sys
rps, u0, s0, u1, s1, calls, hz = sys.argv[1:]
n = float(rps) * 6
us = 1e6 / int(hz)
print("req/s %s  user %.1f us  kernel %.1f us  system calls %.2f  per request" % (
    rps, (int(u1) - int(u0)) * us / n, (int(s1) - int(s0)) * us / n, int(calls) / n))
PY
