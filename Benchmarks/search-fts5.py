#!/usr/bin/env python3
"""SQLite FTS5 on the same corpus as search-bench (Python's stdlib sqlite3): indexing documents/s
(JSON parsing included, as for search) and the p50/p90/p99 of the same single-term, two-term AND
and two-term OR queries on the `contents` column (what a bare term searches in Sensei), top 10 by
bm25 over the whole corpus, one at a time; then the same queries on a table indexing contents
alone (FTS5's fastest form of them). Usage: search-fts5.py <directory>"""
import json, os, sqlite3, statistics, sys, tempfile, time

directory = sys.argv[1]
lines = open(os.path.join(directory, "docs.jsonl"), encoding="utf-8").read().splitlines()


def build(title_indexed):
    """A new database with every line inserted in one transaction (json.loads included)."""
    path = tempfile.mktemp(suffix=".db", dir=directory)
    db = sqlite3.connect(path)
    title = "title" if title_indexed else "title UNINDEXED"
    db.execute(f"CREATE VIRTUAL TABLE docs USING fts5({title}, contents, category UNINDEXED, year UNINDEXED)")
    with db:
        for line in lines:
            doc = json.loads(line)
            db.execute("INSERT INTO docs(rowid, title, contents, category, year) VALUES (?, ?, ?, ?, ?)",
                       (doc["id"], doc["title"], doc["contents"], doc["category"], doc["year"]))
    return db, path


rates = []
for attempt in range(3):
    started = time.perf_counter()
    db, path = build(title_indexed=True)
    rates.append(len(lines) / (time.perf_counter() - started))
    if attempt < 2:
        db.close()
        os.remove(path)
print(f"fts5 index documents={len(lines)} docs_per_second={int(statistics.median(rates))}")

singles = open(os.path.join(directory, "queries-1.txt"), encoding="utf-8").read().splitlines()
pairs = open(os.path.join(directory, "queries-2.txt"), encoding="utf-8").read().splitlines()


def measure(db, label, column_filter):
    """Each kind of query on `db`, `column_filter` prefixing the query with `contents : `."""
    wrap = (lambda q: f"contents : ({q})") if column_filter else (lambda q: q)
    kinds = (("single-term", [wrap(q) for q in singles]),
             ("two-term-and", [wrap(" AND ".join(q.split())) for q in pairs]),
             ("two-term-or", [wrap(" OR ".join(q.split())) for q in pairs]))
    for name, queries in kinds:
        for q in queries[:20]:
            db.execute("SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 10", (q,)).fetchall()
        latencies = []
        for q in queries:
            started = time.perf_counter()
            db.execute("SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 10", (q,)).fetchall()
            latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        print(f"{label} query {name} p50_ms={latencies[len(latencies) // 2]:.3f} p90_ms={latencies[len(latencies) * 9 // 10]:.3f} "
              f"p99_ms={latencies[len(latencies) * 99 // 100]:.3f}")


# The table search is compared with: title and contents indexed, queries restricted to contents.
measure(db, "fts5", column_filter=True)
db.close()
os.remove(path)

# FTS5's fastest form of the same queries, for reference: only contents indexed, no column filter.
db, path = build(title_indexed=False)
measure(db, "fts5-contents-only", column_filter=False)
db.close()
os.remove(path)
