#!/usr/bin/env bash
# The search (Sensei) demo against SQLite FTS5 on the same generated corpus, in one run
# (search-vs-fts5.py): indexing documents/s, and the p50/p99 of single-term, two-term AND and
# two-term OR queries on mid-frequency and on frequency-weighted words, through the broker of a
# three-process cluster and in process, beside an optimized FTS5 table.
# Usage: Benchmarks/run-search-fts5.sh [--no-build] [documents]
#   --no-build: use the release binaries already built (search-bench in Benchmarks/.build,
#   search in Demos/.build), e.g. to measure while holding a lock that builds also take.
set -euo pipefail
cd "$(dirname "$0")"
build=1
if [ "${1:-}" = "--no-build" ]; then
    build=0
    shift
fi
documents=${1:-50000}
if [ "$build" = 1 ]; then
    swift build -c release --product search-bench >&2
    swift build -c release --package-path ../Demos --product search >&2
fi
search_bench=.build/release/search-bench
search=../Demos/.build/release/search
for binary in "$search_bench" "$search"; do
    [ -x "$binary" ] || { echo "$binary is not built (run without --no-build)" >&2; exit 1; }
done
directory=$(mktemp -d)
trap 'rm -rf "$directory"' EXIT
"$search_bench" corpus --documents "$documents" --directory "$directory" >&2
python3 search-vs-fts5.py "$search_bench" "$search" "$directory"
