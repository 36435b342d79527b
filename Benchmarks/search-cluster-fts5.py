#!/usr/bin/env python3
"""The search (Sensei) demo as its users run it beside SQLite FTS5, in one run, on selective words.

Three `search` processes (partitions 0-2, each on two nodes), one ZooKeeper (the Debian jars),
the corpus of search-bench (docs.jsonl, schema.json in <directory>). Query words come from the
middle of the contents vocabulary's frequency ranking (ranks 25-600), so most match 0.5-2 % of the
documents. Each query is sent to one broker over one kept-alive HTTP/1.1 connection
(POST /sensei, {"query":{"query_string":{"query":...}},"size":10}) and asked of FTS5
(fts5(title, contents), optimized after the bulk load; the total hit count and the top 10 by bm25
on contents), alternating query by query. Hit counts are compared on every query.

Usage: search-cluster-fts5.py <search binary> <directory> [queries per kind, default 300]
Prints p50/p99 per kind for both, and the ratio of the p50s."""
import collections, http.client, json, os, random, re, shutil, socket, sqlite3, subprocess, sys, tempfile, time

binary, directory = sys.argv[1], sys.argv[2]
per_kind = int(sys.argv[3]) if len(sys.argv) > 3 else 300
lines = open(os.path.join(directory, "docs.jsonl"), encoding="utf-8").read().splitlines()
documents = [json.loads(line) for line in lines]


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
            f"sensei.gateway.file.path={os.path.abspath(os.path.join(directory, 'docs.jsonl'))}", ""]))
        processes.append(subprocess.Popen([binary, "--config", f"{work}/node{node}/sensei.properties"],
                                          stdout=subprocess.DEVNULL, stderr=open(f"{work}/node{node}.log", "w")))

    connection = http.client.HTTPConnection("127.0.0.1", brokers[0])

    def ask(query):
        body = json.dumps({"query": {"query_string": {"query": query}}, "size": 10})
        started = time.perf_counter()
        connection.request("POST", "/sensei", body, {"Content-Type": "application/json"})
        answer = connection.getresponse().read()
        elapsed = (time.perf_counter() - started) * 1000
        return elapsed, json.loads(answer)

    deadline = time.time() + 600
    while True:
        try:
            if ask("")[1].get("numhits") == len(documents):
                break
        except (OSError, http.client.HTTPException, ValueError):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", brokers[0])
        if time.time() > deadline:
            sys.exit("the cluster did not index every document within 600 s")
        time.sleep(0.5)

    # FTS5, given its best: optimized after the bulk load, a warm cache.
    db = sqlite3.connect(f"{work}/fts5.db")
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, contents)")
    with db:
        db.executemany("INSERT INTO docs(rowid, title, contents) VALUES (?, ?, ?)", ((d["id"], d["title"], d["contents"]) for d in documents))
    db.execute("INSERT INTO docs(docs) VALUES ('optimize')")
    db.commit()

    def fts5(query):
        match = f"contents : ({query})"
        started = time.perf_counter()
        hits = db.execute("SELECT count(*) FROM docs WHERE docs MATCH ?", (match,)).fetchone()[0]
        db.execute("SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 10", (match,)).fetchall()
        return (time.perf_counter() - started) * 1000, hits

    # Words from the middle of the contents vocabulary's frequency ranking.
    frequency = collections.Counter()
    for d in documents:
        frequency.update(set(re.findall(r"[a-z0-9]+", d["contents"].lower())))
    ranked = [word for word, _ in frequency.most_common()]
    band = ranked[25:600]
    generator = random.Random(20261206)
    kinds = [
        ("single term", [generator.choice(band) for _ in range(per_kind)]),
        ("two-term AND", [f"{generator.choice(band)} AND {generator.choice(band)}" for _ in range(per_kind)]),
        ("two-term OR", [f"{generator.choice(band)} OR {generator.choice(band)}" for _ in range(per_kind)]),
    ]

    def percentile(values, p):
        values = sorted(values)
        return values[min(len(values) - 1, int(len(values) * p / 100))]

    print(f"| kind | FTS5 p50 / p99 ms | search p50 / p99 ms | ratio p50 | hit counts equal |")
    print(f"|---|---|---|---|---|")
    for name, queries in kinds:
        for query in queries[:20]:  # warm both
            fts5(query)
            ask(query)
        ours, theirs, equal = [], [], 0
        for query in queries:
            elapsed, hits = fts5(query)
            theirs.append(elapsed)
            elapsed, answer = ask(query)
            ours.append(elapsed)
            equal += answer.get("numhits") == hits
        print(f"| {name} | {percentile(theirs, 50):.2f} / {percentile(theirs, 99):.2f} | {percentile(ours, 50):.2f} / {percentile(ours, 99):.2f} | "
              f"{percentile(ours, 50) / percentile(theirs, 50):.2f}x | {equal}/{len(queries)} |")
finally:
    cleanup()
