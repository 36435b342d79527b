#!/usr/bin/env python3
"""SQLite FTS5 on the same corpus as search-bench (Python's stdlib sqlite3): indexing documents/s
(JSON parsing included, as for search) and the p50/p90 of the same single-term and two-term (AND)
queries, top 10 by bm25 over the whole corpus. Usage: search-fts5.py <directory>"""
import json, os, sqlite3, statistics, sys, tempfile, time

directory = sys.argv[1]
lines = open(os.path.join(directory, "docs.jsonl"), encoding="utf-8").read().splitlines()

rates = []
for attempt in range(3):
    path = tempfile.mktemp(suffix=".db", dir=directory)
    started = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, body, category UNINDEXED, year UNINDEXED)")
    with db:
        for line in lines:
            doc = json.loads(line)
            db.execute("INSERT INTO docs(rowid, title, body, category, year) VALUES (?, ?, ?, ?, ?)",
                       (doc["id"], doc["title"], doc["body"], doc["category"], doc["year"]))
    elapsed = time.perf_counter() - started
    rates.append(len(lines) / elapsed)
    if attempt < 2:
        db.close()
        os.remove(path)
print(f"fts5 index documents={len(lines)} docs_per_second={int(statistics.median(rates))}")

for name, file in (("single-term", "queries-1.txt"), ("two-term", "queries-2.txt")):
    queries = [" AND ".join(q.split()) for q in open(os.path.join(directory, file), encoding="utf-8").read().splitlines()]
    for q in queries[:20]:
        db.execute("SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 10", (q,)).fetchall()
    latencies = []
    for q in queries:
        started = time.perf_counter()
        db.execute("SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 10", (q,)).fetchall()
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    print(f"fts5 query {name} p50_ms={latencies[len(latencies) // 2]:.3f} p90_ms={latencies[len(latencies) * 9 // 10]:.3f}")
db.close()
os.remove(path)
