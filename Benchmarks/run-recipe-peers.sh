#!/usr/bin/env bash
# The recipe workloads of Benchmarks/curator (subtree cache load and propagation, service lookup,
# counter increments) on Apache Curator 5.4 and on our zk-bench, against one ZooKeeper server, in
# one run: the implementations alternate run by run, and the table shows the median of --repeat
# runs of each, with the ratio ours/Curator. Ours runs twice: as an application's tasks on the
# cooperative pool, and (in parentheses) with its loop preferring the client's completion executor,
# where Curator runs its listeners: on the thread that delivered the event.
#
#   Benchmarks/run-recipe-peers.sh [--repeat K] [--workloads W1,W2,…] [--out FILE]
#
# Builds what is missing (zk-bench in release, the Curator bench with build-curator-bench) and
# starts the server with the peer harness's zk-server (ZK_SERVER, default
# /work/shared/bench-peers/zk-server), its data in /dev/shm.
set -euo pipefail
cd "$(dirname "$0")"
repeat=3
workloads=tree-cache-load,tree-cache-propagation,service-lookup,counter-increments
out=/tmp/recipe-peers-$(date +%Y%m%d-%H%M%S).md
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--repeat K] [--workloads W1,W2,…] [--out FILE]" >&2; exit 2 ;;
  esac
done
zk_server=${ZK_SERVER:-/work/shared/bench-peers/zk-server}
[ -x "$zk_server" ] || { echo "run-recipe-peers: no zk-server at $zk_server (set ZK_SERVER)" >&2; exit 1; }

swift build -c release --product zk-bench >&2
curator/build-curator-bench >&2
swift_bench=$PWD/.build/release/zk-bench
curator_bench=/tmp/curator-recipe-bench/bin/curator-recipe-bench

dir=$(mktemp -d /dev/shm/recipe-peers-zk.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$zk_server" start "$dir" "$port" >&2
trap '"$zk_server" stop "$dir" >&2; rm -rf "$dir"' EXIT

raw=$(mktemp)
for workload in ${workloads//,/ }; do
  for run in $(seq "$repeat"); do
    for impl in curator swift swift-ce; do
      case $impl in
        curator) command=("$curator_bench") ;;
        swift) command=("$swift_bench") ;;
        swift-ce) command=("$swift_bench" --completion-executor) ;;
      esac
      line=$("${command[@]}" --zk "127.0.0.1:$port" --workload "$workload" | tail -1) || true
      # zk-bench says "swift" either way: the line is labelled with the variant that ran.
      [ "$impl" = swift-ce ] && line=${line/\"impl\":\"swift\"/\"impl\":\"swift-ce\"}
      echo "$line" >> "$raw"
      echo "$workload run $run $impl: $line" >&2
    done
  done
done

python3 - "$raw" "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
def med(impl, workload, key):
    values = [r[key] for r in rows if r.get("impl") == impl and r.get("workload") == workload and r.get("ok") and r.get(key) is not None]
    return statistics.median(values) if values else None
lines = ["| workload | Curator ops/s | ours ops/s (on the completion executor) | ours / Curator | p50 / p99 µs Curator | p50 / p99 µs ours (on the completion executor) | client CPU µs/op Curator / ours (on the completion executor) |",
         "|---|---:|---:|---:|---|---|---|"]
for workload in dict.fromkeys(r.get("workload") for r in rows):
    c, s, e = (med(impl, workload, "ops_per_sec") for impl in ("curator", "swift", "swift-ce"))
    def lat(impl):
        p50, p99 = med(impl, workload, "p50_us"), med(impl, workload, "p99_us")
        return "–" if p50 is None else f"{p50:.0f} / {p99:.0f}"
    def ratio(ours):
        return f"{ours / c:.2f}" if c and ours else "–"
    def cpu(impl):
        return med(impl, workload, "client_cpu_us_per_op")
    lines.append(f"| {workload} | {c or '–':,} | {s or '–':,} ({e or '–':,}) | {ratio(s)} ({ratio(e)}) | {lat('curator')} | "
                 f"{lat('swift')} ({lat('swift-ce')}) | {cpu('curator')} / {cpu('swift')} ({cpu('swift-ce')}) |")
failed = [r for r in rows if not r.get("ok")]
text = "\n".join(lines) + "\n\n" + (f"{len(failed)} failed runs: {failed}\n" if failed else "") + "\nraw:\n" + "".join(json.dumps(r) + "\n" for r in rows)
open(sys.argv[2], "w").write(text)
print("\n".join(lines))
PY
echo "results: $out" >&2
