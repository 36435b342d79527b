#!/usr/bin/env bash
# kv beside the real sequins, in one run, on the same SequenceFiles and the same ZooKeeper, with the
# same sequins.conf keys: GETs of local keys (one node), of missing keys (404, one node), and GETs
# through node 1 of a two-node cluster with replication 1 (part of them proxied). wrk -t2 drives
# each target for SECONDS, alternating sequins and kv, three rounds; the script reports req/s, p99
# latency, server CPU per request and resident memory, and the kv/sequins ratios.
#
# Usage: Benchmarks/run-kv-vs-sequins.sh <sequins binary> [seconds] [connections] [records]
# Nothing of sequins is built here: pass the path of a sequins binary you built yourself.
set -euo pipefail
sequins=${1:?usage: run-kv-vs-sequins.sh <sequins binary> [seconds] [connections] [records]}
seconds=${2:-10}; connections=${3:-32}; records=${4:-1000000}
sequins=$(readlink -f "$sequins")
cd "$(dirname "$0")"
command -v wrk >/dev/null || apt-get install -y wrk
swift build -c release --product kv-bench >&2
swift build -c release --product kv >&2
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d /tmp/kv-vs-sequins.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; exec 3>&- 2>/dev/null || true; }
trap cleanup EXIT

"$bin/kv-bench" data --records "$records" --files 8 --value-size 100 --directory "$work" >&2
fifo=$work/zk.stdin; mkfifo "$fifo"
"$bin/kv-bench" zookeeper < "$fifo" > "$work/zk.out" 2>"$work/zk.err" &
pids+=($!)
exec 3>"$fifo"
until grep -q connect= "$work/zk.out" 2>/dev/null; do sleep 0.5; done
zk=$(sed 's/connect=//' "$work/zk.out")

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# One sequins.conf, read as is by both programs.
config() { # name cluster shard port replication
  mkdir -p "$work/$1"
  cat > "$work/$1/sequins.conf" <<EOF
source = "$work/source"
bind = "127.0.0.1:$4"
local_store = "$work/$1/store"

[sharding]
enabled = true
cluster_name = "$2"
shard_id = "$3"
replication = $5
time_to_converge = "1s"
proxy_timeout = "1s"
advertised_hostname = "127.0.0.1"

[zk]
servers = ["$zk"]

[test]
allow_local_cluster = true
EOF
}
start() { # name binary
  (cd "$work/$1" && exec "$2" --config "$work/$1/sequins.conf" > "$work/$1/log" 2>&1) &
  pids+=($!); echo $! > "$work/$1/pid"
}
wait_serving() { # port
  for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/bench/key-0")" = 200 ] && return 0
    sleep 0.5
  done
  echo "nothing served on port $1" >&2; exit 1
}

declare -A ports
for system in sequins kv; do
  binary=$sequins; [ "$system" = kv ] && binary=$bin/kv
  p=$(port); ports[$system-single]=$p; config "$system-single" "$system-single" 1 "$p" 1; start "$system-single" "$binary"
  p=$(port); ports[$system-pair1]=$p; config "$system-pair1" "$system-pair" 1 "$p" 1; start "$system-pair1" "$binary"
  p=$(port); ports[$system-pair2]=$p; config "$system-pair2" "$system-pair" 2 "$p" 1; start "$system-pair2" "$binary"
done
for name in "${!ports[@]}"; do wait_serving "${ports[$name]}"; done
sleep 3  # both pairs: every partition advertised and seen by the other node

proxied_share() { # port: the share of 200 keys node 1 answers through its peer
  local count=0
  for i in $(seq 0 199); do
    curl -s -D - -o /dev/null "http://127.0.0.1:$1/bench/key-$i" | grep -qi '^X-Sequins-Proxied-To' && count=$((count + 1))
  done
  echo "$count/200"
}
echo "proxied share of node 1's answers: sequins $(proxied_share "${ports[sequins-pair1]}"), kv $(proxied_share "${ports[kv-pair1]}")"

cpu_ticks() { local total=0; for name in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$(cat "$work/$name/pid")/stat"))); done; echo $total; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$(cat "$work/$1/pid")/status"; }
hz=$(getconf CLK_TCK)

echo "path round system req/s p50_ms p99_ms cpu_us_per_request"
for round in 1 2 3; do
  for path in local missing proxied; do
    for system in sequins kv; do
      case $path in
        local) target=$system-single; keys=$work/keys.txt; measured=($system-single) ;;
        missing) target=$system-single; keys=$work/missing.txt; measured=($system-single) ;;
        proxied) target=$system-pair1; keys=$work/keys.txt; measured=($system-pair1 $system-pair2) ;;
      esac
      before=$(cpu_ticks "${measured[@]}")
      report=$(KEYS=$keys wrk -t2 -c"$connections" -d"${seconds}s" --latency -s kv-wrk.lua "http://127.0.0.1:${ports[$target]}")
      after=$(cpu_ticks "${measured[@]}")
      rps=$(awk '/Requests\/sec/ {print $2}' <<<"$report")
      requests=$(awk '/requests in/ {print $1}' <<<"$report")
      to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/, "", v); print v / 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v); print v } else { sub(/s/, "", v); print v * 1000 } }'; }
      p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$report")")
      p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$report")")
      cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" 'BEGIN { printf "%.1f", t / hz / n * 1e6 }')
      # Failed requests are not throughput; a 404 target expects only 404s.
      bad=$(awk '/Socket errors/ {print "socket errors"}' <<<"$report")
      if [ "$path" != missing ]; then bad+=$(awk '/Non-2xx or 3xx responses/ {print " " $5 " non-2xx"}' <<<"$report"); fi
      echo "$path $round $system $rps $p50 $p99 $cpu${bad:+ INVALID:$bad}"
    done
  done
done
echo "resident memory (MB) of the single nodes after the rounds: sequins $(rss_mb sequins-single), kv $(rss_mb kv-single)"
echo "(logs and data in $work)"
