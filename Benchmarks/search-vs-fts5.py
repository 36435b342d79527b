#!/usr/bin/env python3
"""The search (Sensei) demo as its users run it beside SQLite FTS5, in one run, on the corpus that
`search-bench corpus` wrote to <directory> (docs.jsonl, schema.json, queries-1.txt, queries-2.txt).

Indexing, documents/s, median of 3 each (JSON parsing included in both):
- search: `search-bench index` (one node holding all three partitions; fsync per batch; counted
  until the background merges are done);
- FTS5 (Python's stdlib sqlite3, `fts5(title, contents)`, on the same file system): 1,000 rows per
  transaction, then `INSERT INTO docs(docs) VALUES('optimize')`, counted in its time.

Queries, two mixes of 300 (per_kind) per kind, each kind single term, two-term AND, two-term OR:
- mid-frequency: words from ranks 25-600 of the contents vocabulary's frequency ranking (most
  match 0.5-2 % of the documents);
- frequency-weighted: queries-1.txt and queries-2.txt (words drawn from random documents, so
  common words are asked as often as they occur).
Each is asked of
- FTS5 (the table above, optimized, warm): the total hit count and the top 10 by bm25 on
  `contents : (...)`;
- search through a cluster like the one users run: one ZooKeeper (the Debian jars), three `search`
  processes (partitions 0-2, each on two nodes), one broker over one kept-alive HTTP/1.1
  connection (POST /sensei, {"query":{"query_string":{"query":...}},"size":10}); alternating with
  FTS5 query by query (which of the two goes first alternates too);
- search in process: the same queries on one node holding all three partitions, no HTTP
  (`search-bench index --queries`, before the cluster starts).
Every system answers every query once to warm up, then once measured. Hit counts are compared on
every query (FTS5, broker and in process).

Usage: search-vs-fts5.py <search-bench binary> <search binary> <directory> [queries per kind, default 300]
Prints (stdout) the indexing table and the query table, as Markdown."""
import collections, http.client, json, os, random, re, shutil, socket, sqlite3, statistics, subprocess, sys, tempfile, time

search_bench, binary, directory = sys.argv[1], sys.argv[2], os.path.abspath(sys.argv[3])
per_kind = int(sys.argv[4]) if len(sys.argv) > 4 else 300
lines = open(os.path.join(directory, "docs.jsonl"), encoding="utf-8").read().splitlines()
documents = [json.loads(line) for line in lines]


def log(message):
    print(message, file=sys.stderr, flush=True)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


# The queries: (mix, kind, query), written for search-bench.
frequency = collections.Counter()
for d in documents:
    frequency.update(set(re.findall(r"[a-z0-9]+", d["contents"].lower())))
band = [word for word, _ in frequency.most_common()][25:600]
generator = random.Random(20261206)
singles = open(os.path.join(directory, "queries-1.txt"), encoding="utf-8").read().splitlines()[:per_kind]
pairs = [line.split() for line in open(os.path.join(directory, "queries-2.txt"), encoding="utf-8").read().splitlines()[:per_kind]]
queries = ([("mid-frequency", "single-term", generator.choice(band)) for _ in range(per_kind)]
           + [("mid-frequency", "two-term-and", f"{generator.choice(band)} AND {generator.choice(band)}") for _ in range(per_kind)]
           + [("mid-frequency", "two-term-or", f"{generator.choice(band)} OR {generator.choice(band)}") for _ in range(per_kind)]
           + [("frequency-weighted", "single-term", q) for q in singles]
           + [("frequency-weighted", "two-term-and", f"{a} AND {b}") for a, b in pairs]
           + [("frequency-weighted", "two-term-or", f"{a} OR {b}") for a, b in pairs])
groups = list(dict.fromkeys((mix, kind) for mix, kind, _ in queries))
queries_file = os.path.join(directory, "queries.tsv")
with open(queries_file, "w", encoding="utf-8") as f:
    f.writelines(f"{mix}\t{kind}\t{query}\n" for mix, kind, query in queries)


# FTS5 indexing: batches of 1,000 rows, then optimize; the last database is kept for the queries.
def build_fts5(path):
    db = sqlite3.connect(path)
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, contents)")
    for start in range(0, len(lines), 1000):
        with db:
            rows = []
            for line in lines[start:start + 1000]:
                doc = json.loads(line)
                rows.append((doc["id"], doc["title"], doc["contents"]))
            db.executemany("INSERT INTO docs(rowid, title, contents) VALUES (?, ?, ?)", rows)
    with db:
        db.execute("INSERT INTO docs(docs) VALUES ('optimize')")
    return db


fts5_rates = []
db = None
for attempt in range(3):
    path = os.path.join(directory, f"fts5-{attempt}.db")
    if db is not None:
        db.close()
        os.remove(os.path.join(directory, f"fts5-{attempt - 1}.db"))
    started = time.perf_counter()
    db = build_fts5(path)
    fts5_rates.append(len(lines) / (time.perf_counter() - started))
fts5_rate = statistics.median(fts5_rates)
log(f"fts5 index documents={len(lines)} docs_per_second={int(fts5_rate)} (runs: {', '.join(str(int(r)) for r in fts5_rates)})")

# search indexing, and the same queries in process.
hits_file = os.path.join(directory, "in-process-hits.txt")
output = subprocess.run([search_bench, "index", "--directory", directory, "--queries", queries_file, "--hits-file", hits_file],
                        check=True, capture_output=True, text=True).stdout
log(output.rstrip())
fields = {}
in_process = {}
for line in output.splitlines():
    words = line.split()
    values = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    if words[0] == "in-process":
        in_process[(values["mix"], values["kind"])] = (float(values["p50_ms"]), float(values["p99_ms"]))
    else:
        fields[words[0]] = values
in_process_hits = [int(h) for h in open(hits_file).read().split()]


def fts5(query):
    match = f"contents : ({query})"
    started = time.perf_counter()
    hits = db.execute("SELECT count(*) FROM docs WHERE docs MATCH ?", (match,)).fetchone()[0]
    db.execute("SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 10", (match,)).fetchall()
    return (time.perf_counter() - started) * 1000, hits


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


work = tempfile.mkdtemp(prefix="search-cluster-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
processes = []


def cleanup():
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    shutil.rmtree(work, ignore_errors=True)


try:
    # ZooKeeper: the Debian package's jars, standalone.
    zk_port = free_port()
    os.makedirs(f"{work}/zk")
    open(f"{work}/zk.cfg", "w").write(f"tickTime=500\ndataDir={work}/zk\nclientPort={zk_port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n")
    jars = ":".join(f"/usr/share/java/{j}.jar" for j in ["zookeeper", "zookeeper-jute", "slf4j-api", "slf4j-simple", "netty-handler",
                                                          "netty-transport", "netty-common", "netty-buffer", "netty-resolver", "netty-codec",
                                                          "netty-transport-native-epoll", "netty-transport-native-unix-common"]
                    if os.path.exists(f"/usr/share/java/{j}.jar"))
    processes.append(subprocess.Popen(["java", "-Xmx512m", "-cp", jars, "org.apache.zookeeper.server.ZooKeeperServerMain", f"{work}/zk.cfg"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", zk_port), timeout=1) as s:
                s.sendall(b"ruok")
                if s.recv(4) == b"imok":
                    break
        except OSError:
            pass
        time.sleep(0.1)

    # Three nodes, each partition on two of them.
    brokers = []
    for node, partitions in enumerate(["0,1", "1,2", "2,0"], start=1):
        broker_port = free_port()
        brokers.append(broker_port)
        os.makedirs(f"{work}/node{node}")
        shutil.copy(os.path.join(directory, "schema.json"), f"{work}/node{node}/schema.json")
        open(f"{work}/node{node}/sensei.properties", "w").write("\n".join([
            f"sensei.node.id={node}", f"sensei.node.partitions={partitions}", f"sensei.server.port={free_port()}",
            f"sensei.broker.port={broker_port}", "sensei.cluster.name=bench", f"sensei.cluster.url=127.0.0.1:{zk_port}",
            "sensei.cluster.timeout=30000", f"sensei.index.directory={work}/node{node}/index", "sensei.index.manager.default.maxpartition.id=2",
            "sensei.gateway.class=com.senseidb.gateway.file.LinedFileDataProviderBuilder",
            f"sensei.gateway.file.path={os.path.join(directory, 'docs.jsonl')}", ""]))
        processes.append(subprocess.Popen([binary, "--config", f"{work}/node{node}/sensei.properties"],
                                          stdout=subprocess.DEVNULL, stderr=open(f"{work}/node{node}.log", "w")))

    connection = http.client.HTTPConnection("127.0.0.1", brokers[0])

    def ask(query):
        body = json.dumps({"query": {"query_string": {"query": query}}, "size": 10})
        started = time.perf_counter()
        connection.request("POST", "/sensei", body, {"Content-Type": "application/json"})
        answer = connection.getresponse().read()
        elapsed = (time.perf_counter() - started) * 1000
        return elapsed, json.loads(answer).get("numhits")

    deadline = time.time() + 600
    while True:
        try:
            if ask("")[1] == len(documents):
                break
        except (OSError, http.client.HTTPException, ValueError):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", brokers[0])
        if time.time() > deadline:
            sys.exit("the cluster did not index every document within 600 s")
        time.sleep(0.5)
    log("cluster: every document searchable")

    for _, _, query in queries:  # warm both
        fts5(query)
        ask(query)
    theirs, ours, equal = collections.defaultdict(list), collections.defaultdict(list), collections.Counter()
    for number, (mix, kind, query) in enumerate(queries):
        if number % 2 == 0:
            fts5_elapsed, fts5_hits = fts5(query)
            broker_elapsed, broker_hits = ask(query)
        else:
            broker_elapsed, broker_hits = ask(query)
            fts5_elapsed, fts5_hits = fts5(query)
        theirs[(mix, kind)].append(fts5_elapsed)
        ours[(mix, kind)].append(broker_elapsed)
        if fts5_hits == broker_hits == in_process_hits[number]:
            equal[(mix, kind)] += 1
        else:
            log(f"hit counts differ on {mix} {kind} {query!r}: FTS5 {fts5_hits}, broker {broker_hits}, in process {in_process_hits[number]}")
finally:
    cleanup()

index, restart = fields["index"], fields["restart"]
search_rate = float(index["docs_per_second"])
print(f"| {len(lines):,} documents | search | FTS5 | ratio |")
print("|---|---:|---:|---:|")
print(f"| indexing, documents/s (median of 3) | {int(search_rate):,} | {int(fts5_rate):,} | **{search_rate / fts5_rate:.2f}** |")
print(f"| search until every document is searchable | {int(index['searchable_docs_per_second']):,} | | {int(index['searchable_docs_per_second']) / fts5_rate:.2f} |")
print(f"| restart (reopen until it can search) | {float(restart['seconds']):.2f} s | | |")
print()
print("| mix | kind | FTS5 p50 / p99 ms | search p50 / p99 ms | in process p50 ms | search − in process p50 (≤ 1 ms) "
      "| p50 target | p50 ≤ target | p99 ≤ FTS5 p99 | hit counts equal |")
print("|---|---|---|---|---:|---:|---:|---|---|---|")
for mix, kind in groups:
    f50, f99 = percentile(theirs[(mix, kind)], 50), percentile(theirs[(mix, kind)], 99)
    b50, b99 = percentile(ours[(mix, kind)], 50), percentile(ours[(mix, kind)], 99)
    i50 = in_process[(mix, kind)][0]
    target = max(1.2 * f50, f50 + 0.5)
    verdict = lambda ok: "pass" if ok else "**FAIL**"
    print(f"| {mix} | {kind} | {f50:.2f} / {f99:.2f} | {b50:.2f} / {b99:.2f} | {i50:.2f} | {b50 - i50:.2f} {verdict(b50 - i50 <= 1)} "
          f"| {target:.2f} | {verdict(b50 <= target)} | {verdict(b99 <= f99)} | {equal[(mix, kind)]}/{len(ours[(mix, kind)])} |")
