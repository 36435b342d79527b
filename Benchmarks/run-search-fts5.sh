#!/usr/bin/env bash
# The search (Sensei) demo against SQLite FTS5 on the same generated corpus, in one run:
# indexing documents/s, and single-term / two-term query p50 (search: through the broker of a
# three-node cluster; FTS5: one database with the whole corpus).
# Usage: Benchmarks/run-search-fts5.sh [documents]   (after: cd Benchmarks && swift build -c release --product search-bench)
set -euo pipefail
cd "$(dirname "$0")"
documents=${1:-50000}
directory=$(mktemp -d)
trap 'rm -rf "$directory"' EXIT
.build/release/search-bench corpus --documents "$documents" --directory "$directory"
.build/release/search-bench index --directory "$directory"
python3 search-fts5.py "$directory"
.build/release/search-bench cluster --directory "$directory"
