#!/usr/bin/env bash
# kv beside the real sequins, in one run, on the same SequenceFiles and the same ZooKeeper, with the
# same sequins.conf keys:
# - throughput with a warm page cache: GETs of local keys (one node), of missing keys (404, one
#   node), and GETs through node 1 of a two-node cluster with replication 1 (part of them
#   proxied). wrk -t2 drives each target for SECONDS, alternating sequins and kv, ROUNDS rounds;
#   req/s, latency, server CPU per request;
# - memory of the single nodes after loading and after the rounds: resident, anonymous (private,
#   from /proc/<pid>/smaps_rollup) and file-backed (mapped store files the kernel can drop);
# - a version switch (version 2 = the same files, SIGHUP): the peak resident and anonymous memory
#   sampled every 50 ms until the node serves version 2, against the steady state before it;
# - a restart of each single node with its store on disk: time from start to its first 200,
#   with a warm page cache (three times, alternating), then with a cold one (caches dropped while it is down; needs root),
#   followed by a round of local GETs served from that cold cache.
#
# Usage: Benchmarks/run-kv-vs-sequins.sh <sequins binary> [seconds] [connections] [records] [rounds]
# Nothing of sequins is built here: pass the path of a sequins binary you built yourself.
set -euo pipefail
sequins=${1:?usage: run-kv-vs-sequins.sh <sequins binary> [seconds] [connections] [records] [rounds]}
seconds=${2:-10}; connections=${3:-32}; records=${4:-1000000}; rounds=${5:-3}
sequins=$(readlink -f "$sequins")
cd "$(dirname "$0")"
command -v wrk >/dev/null || apt-get install -y wrk
swift build -c release --product kv-bench >&2
# kv as it is deployed: the Swift runtime and Foundation linked in (sequins is one static Go
# binary). A dynamically linked kv maps a dozen Swift libraries at start, which with a cold page
# cache costs about 50 ms more before it serves. Built apart, so the other builds keep their flags.
swift build -c release --product kv --static-swift-stdlib --scratch-path .build/static-stdlib >&2
bin=$(swift build -c release --show-bin-path)
kv=$(swift build -c release --static-swift-stdlib --scratch-path .build/static-stdlib --show-bin-path)/kv
work=$(mktemp -d /tmp/kv-vs-sequins.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; exec 3>&- 2>/dev/null || true; }
trap cleanup EXIT

"$bin/kv-bench" data --records "$records" --files 8 --value-size 100 --directory "$work" >&2
# wrk reads its key list into each thread's memory: past a million keys, a uniform sample of them.
for list in keys missing; do
  if [ "$records" -gt 1000000 ]; then shuf -n 1000000 "$work/$list.txt" > "$work/$list.sample"; mv "$work/$list.sample" "$work/$list.txt"; fi
done
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
  binary=$sequins; [ "$system" = kv ] && binary=$kv
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

pid_of() { cat "$work/$1/pid"; }
# resident / anonymous / file-backed MB of a node
memory() { awk '/^Rss:/ {r=$2} /^Anonymous:/ {a=$2} END {printf "%.0f %.0f %.0f", r/1024, a/1024, (r-a)/1024}' "/proc/$(pid_of "$1")/smaps_rollup"; }
memory_line() { # label
  echo "memory $1 (MB resident / anonymous / file-backed): sequins $(memory sequins-single | tr ' ' /), kv $(memory kv-single | tr ' ' /)"
}
memory_line "after loading"
can_drop=false; if sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then can_drop=true; fi
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

cpu_ticks() { local total=0; for name in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$(cat "$work/$name/pid")/stat"))); done; echo $total; }
hz=$(getconf CLK_TCK)

to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/, "", v); print v / 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v); print v } else { sub(/s/, "", v); print v * 1000 } }'; }
# A warm page cache has to be made warm: a kernel's proactive reclaim (DAMON's `pageout` scheme,
# on where these figures were taken: /sys/kernel/mm/damon) drops file pages left unaccessed for a
# minute, so the store of whichever system finished building first, or was measured longest ago,
# would otherwise be read back from disk page by page during its round. Each warm round starts
# with the stores it reads in the page cache, for both systems alike.
warm_stores() { # node names
  for name in "$@"; do find "$work/$name/store" -type f -exec cat {} + > /dev/null; done
}
measure() { # label system path
  local label=$1 system=$2 path=$3 target keys measured
  case $path in
    local) target=$system-single; keys=$work/keys.txt; measured=($system-single) ;;
    missing) target=$system-single; keys=$work/missing.txt; measured=($system-single) ;;
    proxied) target=$system-pair1; keys=$work/keys.txt; measured=($system-pair1 $system-pair2) ;;
  esac
  local before after report rps requests p50 p99 cpu bad
  [ "$label" = cold ] || warm_stores "${measured[@]}"
  before=$(cpu_ticks "${measured[@]}")
  report=$(KEYS=$keys wrk -t2 -c"$connections" -d"${seconds}s" --latency -s kv-wrk.lua "http://127.0.0.1:${ports[$target]}")
  after=$(cpu_ticks "${measured[@]}")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$report")
  requests=$(awk '/requests in/ {print $1}' <<<"$report")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$report")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$report")")
  cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" 'BEGIN { printf "%.1f", t / hz / n * 1e6 }')
  # Failed requests are not throughput; a 404 target expects only 404s.
  bad=$(awk '/Socket errors/ {print "socket errors"}' <<<"$report")
  if [ "$path" != missing ]; then bad+=$(awk '/Non-2xx or 3xx responses/ {print " " $5 " non-2xx"}' <<<"$report"); fi
  echo "$path $label $system $rps $p50 $p99 $cpu${bad:+ INVALID:$bad}"
}

# Both warmed up alike (page cache, mappings, connections) before anything is measured.
seconds_measured=$seconds; seconds=3
for path in local missing proxied; do for system in sequins kv; do measure warmup "$system" "$path" > /dev/null; done; done
seconds=$seconds_measured

echo "path round system req/s p50_ms p99_ms cpu_us_per_request"
for round in $(seq 1 "$rounds"); do
  for path in local missing proxied; do
    for system in sequins kv; do measure "$round" "$system" "$path"; done
  done
done
memory_line "after the rounds"

# A version switch: version 2 holds the same files (hard links), offered by SIGHUP.
cp -al "$work/source/bench/1" "$work/source/bench/2"
serves_version() { curl -s -D - -o /dev/null "http://127.0.0.1:$1/bench/key-0" | tr -d '\r' | grep -qi "^X-Sequins-Version: $2\$"; }
for system in sequins kv; do
  name=$system-single
  read -r steady_rss steady_anon _ <<<"$(memory "$name")"
  peak_rss=$steady_rss; peak_anon=$steady_anon
  started=$(date +%s.%N)
  kill -HUP "$(pid_of "$name")"
  until serves_version "${ports[$name]}" 2; do
    read -r rss anon _ <<<"$(memory "$name")"
    ((rss > peak_rss)) && peak_rss=$rss; ((anon > peak_anon)) && peak_anon=$anon
    sleep 0.05
  done
  switched=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  sleep 2  # the old version dropped
  read -r after_rss after_anon _ <<<"$(memory "$name")"
  echo "switch $system: ${switched} s; resident MB steady $steady_rss peak $peak_rss after $after_rss (peak/steady $(awk -v p="$peak_rss" -v s="$steady_rss" 'BEGIN { printf "%.2f", p / s }')); anonymous MB steady $steady_anon peak $peak_anon after $after_anon (peak/steady $(awk -v p="$peak_anon" -v s="$steady_anon" 'BEGIN { printf "%.2f", p / s }'))"
done

# Restarts with the store on disk: time to the first 200.
restart() { # system cache
  local name=$1-single pid
  pid=$(pid_of "$name"); kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  [ "$2" = cold ] && drop_caches
  local started; started=$(date +%s.%N)
  start "$name" "$( [ "$1" = kv ] && echo "$kv" || echo "$sequins")"
  # Polled every 2 ms on a kept process (a curl per try would cost more than the differences measured).
  python3 - "${ports[$name]}" <<'POLL'
import http.client, sys, time
while True:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=1)
        connection.request("GET", "/bench/key-0")
        if connection.getresponse().status == 200: break
    except OSError: pass
    time.sleep(0.002)
POLL
  echo "restart $1 ($2 page cache): first 200 after $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }') s"
}
for _ in 1 2 3; do for system in sequins kv; do restart "$system" warm; done; done
memory_line "after the restarts"
# A page cache is cold only for files no process maps: each node restarts after the caches are
# dropped, then serves local GETs for one round from disk.
if $can_drop; then
  for system in sequins kv; do restart "$system" cold; measure cold "$system" local; done
  memory_line "after the cold rounds"
else
  echo "cold page cache: not measured (cannot write /proc/sys/vm/drop_caches)"
fi
echo "(logs and data in $work)"
