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
    }

    /// Where the gateway should continue for this node.
    public var gatewayPosition: FileGateway.Position { store.position() }

    public var report: IngestReport { state.withLock { $0.report } }

    /// The number of documents this node holds (all its partitions).
    public var documentCount: Int { indexes.values.reduce(0) { count, partition in count + partition.withIndex(\.liveCount) } }

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
        state.withLock { state in
            state.report.indexed += batch.indexed
            state.report.skipped += batch.skipped
            state.report.malformed += batch.malformed
        }
        return batch
    }

    /// Searches `request.partitions` (those this node holds; all of them when nil) in parallel and
    /// combines their results. A partition that has not answered within `timeout` (Sensei's
    /// `sensei.node.partition.timeout`) or that this node does not hold contributes nothing and an
    /// error. (A single partition is searched in place and dropped if it overran.)
    /// - Throws: ``RequestError`` or ``QueryParseError`` when the request itself is wrong.
    public func search(_ request: SearchRequest, timeout: Duration = .seconds(8)) async throws -> SearchResult {
        try request.validated(against: schema)
        let wanted = request.partitions ?? partitions
        var errors: [SearchResult.SearchError] = []
        for partition in wanted where indexes[partition] == nil {
            errors.append(.init(errorType: "PartitionCallError", message: "partition \(partition) is not on this node", errorCode: 251))
        }
        let held = wanted.filter { indexes[$0] != nil }
        let outcomes = held.count == 1 ? Self.searchInline(indexes[held[0]]!, partition: held[0], request, timeout: timeout) : await withTaskGroup(of: PartitionOutcome.self) { group in
            for partition in held {
                let slot = indexes[partition]!
                group.addTask {
                    // Searching is CPU work: on a thread of its own, so a timeout can be noticed.
                    await withCheckedContinuation { continuation in
                        DispatchQueue.global().async {
                            do {
                                continuation.resume(returning: PartitionOutcome(partition: partition, result: try slot.withIndex { try $0.search(request) }))
                            } catch {
                                continuation.resume(returning: PartitionOutcome(partition: partition, failure: "\(error)", isRequestError: error is RequestError || error is QueryParseError))
                            }
                        }
                    }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return PartitionOutcome(partition: -1)
            }
            var outcomes: [PartitionOutcome] = []
            for await outcome in group {
                if outcome.partition == -1 { break }
                outcomes.append(outcome)
                if outcomes.count == held.count { break }
            }
            group.cancelAll()
            return outcomes
        }
        if let wrong = outcomes.first(where: \.isRequestError) { throw RequestError(wrong.failure ?? "bad request") }
        var results: [SearchResult] = []
        state.withLock { state in
            for outcome in outcomes where outcome.result != nil { state.searchesByPartition[outcome.partition, default: 0] += 1 }
        }
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

    /// One partition needs no other thread or timer (they cost more than a small search): it is
    /// searched here, and left out as late if it took longer than `timeout`.
    private static func searchInline(_ slot: LockedPartition, partition: Int, _ request: SearchRequest, timeout: Duration) -> [PartitionOutcome] {
        let started = ContinuousClock.now
        do {
            let result = try slot.withIndex { try $0.search(request) }
            return ContinuousClock.now - started > timeout ? [] : [PartitionOutcome(partition: partition, result: result)]
        } catch {
            return [PartitionOutcome(partition: partition, failure: "\(error)", isRequestError: error is RequestError || error is QueryParseError)]
        }
    }

    /// One partition's part of a search (a struct: see ``SearchBroker/NodeOutcome``).
    struct PartitionOutcome: Sendable {
        var partition: Int
        var result: SearchResult?
        var failure: String?
        var isRequestError = false
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
