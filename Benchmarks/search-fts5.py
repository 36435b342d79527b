#!/usr/bin/env python3
"""SQLite FTS5 on the same corpus as search-bench (Python's stdlib sqlite3): indexing documents/s
(JSON parsing included, as for search) and the p50/p90/p99 of the same single-term, two-term AND
and two-term OR queries on the `contents` column (what a bare term searches in Sensei), top 10 by
bm25 over the whole corpus, one at a time. Usage: search-fts5.py <directory>"""
import json, os, sqlite3, statistics, sys, tempfile, time

directory = sys.argv[1]
lines = open(os.path.join(directory, "docs.jsonl"), encoding="utf-8").read().splitlines()

rates = []
for attempt in range(3):
    path = tempfile.mktemp(suffix=".db", dir=directory)
    started = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, contents, category UNINDEXED, year UNINDEXED)")
    with db:
        for line in lines:
            doc = json.loads(line)
            db.execute("INSERT INTO docs(rowid, title, contents, category, year) VALUES (?, ?, ?, ?, ?)",
                       (doc["id"], doc["title"], doc["contents"], doc["category"], doc["year"]))
    elapsed = time.perf_counter() - started
    rates.append(len(lines) / elapsed)
    if attempt < 2:
        db.close()
        os.remove(path)
print(f"fts5 index documents={len(lines)} docs_per_second={int(statistics.median(rates))}")

singles = open(os.path.join(directory, "queries-1.txt"), encoding="utf-8").read().splitlines()
pairs = open(os.path.join(directory, "queries-2.txt"), encoding="utf-8").read().splitlines()
kinds = (("single-term", [f"contents : {q}" for q in singles]),
         ("two-term-and", [f"contents : ({' AND '.join(q.split())})" for q in pairs]),
         ("two-term-or", [f"contents : ({' OR '.join(q.split())})" for q in pairs]))
for name, queries in kinds:
    for q in queries[:20]:
        db.execute("SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 10", (q,)).fetchall()
    latencies = []
    for q in queries:
        started = time.perf_counter()
        db.execute("SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 10", (q,)).fetchall()
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    print(f"fts5 query {name} p50_ms={latencies[len(latencies) // 2]:.3f} p90_ms={latencies[len(latencies) * 9 // 10]:.3f} "
          f"p99_ms={latencies[len(latencies) * 99 // 100]:.3f}")
db.close()
os.remove(path)
