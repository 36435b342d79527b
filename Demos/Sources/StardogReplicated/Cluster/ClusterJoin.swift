import Coordination
import DemoSupport
import Foundation
import ZooKeeper

/// How a node becomes a member: under the cluster lock it decides its undecided vote, compares
/// what it has with ZooKeeper's record (``JoinPlan``), copies what it lacks from a live member and
/// registers its member znode. `pack.node.join.retry.count` attempts; the first
/// `pack.node.join.unlocked.attempts` copy without holding the lock, later ones while holding it
/// (unless `pack.node.join.lock.never`). An attempt that copied without the lock is followed at
/// once by the next; one that was refused or failed, after `pack.node.join.retry.delay`. A node
/// that never locks keeps copying, the delay apart, for as long as it gets closer (fewer
/// databases differ from ZooKeeper's record than at its last copy): those attempts do not count.
struct ClusterJoin: Sendable {
    let context: NodeContext
    let participant: Participant

    /// Every attempt refused (or the last refused) for the reason given.
    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    private var configuration: StardogConfiguration { context.configuration }

    /// Joins; returns once this node is registered, with the instant the registration was sent
    /// (the start of the node's standing: it was a member from no later than that).
    /// - Throws: ``Refused`` after the last attempt, `CancellationError`, or a ZooKeeper error
    ///   the caller may wait out.
    func join() async throws -> ContinuousClock.Instant {
        try await removeRegistration()
        let attempts = configuration.joinRetryCount
        var lastRefusal: String?
        var attempt = 0
        var counted = 0  // attempts that count toward pack.node.join.retry.count
        var lastDiffering = Int.max  // databases that differed at the last copy without the lock
        while counted < attempts {
            attempt += 1
            counted += 1
            let underLock = JoinPlan.syncsUnderLock(
                attempt: attempt, unlockedAttempts: configuration.joinUnlockedAttempts, neverLock: configuration.joinNeverLocks)
            context.metrics.joinAttempts.increment()
            do {
                let differing: Int
                switch try await joinAttempt(attempt, underLock: underLock) {
                case .registered(let registeredAt): return registeredAt
                case .copiedWithoutLock(let count): differing = count
                }
                // Copied without the lock. A node that may lock compares again at once (what
                // changed meanwhile is little; waiting the retry delay let continuous writes keep
                // it behind until it locked). One that never locks waits the delay, so as not to
                // copy back to back; while it gets closer, its attempts are not used up (a copy
                // that keeps it as far behind, under continuous writes, is).
                if configuration.joinNeverLocks {
                    if differing < lastDiffering { counted -= 1 }
                    lastDiffering = differing
                    if counted < attempts { try await Task.sleep(for: configuration.joinRetryDelay) }
                }
                continue
            } catch let refused as Refused {
                // In a full restart a node can start before the nodes it needs: keep trying. The
                // reason is said once (and again only if it changes), not once per attempt.
                if refused.description != lastRefusal {
                    lastRefusal = refused.description
                    context.logger.warning(
                        "the cluster refuses this node's join (attempt \(counted) of \(attempts), retried every \(configuration.joinRetryDelay)): \(refused.description)")
                } else {
                    context.logger.debug("join attempt \(attempt) refused again for the same reason")
                }
                guard counted < attempts else {
                    throw Refused(description: "could not join the cluster after \(attempts) attempts (pack.node.join.retry.count); the reason is logged above")
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                context.logger.warning("join attempt \(attempt) failed: \(error)")
            }
            if counted < attempts { try await Task.sleep(for: configuration.joinRetryDelay) }
        }
        throw Refused(description: "could not join the cluster after \(attempts) attempts (pack.node.join.retry.count)")
    }

    /// Deletes this node's member znode before a join: one an earlier process left (its session
    /// not expired yet; this process holds the node's port, so that process is gone), or this
    /// process's own after it stepped down.
    private func removeRegistration() async throws {
        let client = context.client
        let path = context.layout.member(context.id)
        guard let stat = try await client.exists(path) else { return }
        if stat.ephemeralOwner != client.state.session?.sessionID {
            context.logger.notice("removing this node's registration left by an earlier process", metadata: ["replicated.session": "\(stat.ephemeralOwner)"])
        }
        try await client.deleteIfExists(path)
    }

    /// How an attempt that was not refused ended.
    private enum AttemptOutcome {
        /// Registered: the instant the registration was sent.
        case registered(ContinuousClock.Instant)
        /// Copied what differed (this many databases) without the lock; not registered.
        case copiedWithoutLock(differing: Int)
    }

    /// One attempt.
    private func joinAttempt(_ attempt: Int, underLock: Bool) async throws -> AttemptOutcome {
        let (client, layout, store, logger) = (context.client, context.layout, context.store, context.logger)
        let lease = try await context.lock.acquire(timeout: configuration.commitTimeout * 4)
        do {
            let recorded = try await layout.readCatalog(client)
            try await participant.resolveUndecided(against: recorded?.catalog, reason: "joining")
            let others = try await layout.readMembers(client).subtracting([context.id])
            let registeredAt: ContinuousClock.Instant
            switch JoinPlan.decide(recorded: recorded?.catalog, local: store.catalog, liveMembers: others.count) {
            case .formCluster:
                var operations: [MultiOperation] = [.create(path: layout.databases, acl: layout.acl)]
                for (name, version) in store.catalog.sorted(by: { $0.key < $1.key }) {
                    operations.append(.create(path: layout.database(name), data: try JSONEncoder().encode(version).bytes, acl: layout.acl))
                }
                _ = try await lease.fencedMulti(operations)
                logger.notice("formed a new cluster", metadata: ["replicated.catalog": "\(JoinPlan.describe(store.catalog))"])
                registeredAt = try await register(lease)
            case .register:
                registeredAt = try await register(lease)
            case .refuse(let message):
                throw Refused(description: message)  // the lock is released below
            case .sync(let fetch, let drop):
                if underLock {
                    logger.notice("join attempt \(attempt): syncing while holding the cluster lock", metadata: ["replicated.fetch": "\(fetch)", "replicated.drop": "\(drop)"])
                    try await sync(fetch: fetch, drop: drop, from: others, recorded: recorded?.catalog)
                    guard store.catalog == recorded?.catalog else {
                        throw ReplicatedError(.outOfSync, "the copies do not match ZooKeeper's record")
                    }
                    registeredAt = try await register(lease)
                } else {
                    await lease.release()
                    logger.notice("join attempt \(attempt): syncing without the cluster lock", metadata: ["replicated.fetch": "\(fetch)", "replicated.drop": "\(drop)"])
                    try await sync(fetch: fetch, drop: drop, from: others)
                    return .copiedWithoutLock(differing: fetch.count + drop.count)
                }
            }
            await lease.release()
            return .registered(registeredAt)
        } catch {
            await lease.release()
            throw error
        }
    }

    /// Publishes this node's member znode (fenced by the lock); the instant it was sent.
    private func register(_ lease: LockLease) async throws -> ContinuousClock.Instant {
        let client = context.client
        let path = context.layout.member(context.id)
        for _ in 0..<2 {
            let sent = ContinuousClock.now
            do {
                _ = try await lease.fencedMulti([.create(path: path, mode: .ephemeral, acl: context.layout.acl)])
                return sent
            } catch let error as ZooKeeperError where error.code == .nodeExists {
                if let stat = try await client.exists(path), stat.ephemeralOwner == client.state.session?.sessionID { return sent }
                try? await client.delete(path)  // an earlier process's (or session's) node
            }
        }
        throw ReplicatedError(.notInCluster, "could not register \(path)")
    }

    /// Copies `fetch` from a live member, removes `drop`. With `recorded` (under the lock, where
    /// the record cannot move), a member whose copy is at another version than recorded (it has
    /// not decided its last vote yet) is passed over for the next one.
    private func sync(fetch: [String], drop: [String], from members: Set<String>, recorded: Catalog? = nil) async throws {
        let (store, logger) = (context.store, context.logger)
        for name in drop {
            try await runOffPool { try store.drop(name) }
            logger.info("removed a database the cluster does not have", metadata: ["replicated.db": "\(name)"])
        }
        for name in fetch {
            if let delay = configuration.faultInjection.syncDelay { try await Task.sleep(for: delay) }
            var lastError: (any Error)?
            for address in members.shuffled() {
                do {
                    let reply = try await context.peers.call(.GET, address, "/admin/replication/snapshot/\(name)", timeout: .seconds(60))
                    guard reply.status == 200 else { throw PeerCalls.error(from: reply, peer: address) }
                    guard let header = reply.headers.first(name: "X-Replicated-Version"),
                        let version = try? JSONDecoder().decode(DatabaseVersion.self, from: Data(header.utf8))
                    else { throw ReplicatedError(.storage, "\(address) sent a copy of \(name) without its version") }
                    if let wanted = recorded?[name], version != wanted {
                        throw ReplicatedError(.outOfSync, "\(address) has \(name) at \(version), ZooKeeper records \(wanted)")
                    }
                    let body = String(buffer: reply.body)
                    try await runOffPool { try store.install(name, version: version, ntriples: body) }
                    context.metrics.databasesCopied.increment()
                    logger.info("copied a database", metadata: ["replicated.db": "\(name)", "replicated.from": "\(address)", "replicated.version": "\(version)"])
                    lastError = nil
                    break
                } catch {
                    lastError = error
                }
            }
            if let lastError { throw lastError }
        }
    }
}
