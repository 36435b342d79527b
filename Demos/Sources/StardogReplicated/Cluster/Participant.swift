import DemoSupport
import Foundation
import NIOCore
import Synchronization

/// A member's side of two-phase commit: it votes (durably) on a coordinator's round, applies or
/// forgets the round on the decision, and decides a vote left undecided from ZooKeeper's record
/// (committed exactly when the record shows what the round produces).
final class Participant: Sendable {
    private let context: NodeContext
    /// The highest coordinator fencing token seen in a prepare.
    private let highestFencingToken = Mutex<Int64>(0)

    init(context: NodeContext) {
        self.context = context
    }

    /// Votes on `batch`. An undecided vote of an earlier coordinator (a lower fencing token) is
    /// decided from ZooKeeper's record first: the new coordinator holds the lock, so that round is
    /// over. A prepare from an earlier coordinator than one already seen is refused. `encoded` is
    /// `batch` as ``ReplicationWire`` encodes it (the prepare request's body), written as the vote.
    func prepare(_ batch: PreparedBatch, encoded: ByteBuffer) async throws {
        if try await runOffPool({ try self.prepareAtOnce(batch, encoded: encoded) }) { return }
        if let pending = context.store.prepared, pending.round != batch.round {
            guard batch.fencingToken > pending.fencingToken else {
                throw ReplicatedError(.outOfSync, "a round of the same coordinator term is still undecided here")
            }
            try await resolveUndecided(reason: "a later coordinator's prepare came")
        }
        if try await runOffPool({ try self.prepareAtOnce(batch, encoded: encoded) }) { return }
        // Another prepare came in between and left its own vote undecided.
        let pending = context.store.prepared?.round ?? "unknown"
        throw ReplicatedError(.outOfSync, "an earlier round (\(pending)) is still undecided here")
    }

    /// Votes on `batch` on the calling thread (it blocks for the vote's write) unless an undecided
    /// vote of another round must be decided first: `false` then, and nothing done.
    func prepareAtOnce(_ batch: PreparedBatch, encoded: ByteBuffer) throws -> Bool {
        let highest = highestFencingToken.withLock { $0 }
        guard batch.fencingToken >= highest else {
            throw ReplicatedError(.outOfSync, "a prepare from an earlier coordinator (token \(batch.fencingToken) < \(highest))")
        }
        if let pending = context.store.prepared, pending.round != batch.round { return false }
        highestFencingToken.withLock { $0 = max($0, batch.fencingToken) }
        try context.store.prepare(batch, encoded: encoded)
        return true
    }

    func commit(round: String) async throws {
        try await runOffPool { try self.commitAtOnce(round: round) }
    }

    /// ``commit(round:)`` on the calling thread (it blocks for the log's write).
    func commitAtOnce(round: String) throws {
        if let failure = try context.store.commitPrepared(round: round) {
            // The round is applied; only the folding of a log into a snapshot or the vote log's
            // checkpoint failed (tried again at the next commit).
            context.logger.warning("could not fold a log into a snapshot or checkpoint the vote log", metadata: ["replicated.error": "\(failure)"])
        }
    }

    func abort(round: String) async throws {
        let store = context.store
        try await runOffPool { try store.abortPrepared(round: round) }
    }

    /// Decides a vote left undecided longer than twice the commit timeout, under the cluster lock:
    /// a coordinator holds the lock for its whole round, so once this node has it, the round that
    /// left the vote is over and its record final.
    func decideStaleVote() async {
        let timeout = context.configuration.commitTimeout
        guard let preparedAt = context.store.preparedAt, ContinuousClock.now - preparedAt > timeout * 2 else { return }
        guard let lease = try? await context.lock.acquire(timeout: timeout) else { return }
        try? await resolveUndecided(reason: "no decision came")
        await lease.release()
    }

    /// Decides this node's undecided vote from ZooKeeper's record of its databases.
    func resolveUndecided(reason: String) async throws {
        guard let prepared = context.store.prepared else { return }
        // `sync` first: the server this node reads from may lag behind the one the coordinator
        // recorded the round on, and a record read too early would abort a committed round here.
        try await context.client.sync(context.layout.members)
        guard try await context.client.exists(context.layout.databases) != nil else {
            return try await resolveUndecided(against: nil, reason: reason)
        }
        var recorded: Catalog = [:]
        for outcome in prepared.outcome {
            recorded[outcome.database] = try await context.layout.readDatabase(context.client, outcome.database)?.version
        }
        try await resolveUndecided(against: recorded, reason: reason)
    }

    /// Decides this node's undecided vote from `recorded`, a catalog just read from ZooKeeper.
    /// With no record at all (`nil`: ZooKeeper holds no cluster, so no round can have been
    /// committed there), the vote is aborted: against an empty record, a round that only drops
    /// databases would look committed.
    func resolveUndecided(against recorded: Catalog?, reason: String) async throws {
        guard let prepared = context.store.prepared else { return }
        let store = context.store
        let committed = try await runOffPool { () throws -> Bool? in
            guard let recorded else {
                try store.abortPrepared(round: prepared.round)
                return false
            }
            return try store.resolvePrepared { recorded[$0] }
        }
        context.logger.notice(
            recorded == nil ? "aborted an undecided vote: ZooKeeper holds no cluster record" : "decided an undecided vote from ZooKeeper's record",
            metadata: [
                "replicated.round": "\(prepared.round)", "replicated.operations": "\(prepared.operations.count)",
                "replicated.committed": "\(committed ?? false)", "replicated.reason": "\(reason)",
            ])
    }
}
