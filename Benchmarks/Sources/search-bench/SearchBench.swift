import ArgumentParser
import AsyncHTTPClient
import DemoSupport
import Foundation
import Logging
import NIOCore
import SenseiSearch
import ServiceLifecycle
import ZooKeeperTesting

/// The search (Sensei) demo's measurements, compared with SQLite FTS5 by run-search-fts5.sh.
@main
struct SearchBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search-bench", abstract: "Measurements of the search (Sensei) demo.",
        subcommands: [Corpus.self, Index.self, Restart.self, Cluster.self])

    static func main() async {
        ProcessSetup.runConcurrencyOnEventLoops()  // as the search executable does
        await main(nil)
    }
}

/// A Zipf-distributed synthetic corpus: titles and contents over a 20,000-word vocabulary, written
/// as JSON lines with a schema and query lists (words drawn from random documents' contents, so
/// common words are asked as often as they occur; `contents` is what a bare term searches in
/// Sensei, and what FTS5 is asked to search too).
struct Corpus: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write docs.jsonl, schema.json, queries-1.txt and queries-2.txt.")
    @Option var documents = 50_000
    @Option var directory = NSTemporaryDirectory() + "search-bench"
    @Option var queries = 300

    func run() throws {
        var generator = SeededRandomNumberGenerator(seed: 20261121)
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        var vocabulary: [String] = []
        var seen = Set<String>()
        while vocabulary.count < 20_000 {
            let word = String((0..<Int.random(in: 3...10, using: &generator)).map { _ in letters.randomElement(using: &generator)! })
            if seen.insert(word).inserted { vocabulary.append(word) }
        }
        // Zipf (s = 1): cumulative weights 1/rank.
        var cumulative: [Double] = []
        var total = 0.0
        for rank in 1...vocabulary.count {
            total += 1 / Double(rank)
            cumulative.append(total)
        }
        func word() -> String {
            let target = Double.random(in: 0..<total, using: &generator)
            var low = 0, high = cumulative.count - 1
            while low < high {
                let middle = (low + high) / 2
                if cumulative[middle] < target { low = middle + 1 } else { high = middle }
            }
            return vocabulary[low]
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var lines: [String] = []
        var contents: [[String]] = []
        let categories = ["news", "sports", "science", "arts", "travel", "food"]
        for id in 0..<documents {
            let title = (0..<Int.random(in: 3...8, using: &generator)).map { _ in word() }
            let body = (0..<Int.random(in: 30...120, using: &generator)).map { _ in word() }
            contents.append(body)
            let category = categories.randomElement(using: &generator)!
            let year = Int.random(in: 1990...2025, using: &generator)
            lines.append(#"{"id":\#(id),"title":"\#(title.joined(separator: " "))","contents":"\#(body.joined(separator: " "))","category":"\#(category)","year":\#(year)}"#)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: directory + "/docs.jsonl", atomically: true, encoding: .utf8)
        try Self.schema.write(toFile: directory + "/schema.json", atomically: true, encoding: .utf8)
        func sample() -> String { contents.randomElement(using: &generator)!.randomElement(using: &generator)! }
        try (0..<queries).map { _ in sample() }.joined(separator: "\n").write(toFile: directory + "/queries-1.txt", atomically: true, encoding: .utf8)
        try (0..<queries).map { _ in
            let document = contents.randomElement(using: &generator)!
            return document.randomElement(using: &generator)! + " " + document.randomElement(using: &generator)!
        }.joined(separator: "\n").write(toFile: directory + "/queries-2.txt", atomically: true, encoding: .utf8)
        print("wrote \(documents) documents to \(directory)")
    }

    static let schema = """
        { "table": { "uid": "id", "columns": [
            {"name": "title", "type": "text", "store": "YES"},
            {"name": "contents", "type": "text", "store": "NO"},
            {"name": "category", "type": "string"},
            {"name": "year", "type": "int"} ] },
          "facets": [ {"name": "category", "type": "simple"} ] }
        """
}

/// Indexing: the gateway file into one node holding all three partitions (parse, shard, index,
/// write segments with fsync per batch, merge in the background until the merges are done),
/// documents per second, median of `repeats`; and
/// a restart: the time to open the same directory again (segments read back) until it can search.
struct Index: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time indexing docs.jsonl.")
    @Option var directory = NSTemporaryDirectory() + "search-bench"
    @Option var repeats = 3
    @Option(help: "Index into this directory and keep it (to profile a restart with `restart`); implies one repeat.") var keep: String?

    func run() async throws {
        let schema = try SearchSchema(json: Data(contentsOf: URL(fileURLWithPath: directory + "/schema.json")))
        var rates: [Double] = []
        var searchableRates: [Double] = []
        var count = 0
        var lastNode: NodeIndex?
        var restartSeconds: [Double] = []
        for _ in 0..<(keep == nil ? repeats : 1) {
            let indexDirectory = keep ?? directory + "/index-\(UUID().uuidString)"
            defer { if keep == nil { try? FileManager.default.removeItem(atPath: indexDirectory) } }
            lastNode = nil
            do {  // the indexing node is released before the restart, as a restarted process would be
                let started = ContinuousClock.now
                let node = try NodeIndex(
                    schema: schema, partitions: [0, 1, 2], partitionCount: 3, sharding: .uidModulo, directory: indexDirectory, logger: Logger(label: "bench"))
                let gateway = FileGateway(path: directory + "/docs.jsonl")
                while try node.ingestNextBatch(from: gateway) > 0 {}
                // Every document committed and searchable; merges may still be running.
                searchableRates.append(Double(node.documentCount) / Self.seconds(ContinuousClock.now - started))
                node.finishMerges()  // merges run in the background; counted until they are done
                count = node.documentCount
                rates.append(Double(count) / Self.seconds(ContinuousClock.now - started))
            }
            // A restart: the same directory opened again (segments read back), until it can search.
            let reopening = ContinuousClock.now
            let reopened = try NodeIndex(
                schema: schema, partitions: [0, 1, 2], partitionCount: 3, sharding: .uidModulo, directory: indexDirectory, logger: Logger(label: "bench"))
            restartSeconds.append(Self.seconds(ContinuousClock.now - reopening))
            precondition(reopened.documentCount == count)
            lastNode = reopened
        }
        // The same queries as the cluster, in process on the one node (no HTTP), for comparison.
        for (name, queries) in try QueryKinds.load(directory) {
            var latencies: [Double] = []
            for query in queries {
                var request = SearchRequest()
                request.query = query
                let started = ContinuousClock.now
                _ = try await lastNode!.search(request)
                let elapsed = ContinuousClock.now - started
                latencies.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
            }
            latencies.sort()
            print("in-process \(name) p50_ms=\(String(format: "%.3f", latencies[latencies.count / 2]))")
        }
        rates.sort()
        restartSeconds.sort()
        searchableRates.sort()
        print("index documents=\(count) docs_per_second=\(Int(rates[rates.count / 2])) searchable_docs_per_second=\(Int(searchableRates[searchableRates.count / 2]))")
        print("restart documents=\(count) seconds=\(String(format: "%.2f", restartSeconds[restartSeconds.count / 2]))")
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// A restart alone: opens an index directory kept by `index --keep` until it can search.
struct Restart: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time reopening a kept index directory.")
    @Option var directory = NSTemporaryDirectory() + "search-bench"
    @Option var index: String

    func run() throws {
        let schema = try SearchSchema(json: Data(contentsOf: URL(fileURLWithPath: directory + "/schema.json")))
        let started = ContinuousClock.now
        let node = try NodeIndex(
            schema: schema, partitions: [0, 1, 2], partitionCount: 3, sharding: .uidModulo, directory: index, logger: Logger(label: "bench"))
        print("restart documents=\(node.documentCount) seconds=\(String(format: "%.2f", Index.seconds(ContinuousClock.now - started)))")
    }
}

/// Queries through the broker of a three-node cluster (one partition each, in this process, one
/// ZooKeeper): p50, p90 and p99 of single-term, two-term AND and two-term OR queries, top 10 by
/// relevance, one at a time.
struct Cluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Query latency through a 3-node cluster's broker.")
    @Option var directory = NSTemporaryDirectory() + "search-bench"
    @Option(help: "How many times each query list is run (more for profiling).") var rounds = 1

    func run() async throws {
        _ = ProcessSetup.bootstrapLogging(levelName: "warning", label: "bench")
        let schema = try SearchSchema(json: Data(contentsOf: URL(fileURLWithPath: directory + "/schema.json")))
        let documents = try String(contentsOfFile: directory + "/docs.jsonl", encoding: .utf8).split(separator: "\n").count
        let server = try await ZooKeeperServer.start()
        defer { Thread.detachNewThread { server.destroy() } }
        var brokerPort = 0
        let clusterName = "bench-\(UUID().uuidString.prefix(8))"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in 0..<3 {
                var configuration = SenseiConfiguration()
                configuration.nodeID = node + 1
                configuration.partitions = [node]
                configuration.maxPartitionID = 2
                configuration.serverPort = try freeLoopbackPort()
                configuration.brokerPort = try freeLoopbackPort()
                configuration.clusterName = clusterName
                configuration.clusterURL = server.connectString
                configuration.clusterTimeout = .seconds(10)
                configuration.indexDirectory = directory + "/cluster-index-\(node)"
                configuration.gatewayFilePath = directory + "/docs.jsonl"
                try? FileManager.default.removeItem(atPath: configuration.indexDirectory)
                if node == 0 { brokerPort = configuration.brokerPort }
                let service = SearchNode(configuration: configuration, schema: schema, logger: Logger(label: "search"))
                group.addTask { try await service.run() }
            }
            // A kept-alive HTTP/1.1 client with little overhead of its own (the one nodes use).
            let client = PeerClient()
            defer { client.shutdown() }
            func ask(_ query: String) async throws -> (Duration, Int) {
                let body = try JSONSerialization.data(withJSONObject: ["query": ["query_string": ["query": query]], "size": 10])
                let started = ContinuousClock.now
                let answer = try await client.send(peer: "127.0.0.1:\(brokerPort)", method: .POST, path: "/sensei", body: ByteBuffer(bytes: body))
                let elapsed = ContinuousClock.now - started
                let object = try JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView)) as? [String: Any]
                return (elapsed, object?["numhits"] as? Int ?? -1)
            }
            try await eventually("the cluster indexed everything", timeout: .seconds(600)) {
                (try? await ask(""))?.1 == documents
            }
            for (name, queries) in try QueryKinds.load(directory) {
                for query in queries.prefix(20) { _ = try await ask(query) }
                var latencies: [Double] = []
                for query in Array(repeating: queries, count: rounds).joined() {
                    let (elapsed, _) = try await ask(query)
                    latencies.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
                }
                latencies.sort()
                print(
                    "query \(name) p50_ms=\(String(format: "%.3f", latencies[latencies.count / 2])) p90_ms=\(String(format: "%.3f", latencies[latencies.count * 9 / 10])) p99_ms=\(String(format: "%.3f", latencies[latencies.count * 99 / 100]))")
            }
            group.cancelAll()
        }
    }
}

/// The query lists: single terms, and pairs of terms joined by AND and by OR.
enum QueryKinds {
    static func load(_ directory: String) throws -> [(name: String, queries: [String])] {
        let singles = try String(contentsOfFile: directory + "/queries-1.txt", encoding: .utf8).split(separator: "\n").map(String.init)
        let pairs = try String(contentsOfFile: directory + "/queries-2.txt", encoding: .utf8).split(separator: "\n")
        return [
            ("single-term", singles), ("two-term-and", pairs.map { $0.split(separator: " ").joined(separator: " AND ") }),
            ("two-term-or", pairs.map { $0.split(separator: " ").joined(separator: " OR ") }),
        ]
    }
}
