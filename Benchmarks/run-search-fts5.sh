#!/usr/bin/env bash
# The search (Sensei) demo against SQLite FTS5 on the same generated corpus, in one run: indexing
# documents/s, and single-term / two-term AND / two-term OR query p50, p90 and p99 (search: through
# the broker of a three-node cluster; FTS5: one database with the whole corpus; both on the
# `contents` column, one query at a time).
# Then the selective-words comparison through a three-process cluster (search-cluster-fts5.py).
# Usage: Benchmarks/run-search-fts5.sh [documents]
set -euo pipefail
cd "$(dirname "$0")"
documents=${1:-50000}
swift build -c release --product search-bench >&2
bin=$(swift build -c release --show-bin-path)
directory=$(mktemp -d)
trap 'rm -rf "$directory"' EXIT
"$bin/search-bench" corpus --documents "$documents" --directory "$directory"
"$bin/search-bench" index --directory "$directory"
python3 search-fts5.py "$directory"
"$bin/search-bench" cluster --directory "$directory"
# The same corpus as its users run it: three `search` processes (each partition on two nodes),
# one broker over a kept-alive connection, words from the middle of the frequency ranking,
# against FTS5 optimized after its bulk load, alternating query by query.
swift build -c release --package-path ../Demos --product search >&2
python3 search-cluster-fts5.py "$(swift build -c release --package-path ../Demos --show-bin-path)/search" "$directory"
