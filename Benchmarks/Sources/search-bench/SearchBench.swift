import ArgumentParser
import DemoSupport
import Foundation
import Logging
import SenseiSearch
import ZooKeeperTesting

/// The search (Sensei) demo's measurements, compared with SQLite FTS5 by run-search-fts5.sh.
@main
struct SearchBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search-bench", abstract: "Measurements of the search (Sensei) demo.",
        subcommands: [Corpus.self, Index.self, Restart.self])

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
/// documents per second, median of `repeats`;
/// a restart: the time to open the same directory again (segments read back) until it can search;
/// and queries in process on the reopened node: p50 and p99 per mix and kind.
struct Index: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time indexing docs.jsonl.")
    @Option var directory = NSTemporaryDirectory() + "search-bench"
    @Option var repeats = 3
    @Option(help: "Index into this directory and keep it (to profile a restart with `restart`); implies one repeat.") var keep: String?
    @Option(help: "Lines mix<TAB>kind<TAB>query to ask in process (default: the frequency-weighted mix of queries-1.txt and queries-2.txt).")
    var queries: String?
    @Option(help: "Write each query's hit count here, one a line, in the order of the queries.") var hitsFile: String?

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
        // The queries in process on the one node (no HTTP, all three partitions): one pass to warm,
        // then one measured, query by query.
        let queries = try QueryKinds.load(directory, file: self.queries)
        var latencies: [String: [Double]] = [:]
        var order: [String] = []
        var hits: [String] = []
        for measured in [false, true] {
            for query in queries {
                var request = SearchRequest()
                request.query = query.query
                let started = ContinuousClock.now
                let result = try await lastNode!.search(request)
                let elapsed = ContinuousClock.now - started
                guard measured else { continue }
                let key = "mix=\(query.mix) kind=\(query.kind)"
                if latencies[key] == nil { order.append(key) }
                latencies[key, default: []].append(Self.seconds(elapsed) * 1000)
                hits.append("\(result.numhits)")
            }
        }
        for key in order {
            let sorted = latencies[key]!.sorted()
            print(
                "in-process \(key) queries=\(sorted.count) p50_ms=\(String(format: "%.3f", sorted[sorted.count / 2])) p99_ms=\(String(format: "%.3f", sorted[sorted.count * 99 / 100]))"
            )
        }
        if let hitsFile { try (hits.joined(separator: "\n") + "\n").write(toFile: hitsFile, atomically: true, encoding: .utf8) }
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

/// The query lists, as (mix, kind, query) triples: the lines `mix<TAB>kind<TAB>query` of `file`,
/// or without one the frequency-weighted mix that `corpus` wrote (single terms from queries-1.txt, pairs
/// from queries-2.txt joined by AND and by OR).
enum QueryKinds {
    typealias Query = (mix: String, kind: String, query: String)

    static func load(_ directory: String, file: String?) throws -> [Query] {
        if let file {
            return try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map { line in
                let fields = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
                guard fields.count == 3 else { throw ValidationError("\(file): not mix<TAB>kind<TAB>query: \(line)") }
                return (fields[0], fields[1], fields[2])
            }
        }
        let singles = try String(contentsOfFile: directory + "/queries-1.txt", encoding: .utf8).split(separator: "\n").map(String.init)
        let pairs = try String(contentsOfFile: directory + "/queries-2.txt", encoding: .utf8).split(separator: "\n")
        return singles.map { ("frequency-weighted", "single-term", $0) }
            + pairs.map { ("frequency-weighted", "two-term-and", $0.split(separator: " ").joined(separator: " AND ")) }
            + pairs.map { ("frequency-weighted", "two-term-or", $0.split(separator: " ").joined(separator: " OR ")) }
    }
}
