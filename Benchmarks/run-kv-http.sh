#!/usr/bin/env bash
# Compares, in one run with wrk: local-key GETs on a kv node, proxied GETs (a node that holds
# nothing and proxies every key), and the same HTTP stack answering a constant body.
# Usage: Benchmarks/run-kv-http.sh [seconds] [connections]   (after: cd Benchmarks && swift build -c release --product kv-bench)
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-10}; connections=${2:-32}
command -v wrk >/dev/null || apt-get install -y wrk
fifo=$(mktemp -u); mkfifo "$fifo"
.build/release/kv-bench servers --records 100000 < "$fifo" > /tmp/kv-bench-servers.out 2>/tmp/kv-bench-servers.err &
exec 3>"$fifo"
until grep -q 'keys=' /tmp/kv-bench-servers.out 2>/dev/null; do sleep 1; done
line=$(grep 'keys=' /tmp/kv-bench-servers.out)
local_addr=$(sed 's/.*local=\([^ ]*\).*/\1/' <<<"$line")
proxying=$(sed 's/.*proxying=\([^ ]*\).*/\1/' <<<"$line")
constant=$(sed 's/.*constant=\([^ ]*\).*/\1/' <<<"$line")
export KEYS=$(sed 's/.*keys=\([^ ]*\).*/\1/' <<<"$line")
for round in 1 2 3; do
  for target in constant:$constant local:$local_addr proxied:$proxying; do
    name=${target%%:*}; addr=${target#*:}
    report=$(wrk -t2 -c"$connections" -d"${seconds}s" -s kv-wrk.lua "http://$addr")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$report")
    # Failed requests are not throughput: a run with any is reported as invalid.
    errors=$(awk '/Non-2xx or 3xx responses/ {print $5} /Socket errors/ {print "socket errors"}' <<<"$report")
    if [ -n "$errors" ]; then echo "round $round $name $rps INVALID: $errors"; else echo "round $round $name $rps"; fi
  done
done
exec 3>&-
wait
rm -f "$fifo"
