import DemoSupport
import Foundation
import Logging
import Synchronization

/// A search node's partitions: the in-memory indexes, their store on disk, and the ingestion of
/// gateway lines (each line parsed, its partition computed, kept only if the partition is this
/// node's; a malformed line is counted and logged, never fatal).
public final class NodeIndex: Sendable {
    public let schema: SearchSchema
    public let partitions: [Int]
    public let partitionCount: Int
    public let sharding: ShardingStrategy
    let store: PartitionStore
    let logger: Logger
    /// Each partition under its own lock, so that a node searches its partitions in parallel.
    private let indexes: [Int: LockedPartition]
    private let state = Mutex(State())

    struct State {
        var report = IngestReport()
        var searchesByPartition: [Int: Int] = [:]
        /// Live documents per partition, kept so that asking never waits for a search.
        var documentsByPartition: [Int: Int] = [:]
        /// The gateway position consumed (the store's, kept in memory).
        var gatewayPosition = FileGateway.Position()
    }

    final class LockedPartition: @unchecked Sendable {  // the index is only touched under the lock
        private let lock = NSLock()
        private let index: PartitionIndex

        init(_ index: PartitionIndex) { self.index = index }

        func withIndex<T>(_ body: (PartitionIndex) throws -> T) rethrows -> T {
            try lock.withLock { try body(index) }
        }
    }

    /// How many searches each partition has answered (which replica the brokers pick).
    public var searchesByPartition: [Int: Int] { state.withLock { $0.searchesByPartition } }

    /// Counters of everything ingested since the node started.
    public struct IngestReport: Sendable, Hashable {
        public var indexed = 0
        /// Lines for partitions of other nodes.
        public var skipped = 0
        public var malformed = 0
    }

    /// Opens (or creates) the store under `directory` and loads every partition from it.
    public init(schema: SearchSchema, partitions: [Int], partitionCount: Int, sharding: ShardingStrategy, directory: String, logger: Logger) throws {
        self.schema = schema
        self.partitions = partitions
        self.partitionCount = partitionCount
        self.sharding = sharding
        self.logger = logger
        store = try PartitionStore(directory: directory, partitions: partitions)
        var indexes: [Int: LockedPartition] = [:]
        for partition in partitions {
            let index = PartitionIndex(schema: schema)
            for line in try store.documents(partition: partition) {
                // Stored lines were valid when indexed; a schema change can make one invalid.
                if let document = try? SearchDocument(jsonLine: line, schema: schema) { index.add(document) }
            }
            indexes[partition] = LockedPartition(index)
        }
        self.indexes = indexes
        let (counts, position) = (indexes.mapValues { $0.withIndex(\.liveCount) }, store.position())
        state.withLock { state in
            state.documentsByPartition = counts
            state.gatewayPosition = position
        }
    }

    /// Where the gateway should continue for this node.
    public var gatewayPosition: FileGateway.Position { state.withLock { $0.gatewayPosition } }

    public var report: IngestReport { state.withLock { $0.report } }

    /// The number of documents this node holds (all its partitions).
    public var documentCount: Int { state.withLock { $0.documentsByPartition.values.reduce(0, +) } }

    /// The number of documents per partition.
    public var documentsByPartition: [Int: Int] { state.withLock { $0.documentsByPartition } }

    /// Reads the next lines (at most `maxLines`) of `gateway` from this index's position and
    /// ingests them; how many lines it read (0 at the end). Blocking: file I/O and indexing.
    @discardableResult
    public func ingestNextBatch(from gateway: FileGateway, maxLines: Int = 10_000) throws -> Int {
        let (lines, next) = try gateway.read(from: gatewayPosition, maxLines: maxLines)
        if lines.isEmpty { return 0 }
        try ingest(lines, next: next)
        return lines.count
    }

    /// Indexes a batch of gateway lines, stores the accepted ones, and records `next` as consumed.
    @discardableResult
    public func ingest(_ lines: [FileGateway.Line], next: FileGateway.Position) throws -> IngestReport {
        var batch = IngestReport()
        var accepted: [(partition: Int, document: SearchDocument)] = []
        for line in lines where !line.text.allSatisfy(\.isWhitespace) {
            do {
                let document = try SearchDocument(jsonLine: line.text, schema: schema)
                guard let partition = sharding.partition(uid: document.uid, partitionCount: partitionCount) else {
                    throw SearchDocument.Error(description: "uid \(document.uid) is not an integer (sensei.sharding.strategy=hash shards any uid)")
                }
                if partitions.contains(partition) { accepted.append((partition, document)) } else { batch.skipped += 1 }
            } catch {
                batch.malformed += 1
                logger.warning("skipped a malformed gateway line", metadata: ["search.line": "\(line.number)", "search.error": "\(error)"])
            }
        }
        var lines: [Int: [String]] = [:]
        for (partition, document) in accepted { lines[partition, default: []].append(document.source) }
        try store.append(lines, consumedUpTo: next)
        batch.indexed = accepted.count
        for (partition, document) in accepted { indexes[partition]!.withIndex { $0.add(document) } }
        let counts = indexes.mapValues { $0.withIndex(\.liveCount) }
        state.withLock { state in
            state.documentsByPartition = counts
            state.gatewayPosition = next
            state.report.indexed += batch.indexed
            state.report.skipped += batch.skipped
            state.report.malformed += batch.malformed
        }
        return batch
    }

    /// Searches `request.partitions` (those this node holds; all of them when nil) in parallel,
    /// each on a thread of its own, and combines their results. A partition that has not answered
    /// within `timeout` (Sensei's `sensei.node.partition.timeout`) is not waited for: it
    /// contributes nothing and an `ExecutionTimeout` error; one this node does not hold, a
    /// `PartitionCallError`.
    /// - Throws: ``RequestError`` or ``QueryParseError`` when the request itself is wrong.
    public func search(_ request: SearchRequest, timeout: Duration = .seconds(8)) async throws -> SearchResult {
        let query = try request.validated(against: schema)
        let wanted = request.partitions ?? partitions
        var errors: [SearchResult.SearchError] = []
        for partition in wanted where indexes[partition] == nil {
            errors.append(.init(errorType: "PartitionCallError", message: "partition \(partition) is not on this node", errorCode: 251))
        }
        let held = wanted.filter { indexes[$0] != nil }
        let outcomes = await withTaskGroup(of: PartitionOutcome?.self) { group in
            for partition in held {
                let slot = indexes[partition]!
                group.addTask {
                    await runOffPoolUnlessCancelled {
                        do {
                            return PartitionOutcome(partition: partition, result: try slot.withIndex { try $0.search(request, query: query) })
                        } catch {
                            return PartitionOutcome(partition: partition, failure: "\(error)")
                        }
                    }
                }
            }
            group.addTask {
                try? await eventLoopSleep(for: timeout)
                return nil
            }
            var outcomes: [PartitionOutcome] = []
            while outcomes.count < held.count, let next = await group.next(), let outcome = next { outcomes.append(outcome) }
            group.cancelAll()  // the late partitions' waits end at once
            return outcomes
        }
        state.withLock { state in
            for outcome in outcomes where outcome.result != nil { state.searchesByPartition[outcome.partition, default: 0] += 1 }
        }
        var results: [SearchResult] = []
        for outcome in outcomes.sorted(by: { $0.partition < $1.partition }) {
            if let result = outcome.result { results.append(result) } else {
                errors.append(.init(errorType: "BoboExecutionError", message: "partition \(outcome.partition): \(outcome.failure ?? "failed")", errorCode: 500))
            }
        }
        for partition in held where !outcomes.contains(where: { $0.partition == partition }) {
            errors.append(.init(errorType: "ExecutionTimeout", message: "partition \(partition) did not answer within \(timeout)", errorCode: 500))
        }
        var combined = ResultMerger.combineOnNode(results, request: request)
        combined.errors += errors
        return combined
    }

    /// Runs `body` holding `partition`'s lock (tests stall a partition with it).
    func withPartitionHeld<T>(_ partition: Int, _ body: () throws -> T) rethrows -> T {
        try indexes[partition]!.withIndex { _ in try body() }
    }

    /// One partition's part of a search (a struct, not a tuple: see ``SearchBroker/NodeOutcome``).
    struct PartitionOutcome: Sendable {
        var partition: Int
        var result: SearchResult?
        var failure: String?
    }

    /// The source documents of `uids` that this node holds.
    public func documents(uids: [String]) -> [String: String] {
        var found: [String: String] = [:]
        for partition in indexes.values {
            partition.withIndex { index in
                for uid in uids { if let document = index.document(uid: uid) { found[uid] = document.source } }
            }
        }
        return found
    }
}
