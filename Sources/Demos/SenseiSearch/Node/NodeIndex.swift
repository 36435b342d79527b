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
    private let state: Mutex<State>

    struct State: @unchecked Sendable {  // the indexes are only touched under the mutex
        var indexes: [Int: PartitionIndex]
        var report = IngestReport()
        var searchesByPartition: [Int: Int] = [:]
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
        var indexes: [Int: PartitionIndex] = [:]
        for partition in partitions {
            let index = PartitionIndex(schema: schema)
            for line in try store.documents(partition: partition) {
                // Stored lines were valid when indexed; a schema change can make one invalid.
                if let document = try? SearchDocument(jsonLine: line, schema: schema) { index.add(document) }
            }
            indexes[partition] = index
        }
        state = Mutex(State(indexes: indexes))
    }

    /// Where the gateway should continue for this node.
    public var gatewayPosition: FileGateway.Position { store.position() }

    public var report: IngestReport { state.withLock { $0.report } }

    /// The number of documents this node holds (all its partitions).
    public var documentCount: Int { state.withLock { $0.indexes.values.reduce(0) { $0 + $1.liveCount } } }

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
        state.withLock { state in
            for (partition, document) in accepted { state.indexes[partition]!.add(document) }
            state.report.indexed += batch.indexed
            state.report.skipped += batch.skipped
            state.report.malformed += batch.malformed
        }
        return batch
    }

    /// Searches `request.partitions` (those this node holds; all of them when nil) and combines
    /// the partitions' results. A requested partition this node does not hold adds an error.
    public func search(_ request: SearchRequest) throws -> SearchResult {
        let wanted = request.partitions ?? partitions
        var results: [SearchResult] = []
        var errors: [SearchResult.SearchError] = []
        try state.withLock { state in
            for partition in wanted {
                guard let index = state.indexes[partition] else {
                    errors.append(.init(errorType: "PartitionCallError", message: "partition \(partition) is not on this node", errorCode: 251))
                    continue
                }
                results.append(try index.search(request))
                state.searchesByPartition[partition, default: 0] += 1
            }
        }
        var combined = ResultMerger.combineOnNode(results, request: request)
        combined.errors += errors
        return combined
    }

    /// The source documents of `uids` that this node holds.
    public func documents(uids: [String]) -> [String: String] {
        state.withLock { state in
            var found: [String: String] = [:]
            for uid in uids {
                for index in state.indexes.values { if let document = index.document(uid: uid) { found[uid] = document.source } }
            }
            return found
        }
    }
}
