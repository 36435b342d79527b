import Coordination
import DemoSupport
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import Synchronization
import ZooKeeper

/// The coordinator's side of two-phase commit, with group commit: operations that arrive while a
/// round runs wait for the next one, and one round carries them all, under the cluster lock.
/// Rounds that follow each other keep the lock from one to the next; a round that finds another
/// contender queued for the lock (a join, an admin operation) releases it when it ends, so the
/// contender gets it between two rounds, and so does the last round before the queue runs dry.
///
/// 1. read the members and ZooKeeper's record of the databases named, and plan the round
///    (``RoundPlan``: an operation that cannot apply fails alone);
/// 2. prepare: every member votes on the whole round (one fsync each); members that fail or time
///    out are expelled, and the round aborts if the coordinator itself cannot prepare or they
///    cannot be expelled;
/// 3. record the round's outcome in ZooKeeper, one multi-operation fenced by the lock: the commit
///    point (a record that fails aborts the round; one whose answer is lost leaves the outcome
///    to ZooKeeper's record, and the clients are told it is unknown);
/// 4. commit on the members that voted (expelling those that fail), wait out the standing lease if
///    anyone was expelled, then acknowledge every operation of the round.
final class CommitCoordinator: Sendable {
    private let context: NodeContext
    private let participant: Participant
    /// Makes this node leave the cluster to resync (it failed its own part of a round).
    private let stepDown: @Sendable () async -> Void
    private let queue: GroupCommitQueue<ClusterOperation, DatabaseVersion?>
    /// How many operations the rounds carried.
    let statistics = BatchSizes()
    /// The release of the last round's lock, which runs while its writes are acknowledged; the
    /// next round waits for it before it takes the lock again.
    private let lastRelease = Mutex<Task<Void, Never>?>(nil)
    /// The lock kept after a round for the next one (nobody else waited for it).
    private let keptLease = Mutex<LockLease?>(nil)

    /// How long a member may keep serving after it was expelled (its standing lease).
    private let standingLease: Duration

    init(context: NodeContext, participant: Participant, standingLease: Duration, stepDown: @escaping @Sendable () async -> Void) {
        self.context = context
        self.participant = participant
        self.standingLease = standingLease
        self.stepDown = stepDown
        // A round's prepare carries at most one client body's worth, framing included.
        queue = GroupCommitQueue(maxWeight: StardogHTTP.maxBody, weigh: ReplicationWire.weight(of:))
    }

    /// Commits `operation` in the next round; its database's new version (nil: dropped).
    func submit(_ operation: ClusterOperation) async throws -> DatabaseVersion? {
        try await submit([operation])[0].get()
    }

    /// Commits `operations` (forwarded together) in the next round, together when they fit in
    /// one: each one's database's new version (nil: dropped), or why it failed.
    func submit(_ operations: [ClusterOperation]) async -> [Result<DatabaseVersion?, any Error>] {
        // A forwarded one too: a round's prepare must stay within what members accept.
        var results: [Result<DatabaseVersion?, any Error>?] = operations.map { operation in
            do {
                try operation.checkSize()
                return nil
            } catch {
                return .failure(error)
            }
        }
        let accepted = results.indices.filter { results[$0] == nil }
        let outcomes = await queue.submit(
            accepted.map { operations[$0] }, round: { take in await self.runRound(take) }, whenIdle: { self.releaseKeptLease() })
        for (position, outcome) in zip(accepted, outcomes) { results[position] = outcome }
        return results.map { $0! }
    }

    /// Releases the lock kept for a next round (none is coming).
    private func releaseKeptLease() {
        guard let kept = keptLease.withLock({ $0.take() }) else { return }
        lastRelease.withLock { $0 = Task { await kept.release() } }
    }

    /// The lock for a round: the one the last round kept, or a new hold.
    private func leaseForRound() async throws -> LockLease {
        if let kept = keptLease.withLock({ $0.take() }) {
            if kept.isHeld { return kept }
            await kept.release()  // lost with the session: its node is gone or going
        }
        await lastRelease.withLock { $0.take() }?.value
        return try await context.lock.acquire(timeout: context.configuration.commitTimeout * 4)
    }

    private var logger: Logger { context.logger }

    /// One round, under the cluster lock: the operations queued once the lock is held (those that
    /// arrive while it is being taken join), a result for each.
    private func runRound(_ take: @Sendable () -> [ClusterOperation]) async -> [Result<DatabaseVersion?, any Error>] {
        let lease: LockLease
        do { lease = try await leaseForRound() } catch {
            let operations = take()
            context.metrics.aborts.increment(by: operations.count)
            return operations.map { _ in .failure(ReplicatedError(.transactionAborted, "could not take the cluster lock: \(error)")) }
        }
        let operations = take()
        let started = ContinuousClock.now
        var results: [Result<DatabaseVersion?, any Error>]
        var othersWaitForTheLock = true
        do {
            results = try await runUnderLock(operations, lease: lease, othersWaitForTheLock: &othersWaitForTheLock)
        } catch {
            results = operations.map { _ in .failure(error) }
            othersWaitForTheLock = true  // a failed round lets go of the lock
        }
        // The round is over (recorded, applied, expelled members waited out): its writes are
        // acknowledged while the lock is released, or kept for the next round.
        if othersWaitForTheLock {
            lastRelease.withLock { $0 = Task { await lease.release() } }
        } else {
            keptLease.withLock { $0 = lease }
        }
        let committed = results.count { (try? $0.get()) != nil }
        context.metrics.commits.increment(by: committed)
        context.metrics.aborts.increment(by: results.count - committed)
        context.metrics.commitDuration.record(ContinuousClock.now - started)
        context.metrics.roundSize.record(operations.count)
        statistics.record(batchOf: operations.count)
        return results
    }

    /// Runs a round holding `lease`; `othersWaitForTheLock` tells whether anyone else queued for
    /// the cluster lock by the time the round read the cluster's state.
    private func runUnderLock(
        _ operations: [ClusterOperation], lease: LockLease, othersWaitForTheLock: inout Bool
    ) async throws -> [Result<DatabaseVersion?, any Error>] {
        let client = context.client
        let layout = context.layout
        // The reads go out together (the server answers a session's requests in order).
        async let readOnly = client.exists(layout.readOnly)
        async let members = layout.readMembers(client)
        async let recorded = Self.readRecords(of: Set(operations.map(\.database)), layout: layout, client: client)
        async let contenders = client.getChildren(layout.lock)
        othersWaitForTheLock = try await contenders.names.contains { layout.lock + "/" + $0 != lease.node.path }
        if try await readOnly != nil {
            throw ReplicatedError(.readOnly, "the cluster is in read-only mode (DELETE /admin/cluster/readonly to leave it)")
        }
        let (currentMembers, records) = try await (members, recorded)
        guard currentMembers.contains(context.id) else { throw ReplicatedNode.notInCluster }
        return try await planAndCommit(operations, members: currentMembers, recorded: records, lease: lease)
    }

    private static func readRecords(of databases: Set<String>, layout: ClusterLayout, client: ZooKeeperClient) async throws -> RecordedCatalog {
        try await withThrowingTaskGroup(of: (String, RecordedDatabase?).self) { group in
            for database in databases { group.addTask { (database, try await layout.readDatabase(client, database)) } }
            var recorded = RecordedCatalog()
            for try await (database, entry) in group {
                guard let entry else { continue }
                recorded.catalog[database] = entry.version
                recorded.znodeVersions[database] = entry.znodeVersion
            }
            return recorded
        }
    }

    /// Plans the round against `recorded` and commits what can go ahead.
    private func planAndCommit(
        _ operations: [ClusterOperation], members: Set<String>, recorded: RecordedCatalog, lease: LockLease
    ) async throws -> [Result<DatabaseVersion?, any Error>] {
        let malformed = try await runOffPool { Self.malformed(operations) }
        let plan = RoundPlan.plan(operations, malformed: malformed, recorded: recorded.catalog) { UUID().uuidString.lowercased() }
        var results: [Result<DatabaseVersion?, any Error>] = operations.map { _ in .failure(ReplicatedError(.transactionAborted, "not planned")) }
        for (position, error) in plan.rejected { results[position] = .failure(error) }
        guard !plan.prepared.isEmpty else { return results }

        let batch = PreparedBatch(operations: plan.prepared, round: UUID().uuidString, fencingToken: lease.fencingToken)
        try await commit(batch, changes: plan.recordChanges(recorded: recorded.catalog), recorded: recorded, members: members, lease: lease)
        for (position, prepared) in zip(plan.positions, plan.prepared) { results[position] = .success(prepared.next) }
        return results
    }

    /// Transactions whose data does not parse, by position.
    private static func malformed(_ operations: [ClusterOperation]) -> [Int: ReplicatedError] {
        var malformed: [Int: ReplicatedError] = [:]
        for (position, operation) in operations.enumerated() where operation.kind == .transaction {
            do {
                _ = try LocalStore.parse(operation.add)
                _ = try LocalStore.parse(operation.remove)
            } catch let error as ReplicatedError {
                malformed[position] = error
            } catch {
                malformed[position] = ReplicatedError(.malformedRDF, "\(error)")
            }
        }
        return malformed
    }

    /// Prepares, records and commits `batch` on `members`; throws when the round does not commit
    /// (or commits without this node being able to acknowledge it).
    private func commit(
        _ batch: PreparedBatch, changes: [RecordChange], recorded: RecordedCatalog, members: Set<String>, lease: LockLease
    ) async throws {
        let decision = ReplicationWire.encode(RoundDecision(round: batch.round))
        var expelled: [String] = []

        // Phase 1: every member votes on the whole round (durably).
        let encoded = ReplicationWire.encode(batch)
        let votes = await askAll(members, path: "/admin/replication/prepare", body: encoded) {
            try await self.participant.prepare(batch, encoded: encoded)
        }
        let afterPrepare = CommitRound.afterPrepare(coordinator: context.id, answers: votes)
        guard afterPrepare.proceeds else {
            _ = await askAll(members, path: "/admin/replication/abort", body: decision) { try await self.participant.abort(round: batch.round) }
            logger.error("aborting: \(afterPrepare.abortReason ?? "")")
            await stepDown()
            throw ReplicatedError(.transactionAborted, afterPrepare.abortReason ?? "aborted")
        }
        do {
            try await expel(afterPrepare.expel, reasons: votes, lease: lease)
        } catch {
            // Nothing is recorded: the round aborts, and the votes are withdrawn now rather than
            // left for the next prepare (or twice the commit timeout) to decide.
            _ = await askAll(members, path: "/admin/replication/abort", body: decision) { try await self.participant.abort(round: batch.round) }
            throw ReplicatedError(.transactionAborted, "members that failed the prepare could not be expelled (\(error)); nothing was committed")
        }
        expelled += afterPrepare.expel
        if let pause = context.configuration.faultInjection.pauseBeforeRecord, batch.operations.contains(where: { $0.operation.kind == .transaction }) {
            logger.notice(
                "test hook: every member voted yes; pausing before the record",
                metadata: ["replicated.pause": "\(pause)", "replicated.operations": "\(batch.operations.count)"])
            try await Task.sleep(for: pause)
        }

        // The commit point: ZooKeeper records the round's outcome (only while we hold the lock).
        let record = try changes.map { change -> MultiOperation in
            switch change {
            case .create(let database, let version):
                return .create(path: context.layout.database(database), data: try JSONEncoder().encode(version).bytes, acl: context.layout.acl)
            case .update(let database, let version):
                return .setData(path: context.layout.database(database), data: try JSONEncoder().encode(version).bytes, version: recorded.znodeVersions[database])
            case .delete(let database):
                return .delete(path: context.layout.database(database), version: recorded.znodeVersions[database])
            }
        }
        do {
            if !record.isEmpty { _ = try await lease.fencedMulti(record) }
        } catch let error as ZooKeeperError where error.isRetryable {
            // The record may or may not have been made: the members keep their votes and decide
            // them from ZooKeeper's record later (at the next prepare, or when they time out).
            // Not "aborted": a client that retried could commit the same change twice.
            throw ReplicatedError(
                .outcomeUnknown, "the decision could not be confirmed in ZooKeeper (\(error)); ZooKeeper's record decides it: read before retrying")
        } catch {
            // Not recorded (the lock is gone, or the record changed under us): abort this round
            // (only this round: a later coordinator's votes are left alone).
            let survivors = members.subtracting(expelled)
            _ = await askAll(survivors, path: "/admin/replication/abort", body: decision) { try await self.participant.abort(round: batch.round) }
            throw ReplicatedError(.transactionAborted, "could not record the decision in ZooKeeper (\(error)); nothing was committed")
        }

        // Phase 2: every member that voted yes applies it.
        let survivors = members.subtracting(expelled)
        let acks = await askAll(survivors, path: "/admin/replication/commit", body: decision) {
            try await self.participant.commit(round: batch.round)
        }
        if case .failed(let reason) = acks[context.id] {
            // The decision stands (it is recorded), but this node does not have it: it leaves the
            // cluster to resync, and cannot acknowledge what it cannot show.
            await stepDown()
            throw ReplicatedError(
                .outcomeUnknown,
                "the operation is recorded as committed, but the coordinator could not apply it (\(reason)) and leaves the cluster to resync: read from another node before retrying")
        }
        let failedCommits = CommitRound.afterCommit(answers: acks)
        do {
            try await expel(failedCommits, reasons: acks, lease: lease)
        } catch {
            throw ReplicatedError(
                .outcomeUnknown,
                "the operation is recorded as committed, but members that did not apply it could not be expelled (\(error)), so it is not acknowledged: read before retrying")
        }
        expelled += failedCommits
        if !expelled.isEmpty {
            // An expelled node stops serving within the standing lease: wait it out before the
            // acknowledgement, so nobody reads from it what the cluster has moved past.
            try await Task.sleep(for: standingLease)
        }
    }

    /// Sends the same request to every member at once (this node runs `local`); the answers,
    /// failures and timeouts included.
    private func askAll(
        _ members: Set<String>, path: String, body: ByteBuffer, local: @escaping @Sendable () async throws -> Void
    ) async -> [String: CommitRound.Answer] {
        let timeout = context.configuration.commitTimeout
        let (id, peers) = (context.id, context.peers)
        return await withTaskGroup(of: (String, CommitRound.Answer).self) { group in
            for member in members {
                group.addTask {
                    do {
                        if member == id {
                            try await local()
                        } else {
                            try await peers.expectingSuccess(.POST, member, path, body: body, contentType: ReplicationWire.contentType, timeout: timeout)
                        }
                        return (member, .yes)
                    } catch {
                        return (member, .failed("\(error)"))
                    }
                }
            }
            var answers: [String: CommitRound.Answer] = [:]
            for await (member, answer) in group { answers[member] = answer }
            return answers
        }
    }

    /// Removes members from the cluster (their znodes; fenced by the lock).
    private func expel(_ members: [String], reasons: [String: CommitRound.Answer], lease: LockLease) async throws {
        for member in members where member != context.id {
            context.metrics.expelled.increment()
            logger.warning("expelling a node", metadata: ["replicated.node": "\(member)", "replicated.reason": "\(reasons[member].map { "\($0)" } ?? "")"])
            do {
                _ = try await lease.fencedMulti([.delete(path: context.layout.member(member))])
            } catch let error as ZooKeeperError where error.code == .noNode && error.failedOperationIndex == 1 {}
        }
    }
}
