#!/usr/bin/env bash
# The search (Sensei) demo against SQLite FTS5 on the same generated corpus, in one run: indexing
# documents/s, and single-term / two-term AND / two-term OR query p50, p90 and p99 (search: through
# the broker of a three-node cluster; FTS5: one database with the whole corpus; both on the
# `contents` column, one query at a time).
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
