import AsyncHTTPClient
@_spi(Concurrency) import Coordination
import DemoSupport
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import ZooKeeper

/// One member of the replicated cluster (a `Service`): it joins (syncing what it lacks), serves
/// reads while it is a member in good standing, forwards writes to the coordinator, takes part
/// in two-phase commits, campaigns to be the coordinator, and rejoins after it is expelled.
///
/// The protocol (documented in `Documentation/RunningAReplicatedCluster.md`):
/// - **Commit** (the coordinator, under the cluster lock): prepare on every member (each fsyncs
///   its vote), expel those that fail or time out, record the database's new version in
///   ZooKeeper (the commit point, fenced by the lock), commit on the rest (expelling failures),
///   wait out the standing lease if anyone was expelled, then acknowledge.
/// - **Standing**: a member serves only while connected and while its own member znode was seen
///   within ``standingLease``; the coordinator waits that long after expelling before it
///   acknowledges, so an expelled node has stopped serving by then.
/// - **Undecided votes** are decided from ZooKeeper's record (committed exactly when it shows
///   the version the vote produces): at join, before the next prepare, and when one is older
///   than twice the commit timeout.
public final class ReplicatedNode: Service, Sendable {
    public let configuration: StardogConfiguration
    /// This node's id in the cluster: its address.
    public let id: String
    let logger: Logger
    let layout: ClusterLayout
    let store: LocalStore
    let client: ZooKeeperClient
    let http: HTTPClient
    let peers: PeerCalls
    let election: LeaderElection
    let lock: DistributedLock
    let hooks: TestHooks
    let metrics = ReplicatedMetrics()
    /// One cluster operation at a time from this process (then the ZooKeeper lock).
    let coordinating = AsyncLock()

    /// How long a confirmation of membership lets this node serve.
    public static let standingLease: Duration = .seconds(1)
    static let confirmInterval: Duration = .milliseconds(250)

    struct State: Sendable {
        /// When this node last saw its own member znode; nil while it is not a member (joining,
        /// expelled, stepped down).
        var memberConfirmedAt: ContinuousClock.Instant?
        /// Set when this node steps down: the standing loop ends the membership.
        var steppedDown = false
        var isCoordinator = false
        /// The coordinator the election names now (nil while there is none).
        var coordinatorAddress: String?
        /// Set (with the new address) when the election names a coordinator other than the last
        /// one named, then replaced: a forwarded operation waits on it.
        var coordinatorReplaced = Latch<String>()
        var transactions: [String: TransactionBuffer] = [:]
        /// The highest coordinator fencing token seen in a prepare.
        var highestFencingToken: Int64 = 0
    }
    let state = Mutex(State())
    /// Set once the HTTP server listens (this process holds the node's port).
    private let serverRunning = Latch<Bool>()
    /// Runs the node's parts until a shutdown (SIGTERM, or the cluster's shutdown request).
    private let lifetime: NodeLifetime

    /// Test-only fault points, from the environment (documented in RunningAReplicatedCluster.md).
    struct TestHooks: Sendable {
        /// `REPLICATED_TEST_PAUSE_BEFORE_RECORD_MS`: for transactions (not database changes), the
        /// coordinator waits this long after every member voted yes, before recording the
        /// decision (a window to kill it in).
        var pauseBeforeRecord: Duration?
        /// `REPLICATED_TEST_SYNC_DELAY_MS`: a joining node waits this long per database it copies.
        var syncDelay: Duration?

        init(environment: [String: String] = ProcessInfo.processInfo.environment) {
            pauseBeforeRecord = environment["REPLICATED_TEST_PAUSE_BEFORE_RECORD_MS"].flatMap(Int64.init).map { .milliseconds($0) }
            syncDelay = environment["REPLICATED_TEST_SYNC_DELAY_MS"].flatMap(Int64.init).map { .milliseconds($0) }
        }
    }

    /// Opens the local store and prepares the ZooKeeper client (not connected yet).
    public init(configuration: StardogConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        id = configuration.nodeAddress
        layout = ClusterLayout(clusterName: configuration.clusterName, user: configuration.zookeeperUser, password: configuration.zookeeperPassword)
        store = try LocalStore(home: configuration.home)
        client = try NodeZooKeeper.client(
            connectString: configuration.zookeeperAddress, setting: "pack.zookeeper.address", sessionTimeout: configuration.sessionTimeout,
            connectionTimeout: configuration.connectionTimeout,
            credentials: [.init(user: configuration.zookeeperUser, password: configuration.zookeeperPassword)], logger: logger)
        http = HTTPClient(eventLoopGroupProvider: .singleton)
        peers = PeerCalls(http: http)
        var electionConfiguration = LeaderElection.Configuration()
        electionConfiguration.acl = layout.acl
        election = LeaderElection(client: client, path: layout.election, participantID: id, configuration: electionConfiguration)
        var lockConfiguration = DistributedLock.Configuration()
        lockConfiguration.acl = layout.acl
        lock = DistributedLock(client: client, path: layout.lock, configuration: lockConfiguration)
        hooks = TestHooks()
        lifetime = NodeLifetime(logger: logger)
    }

    // MARK: Running

    public func run() async throws {
        do {
            try await NodeZooKeeper.connect(client, setting: "pack.zookeeper.address")
            try await client.createPath(layout.members, acl: layout.acl)
        } catch {
            await close()
            if error is ConfigurationError { throw error }
            throw ConfigurationError("cannot use ZooKeeper at \(configuration.zookeeperAddress) (pack.zookeeper.address): \(error)")
        }
        let app = Application(
            router: StardogHTTP.router(node: self),
            configuration: .init(address: .hostname("0.0.0.0", port: configuration.httpPort), serverName: "replicated"),
            onServerRunning: { [self] _ in
                serverRunning.set(true)
                logger.info("serving HTTP", metadata: ["replicated.port": "\(configuration.httpPort)"])
            },
            logger: logger)
        try await lifetime.run { group in
            group.addTask {
                // The HTTP server stops gracefully (in-flight answers finish, connections close)
                // when the node stops: it runs in a service group of its own that is asked to shut
                // down, not cancelled (a cancelled server logs its channels' cancellation as errors).
                var serviceConfiguration = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [], logger: self.logger)
                serviceConfiguration.maximumGracefulShutdownDuration = .seconds(5)  // then the answers under way are cut
                let services = ServiceGroup(configuration: serviceConfiguration)
                let serving = Task { try await services.run() }
                try await withTaskCancellationHandler {
                    try await serving.value
                } onCancel: {
                    Task { await services.triggerGracefulShutdown() }
                }
            }
            group.addTask { try await self.lifecycle() }
        } cleanUp: {
            await leave()
            await close()
        }
    }

    /// Asks the node to stop (as `SIGTERM` does).
    public func shutDown() { lifetime.requestStop() }

    private func close() async {
        try? await http.shutdown()
        await client.close()
    }

    /// Joins, serves as a member until it loses its standing, and joins again. A lost connection
    /// or an expired session on the way only delays the next join; the node stops on shutdown,
    /// on a refused join, and on ZooKeeper errors that waiting cannot mend.
    func lifecycle() async throws {
        guard await serverRunning.wait() != nil else { throw CancellationError() }
        while !Task.isCancelled {
            do {
                try await removeRegistration()
                try await join()
            } catch let error as ZooKeeperError where error.isTransient {
                logger.warning("cannot join while ZooKeeper is unreachable; waiting for the session", metadata: ["replicated.error": "\(error)"])
                try await Task.sleep(for: .milliseconds(100))
                try await client.waitUntilConnected()
                continue
            }
            state.withLock {
                $0.memberConfirmedAt = .now
                $0.steppedDown = false
            }
            logger.info("joined the cluster", metadata: ["replicated.catalog": "\(JoinPlan.describe(store.catalog))"])
            do {
                try await serveAsMember()
            } catch let error as ZooKeeperError where error.isTransient {
                logger.warning("lost ZooKeeper while serving", metadata: ["replicated.error": "\(error)"])
            }
            leaveMembership()
            if Task.isCancelled { return }  // the node is stopping: it leaves, it has not lost its place
            metrics.membershipLost.increment()
            logger.warning("this node is no longer a member (expelled, stepped down, or its session ended); it will sync and rejoin")
        }
    }

    /// Stops serving as a member (nothing is answered until the next join).
    private func leaveMembership() {
        state.withLock {
            $0.memberConfirmedAt = nil
            $0.isCoordinator = false
        }
    }

    /// Campaigns for coordinator, follows who coordinates, and keeps confirming the membership;
    /// returns when the membership is lost.
    private func serveAsMember() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.keepStanding() }
            group.addTask {
                while !Task.isCancelled {
                    do {
                        try await self.election.whileLeader(payload: Array(self.id.utf8)) { _ in
                            self.state.withLock { $0.isCoordinator = true }
                            self.logger.notice("this node is the coordinator")
                            defer { self.state.withLock { $0.isCoordinator = false } }
                            while true { try await Task.sleep(for: .seconds(3600)) }
                        }
                    } catch is CancellationError {
                        return
                    } catch {
                        self.logger.warning("coordinator campaign ended: \(error)")
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                }
            }
            group.addTask {
                for try await leader in self.election.observe() {
                    self.coordinatorNamed(leader.leader.map { String(decoding: $0.payload, as: UTF8.self) })
                }
            }
            _ = try await group.next()
            group.cancelAll()
        }
        state.withLock { $0.isCoordinator = false }
    }

    /// Records the coordinator the election names; a new one (not merely none for a while)
    /// releases the operations forwarded to its predecessor.
    private func coordinatorNamed(_ address: String?) {
        state.withLock { state in
            let previous = state.coordinatorAddress
            state.coordinatorAddress = address
            guard let address, address != previous else { return }
            state.coordinatorReplaced.set(address)
            state.coordinatorReplaced = Latch()
        }
    }

    /// Confirms every ``confirmInterval`` that this node's member znode is still there and ours;
    /// returns when it is not. Also decides a vote left undecided for too long.
    private func keepStanding() async throws {
        while true {
            try await Task.sleep(for: Self.confirmInterval)
            guard !state.withLock({ $0.steppedDown }), try await confirmStanding() != false else { return }
            if let preparedAt = store.preparedAt, ContinuousClock.now - preparedAt > configuration.commitTimeout * 2 {
                // Only under the cluster lock: a coordinator holds it for its whole round, so
                // once we have it, the round that left this vote is over and its record final.
                if let lease = try? await lock.acquire(timeout: configuration.commitTimeout) {
                    try? await resolveUndecided(reason: "no decision came")
                    await lease.release()
                }
            }
        }
    }

    /// `true`: confirmed; `false`: the membership is gone; `nil`: no answer (not connected).
    private func confirmStanding() async throws -> Bool? {
        guard let session = client.state.session, client.state.isConnected else { return nil }
        let sent = ContinuousClock.now
        do {
            // `sync` first: the server we read from may lag behind the leader, and must not show
            // us a member znode the coordinator already deleted.
            try await client.sync(layout.members)
            guard let stat = try await client.exists(layout.member(id)), stat.ephemeralOwner == session.sessionID else { return false }
            state.withLock { if $0.memberConfirmedAt != nil { $0.memberConfirmedAt = sent } }
            return true
        } catch let error as ZooKeeperError where error.isTransient {
            return nil
        }
    }

    /// Whether this node may answer requests: a member, connected, with its membership confirmed
    /// within the lease (confirmed now when the last confirmation is older, e.g. after a pause).
    public func inGoodStanding() async -> Bool {
        guard let confirmedAt = state.withLock({ $0.memberConfirmedAt }), client.state.isConnected else { return false }
        if ContinuousClock.now - confirmedAt < Self.standingLease { return true }
        return (try? await confirmStanding()) == true
    }

    public var isCoordinator: Bool { state.withLock { $0.isCoordinator && $0.memberConfirmedAt != nil } }

    /// The coordinator in good standing (what `/admin/cluster/coordinator` answers).
    public func isCoordinatorInGoodStanding() async -> Bool { await inGoodStanding() && isCoordinator }

    /// Deletes this node's member znode before a join: one an earlier process left (its session
    /// not expired yet; this process holds the node's port, so that process is gone), or this
    /// process's own after it stepped down.
    private func removeRegistration() async throws {
        let path = layout.member(id)
        guard let stat = try await client.exists(path) else { return }
        if stat.ephemeralOwner != client.state.session?.sessionID {
            logger.notice("removing this node's registration left by an earlier process", metadata: ["replicated.session": "\(stat.ephemeralOwner)"])
        }
        try await client.deleteIfExists(path)
    }

    /// Leaves on shutdown: resigns and deletes the member znode.
    private func leave() async {
        guard client.state.isConnected else { return }
        try? await client.delete(layout.member(id))
    }

    // MARK: Joining

    struct JoinRefused: Error, CustomStringConvertible {
        var description: String
    }

    /// The join loop: up to `pack.node.join.retry.count` attempts, `pack.node.join.retry.delay`
    /// apart. Each takes the cluster lock, compares, and registers if nothing is missing; if
    /// something is, it copies it without the lock (the first `unlocked.attempts` attempts) or
    /// while holding it (later ones, unless `lock.never`).
    private func join() async throws {
        let attempts = configuration.joinRetryCount
        var lastRefusal: String?
        for attempt in 1...attempts {
            let underLock = JoinPlan.syncsUnderLock(
                attempt: attempt, unlockedAttempts: configuration.joinUnlockedAttempts, neverLock: configuration.joinNeverLocks)
            metrics.joinAttempts.increment()
            do {
                if try await joinAttempt(attempt, underLock: underLock) { return }
            } catch let refused as JoinRefused {
                // In a full restart a node can start before the nodes it needs: keep trying. The
                // reason is said once (and again only if it changes), not once per attempt.
                if refused.description != lastRefusal {
                    lastRefusal = refused.description
                    logger.warning("the cluster refuses this node's join (attempt \(attempt) of \(attempts), retried every \(configuration.joinRetryDelay)): \(refused.description)")
                } else {
                    logger.debug("join attempt \(attempt) refused again for the same reason")
                }
                guard attempt < attempts else {
                    throw JoinRefused(description: "could not join the cluster after \(attempts) attempts (pack.node.join.retry.count); the reason is logged above")
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.warning("join attempt \(attempt) failed: \(error)")
            }
            if attempt < attempts { try await Task.sleep(for: configuration.joinRetryDelay) }
        }
        throw JoinRefused(description: "could not join the cluster after \(attempts) attempts (pack.node.join.retry.count)")
    }

    /// One attempt; true when registered.
    private func joinAttempt(_ attempt: Int, underLock: Bool) async throws -> Bool {
        let lease = try await lock.acquire(timeout: configuration.commitTimeout * 4)
        do {
            let recorded = try await layout.readCatalog(client)
            try await resolveUndecided(recorded: recorded?.catalog, reason: "joining")
            let others = try await layout.readMembers(client).subtracting([id])
            let decision = JoinPlan.decide(recorded: recorded?.catalog, local: store.catalog, liveMembers: others.count)
            switch decision {
            case .formCluster:
                var operations: [MultiOperation] = [.create(path: layout.databases, acl: layout.acl)]
                for (name, version) in store.catalog.sorted(by: { $0.key < $1.key }) {
                    operations.append(.create(path: layout.database(name), data: try JSONEncoder().encode(version).bytes, acl: layout.acl))
                }
                _ = try await lease.fencedMulti(operations)
                logger.notice("formed a new cluster", metadata: ["replicated.catalog": "\(JoinPlan.describe(store.catalog))"])
                try await register(lease)
            case .register:
                try await register(lease)
            case .refuse(let message):
                await lease.release()
                throw JoinRefused(description: message)
            case .sync(let fetch, let drop):
                if underLock {
                    logger.notice("join attempt \(attempt): syncing while holding the cluster lock", metadata: ["replicated.fetch": "\(fetch)", "replicated.drop": "\(drop)"])
                    try await sync(fetch: fetch, drop: drop, from: others)
                    guard store.catalog == recorded?.catalog else {
                        throw ReplicatedError(.outOfSync, "the copies do not match ZooKeeper's record")
                    }
                    try await register(lease)
                } else {
                    await lease.release()
                    logger.notice("join attempt \(attempt): syncing without the cluster lock", metadata: ["replicated.fetch": "\(fetch)", "replicated.drop": "\(drop)"])
                    try await sync(fetch: fetch, drop: drop, from: others)
                    return false
                }
            }
            await lease.release()
            return true
        } catch {
            await lease.release()
            throw error
        }
    }

    /// Publishes this node's member znode (fenced by the lock).
    private func register(_ lease: LockLease) async throws {
        let path = layout.member(id)
        for _ in 0..<2 {
            do {
                _ = try await lease.fencedMulti([.create(path: path, mode: .ephemeral, acl: layout.acl)])
                return
            } catch let error as ZooKeeperError where error.code == .nodeExists {
                if let stat = try await client.exists(path), stat.ephemeralOwner == client.state.session?.sessionID { return }
                try? await client.delete(path)  // an earlier process's (or session's) node
            }
        }
        throw ReplicatedError(.notInCluster, "could not register \(path)")
    }

    /// Copies `fetch` from a live member, removes `drop`.
    private func sync(fetch: [String], drop: [String], from members: Set<String>) async throws {
        for name in drop {
            try await runOffPool { [store] in try store.drop(name) }
            logger.info("removed a database the cluster does not have", metadata: ["replicated.db": "\(name)"])
        }
        for name in fetch {
            if let delay = hooks.syncDelay { try await Task.sleep(for: delay) }
            var lastError: (any Error)?
            for address in members.shuffled() {
                do {
                    let reply = try await peers.call(.GET, address, "/admin/replication/snapshot/\(name)", timeout: .seconds(60))
                    guard reply.status == 200 else { throw PeerCalls.error(from: reply, peer: address) }
                    guard let header = reply.headers.first(name: "X-Replicated-Version"),
                        let version = try? JSONDecoder().decode(DatabaseVersion.self, from: Data(header.utf8))
                    else { throw ReplicatedError(.storage, "\(address) sent a copy of \(name) without its version") }
                    let body = String(decoding: reply.body, as: UTF8.self)
                    try await runOffPool { [store] in try store.install(name, version: version, ntriples: body) }
                    metrics.databasesCopied.increment()
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

    // MARK: Undecided votes

    /// Decides this node's undecided vote from ZooKeeper's record.
    func resolveUndecided(recorded: Catalog?? = nil, reason: String) async throws {
        guard let prepared = store.prepared else { return }
        let version: DatabaseVersion?
        if let recorded {
            version = recorded?[prepared.operation.database]
        } else {
            version = try await layout.readDatabase(client, prepared.operation.database)?.0
        }
        let committed = try await runOffPool { [store] in try store.resolvePrepared { _ in version } }
        logger.notice(
            "decided an undecided vote from ZooKeeper's record",
            metadata: ["replicated.db": "\(prepared.operation.database)", "replicated.committed": "\(committed ?? false)", "replicated.reason": "\(reason)"])
    }

    // MARK: Participant

    /// Votes on `prepared`. An undecided vote of an earlier coordinator (a lower fencing token)
    /// is decided from ZooKeeper's record first: the new coordinator holds the lock, so that
    /// round is over. A prepare from an earlier coordinator than one already seen is refused.
    func prepare(_ prepared: PreparedOperation) async throws {
        let highest = state.withLock { $0.highestFencingToken }
        guard prepared.fencingToken >= highest else {
            throw ReplicatedError(.outOfSync, "a prepare from an earlier coordinator (token \(prepared.fencingToken) < \(highest))")
        }
        if let pending = store.prepared, pending.round != prepared.round {
            guard prepared.fencingToken > pending.fencingToken else {
                throw ReplicatedError(.outOfSync, "an operation of the same coordinator term is still undecided here")
            }
            try await resolveUndecided(reason: "a later coordinator's prepare came")
        }
        state.withLock { $0.highestFencingToken = max($0.highestFencingToken, prepared.fencingToken) }
        try await runOffPool { [store] in try store.prepare(prepared) }
    }

    func commitPrepared(round: String) async throws {
        try await runOffPool { [store] in try store.commitPrepared(round: round) }
    }

    func abortPrepared(round: String) async throws {
        try await runOffPool { [store] in try store.abortPrepared(round: round) }
    }

    // MARK: Transactions on the receiving node

    /// An open transaction untouched this long is rolled back.
    public static let transactionIdleTimeout: Duration = .seconds(600)
    /// At most this many open transactions per node.
    public static let maxOpenTransactions = 10_000

    public func beginTransaction(database: String) async throws -> String {
        guard await inGoodStanding() else { throw Self.notInCluster }
        guard store.version(of: database) != nil else { throw LocalStore.unknown(database) }
        let id = UUID().uuidString.lowercased()
        try state.withLock { state in
            let now = ContinuousClock.now
            state.transactions = state.transactions.filter { now - $0.value.lastUsed < Self.transactionIdleTimeout }
            guard state.transactions.count < Self.maxOpenTransactions else {
                throw ReplicatedError(.tooManyTransactions, "\(Self.maxOpenTransactions) transactions are open on this node; commit or roll back some")
            }
            state.transactions[id] = TransactionBuffer(database: database)
        }
        return id
    }

    /// Adds to or removes from an open transaction.
    public func change(database: String, transaction: String, adding: Bool, ntriples: String) async throws {
        let triples = try await runOffPool { try LocalStore.parse(ntriples) }
        try state.withLock { state in
            guard var buffer = state.transactions[transaction], buffer.database == database else {
                throw ReplicatedError(.unknownTransaction, "unknown transaction '\(transaction)' on database '\(database)'")
            }
            guard !buffer.isCommitting else { throw ReplicatedError(.transactionBusy, "transaction \(transaction) is being committed") }
            guard buffer.bodyBytes + ntriples.utf8.count <= StardogHTTP.maxBody else {
                throw ReplicatedError(.bodyTooLarge, "transaction \(transaction) would exceed \(StardogHTTP.maxBody) bytes")
            }
            if adding { buffer.add(triples, bytes: ntriples.utf8.count) } else { buffer.remove(triples, bytes: ntriples.utf8.count) }
            state.transactions[transaction] = buffer
        }
    }

    /// Commits an open transaction through the coordinator. On failure it stays open (commit
    /// again, or roll back).
    public func commitTransaction(database: String, transaction: String) async throws -> DatabaseVersion? {
        let buffer = try state.withLock { state -> TransactionBuffer in
            guard var buffer = state.transactions[transaction], buffer.database == database else {
                throw ReplicatedError(.unknownTransaction, "unknown transaction '\(transaction)' on database '\(database)'")
            }
            guard !buffer.isCommitting else { throw ReplicatedError(.transactionBusy, "transaction \(transaction) is being committed") }
            buffer.isCommitting = true
            state.transactions[transaction] = buffer
            return buffer
        }
        let (add, remove) = buffer.netEffect
        let operation = ClusterOperation(kind: .transaction, database: database, add: NTriples.serialize(add), remove: NTriples.serialize(remove))
        do {
            let next = try await submit(operation)
            state.withLock { _ = $0.transactions.removeValue(forKey: transaction) }
            return next
        } catch {
            state.withLock { state in
                state.transactions[transaction]?.isCommitting = false
                state.transactions[transaction]?.lastUsed = .now
            }
            throw error
        }
    }

    public func rollbackTransaction(database: String, transaction: String) throws {
        try state.withLock { state in
            guard let buffer = state.transactions[transaction], buffer.database == database else {
                throw ReplicatedError(.unknownTransaction, "unknown transaction '\(transaction)' on database '\(database)'")
            }
            guard !buffer.isCommitting else { throw ReplicatedError(.transactionBusy, "transaction \(transaction) is being committed") }
            state.transactions[transaction] = nil
        }
    }

    static let notInCluster = ReplicatedError(.notInCluster, "this node is not a synced member of the cluster (joining, expelled, or without ZooKeeper)")

    /// Runs `operation` on the cluster: here when this node coordinates, otherwise forwarded to
    /// the coordinator.
    public func submit(_ operation: ClusterOperation) async throws -> DatabaseVersion? {
        guard await inGoodStanding() else { throw Self.notInCluster }
        let (address, replaced) = try await coordinatorAddress(until: .now + configuration.commitTimeout * 2)
        if address == id { return try await coordinateUnchecked(operation) }
        let body = try JSONEncoder().encode(operation)
        do {
            return try await withThrowingTaskGroup(of: DatabaseVersion?.self) { group in
                group.addTask {
                    try await self.peers.json(
                        OperationResult.self, .POST, address, "/admin/replication/operation", body: body,
                        timeout: self.configuration.commitTimeout * 4
                    ).next
                }
                group.addTask {
                    // A coordinator elected meanwhile means the one we wait for lost its term:
                    // its answer may never come.
                    var latch = replaced
                    while let successor = await latch.wait() {
                        if successor != address {
                            throw ReplicatedError(
                                .outcomeUnknown,
                                "the coordinator \(address) stopped answering and \(successor) was elected meanwhile: the operation may or may not have been committed; read before retrying (the transaction is still open)")
                        }
                        latch = self.state.withLock { $0.coordinatorReplaced }
                    }
                    throw CancellationError()
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } catch let error as ReplicatedError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ReplicatedError(
                .outcomeUnknown,
                "the coordinator \(address) failed or did not answer during the operation (\(error)): it may or may not have been committed; read before retrying (the transaction is still open)")
        }
    }

    /// The coordinator's address: the one last observed, or the next leader the election reports
    /// (an election is under way), until `deadline`; with the latch that a successor sets.
    private func coordinatorAddress(until deadline: ContinuousClock.Instant) async throws -> (String, Latch<String>) {
        let (known, replaced) = state.withLock { ($0.coordinatorAddress, $0.coordinatorReplaced) }
        if let known { return (known, replaced) }
        let found = try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask {
                for try await leader in self.election.observe() {
                    if case .leader(let leader) = leader { return String(decoding: leader.payload, as: UTF8.self) }
                }
                return nil
            }
            group.addTask {
                try await Task.sleep(until: deadline)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let found else { throw ReplicatedError(.transactionAborted, "no coordinator is available; retry") }
        return (found, replaced)
    }

    // MARK: Coordinator

    /// Two-phase commit of `operation` over every member, under the cluster lock.
    func coordinate(_ operation: ClusterOperation) async throws -> DatabaseVersion? {
        guard isCoordinator else { throw ReplicatedError(.transactionAborted, "\(id) is not the coordinator; retry") }
        return try await coordinateUnchecked(operation)
    }

    /// ``coordinate(_:)`` without the check that the term has started here (the election already
    /// names this node; the cluster lock and its fencing keep any overlap safe).
    private func coordinateUnchecked(_ operation: ClusterOperation) async throws -> DatabaseVersion? {
        try await coordinating.withLock {
            let lease: LockLease
            do { lease = try await lock.acquire(timeout: configuration.commitTimeout * 4) } catch {
                throw ReplicatedError(.transactionAborted, "could not take the cluster lock: \(error)")
            }
            let started = ContinuousClock.now
            do {
                let next = try await coordinateUnderLock(operation, lease: lease)
                await lease.release()
                metrics.commits.increment()
                metrics.commitDuration.record(ContinuousClock.now - started)
                return next
            } catch {
                await lease.release()
                metrics.aborts.increment()
                throw error
            }
        }
    }

    private func coordinateUnderLock(_ operation: ClusterOperation, lease: LockLease) async throws -> DatabaseVersion? {
        if try await client.exists(layout.readOnly) != nil {
            throw ReplicatedError(.readOnly, "the cluster is in read-only mode (DELETE /admin/cluster/readonly to leave it)")
        }
        let members = try await layout.readMembers(client)
        guard members.contains(id) else { throw Self.notInCluster }
        let recorded = try await layout.readDatabase(client, operation.database)
        let next: DatabaseVersion?
        switch operation.kind {
        case .transaction:
            guard let recorded else { throw LocalStore.unknown(operation.database) }
            next = DatabaseVersion(seq: recorded.0.seq + 1, txId: UUID().uuidString.lowercased())
        case .createDatabase:
            guard recorded == nil else { throw ReplicatedError(.databaseExists, "database '\(operation.database)' already exists") }
            next = DatabaseVersion(seq: 0, txId: UUID().uuidString.lowercased())
        case .dropDatabase:
            guard recorded != nil else { throw LocalStore.unknown(operation.database) }
            next = nil
        }
        let prepared = PreparedOperation(operation: operation, previous: recorded?.0, next: next, fencingToken: lease.fencingToken)
        let decision = try JSONEncoder().encode(RoundDecision(round: prepared.round))
        var expelled: [String] = []

        // Phase 1: every member votes (durably).
        let votes = await askAll(members, path: "/admin/replication/prepare", body: try JSONEncoder().encode(prepared)) {
            try await self.prepare(prepared)
        }
        let round = CommitRound.afterPrepare(coordinator: id, answers: votes)
        guard round.proceeds else {
            _ = await askAll(members, path: "/admin/replication/abort", body: decision) { try await self.abortPrepared(round: prepared.round) }
            logger.error("aborting: \(round.abortReason ?? "")")
            await stepDown()
            throw ReplicatedError(.transactionAborted, round.abortReason ?? "aborted")
        }
        try await expel(round.expel, reasons: votes, lease: lease)
        expelled += round.expel
        if let pause = hooks.pauseBeforeRecord, operation.kind == .transaction {
            logger.notice("test hook: every member voted yes; pausing before the record", metadata: ["replicated.pause": "\(pause)"])
            try await Task.sleep(for: pause)
        }

        // The commit point: ZooKeeper records the database's new version (only while we hold the lock).
        let record: MultiOperation
        switch operation.kind {
        case .transaction: record = .setData(path: layout.database(operation.database), data: try JSONEncoder().encode(next).bytes, version: recorded?.1)
        case .createDatabase: record = .create(path: layout.database(operation.database), data: try JSONEncoder().encode(next).bytes, acl: layout.acl)
        case .dropDatabase: record = .delete(path: layout.database(operation.database), version: recorded?.1)
        }
        do {
            _ = try await lease.fencedMulti([record])
        } catch let error as ZooKeeperError where error.isRetryable {
            // The record may or may not have been made: the members keep their votes and decide
            // them from ZooKeeper's record later (at the next prepare, or when they time out).
            throw ReplicatedError(
                .transactionAborted, "the decision could not be confirmed in ZooKeeper (\(error)); ZooKeeper's record decides it: check before retrying")
        } catch {
            // Not recorded (the lock is gone, or the record changed under us): abort this round
            // (only this round: a later coordinator's votes are left alone).
            let survivors = members.subtracting(expelled)
            _ = await askAll(survivors, path: "/admin/replication/abort", body: decision) { try await self.abortPrepared(round: prepared.round) }
            throw ReplicatedError(.transactionAborted, "could not record the decision in ZooKeeper (\(error)); nothing was committed")
        }

        // Phase 2: every member that voted yes applies it.
        let survivors = members.subtracting(expelled)
        let acks = await askAll(survivors, path: "/admin/replication/commit", body: decision) {
            try await self.commitPrepared(round: prepared.round)
        }
        let failedCommits = CommitRound.afterCommit(answers: acks)
        if case .failed(let reason) = acks[id] {
            // The decision stands (it is recorded), but this node does not have it: it leaves the
            // cluster to resync, and cannot acknowledge what it cannot show.
            await stepDown()
            throw ReplicatedError(
                .storage, "the operation is recorded as committed, but the coordinator could not apply it (\(reason)); it leaves the cluster to resync")
        }
        do {
            try await expel(failedCommits, reasons: acks, lease: lease)
        } catch {
            throw ReplicatedError(
                .storage, "the operation is recorded as committed, but members that did not apply it could not be expelled (\(error)); not acknowledged")
        }
        expelled += failedCommits
        if !expelled.isEmpty {
            // An expelled node stops serving within the standing lease: wait it out before the
            // acknowledgement, so nobody reads from it what the cluster has moved past.
            try await Task.sleep(for: Self.standingLease)
        }
        return next
    }

    /// Sends the same request to every member at once (this node runs `local`); the answers,
    /// failures and timeouts included.
    private func askAll(
        _ members: Set<String>, path: String, body: Data, local: @escaping @Sendable () async throws -> Void
    ) async -> [String: CommitRound.Answer] {
        let timeout = configuration.commitTimeout
        return await withTaskGroup(of: (String, CommitRound.Answer).self) { group in
            for member in members {
                group.addTask {
                    do {
                        if member == self.id {
                            try await local()
                        } else {
                            _ = try await self.peers.json(Done.self, .POST, member, path, body: body, timeout: timeout)
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
        for member in members where member != id {
            metrics.expelled.increment()
            logger.warning("expelling a node", metadata: ["replicated.node": "\(member)", "replicated.reason": "\(reasons[member].map { "\($0)" } ?? "")"])
            do {
                _ = try await lease.fencedMulti([.delete(path: layout.member(member))])
            } catch let error as ZooKeeperError where error.code == .noNode && error.failedOperationIndex == 1 {}
        }
    }

    /// Leaves the cluster at once (to resync): stops serving; the standing loop ends the
    /// membership, and the next join removes the member znode before it compares and syncs.
    private func stepDown() async {
        leaveMembership()
        state.withLock { $0.steppedDown = true }
    }

    // MARK: Read-only mode and shutdown

    /// Starts or ends read-only mode (under the cluster lock, so no commit is in flight).
    public func setReadOnly(_ readOnly: Bool) async throws {
        guard await inGoodStanding() else { throw Self.notInCluster }
        let lease = try await lock.acquire(timeout: configuration.commitTimeout * 4)
        do {
            if readOnly {
                do { _ = try await lease.fencedMulti([.create(path: layout.readOnly, acl: layout.acl)]) } catch let error as ZooKeeperError
                    where error.code == .nodeExists
                {}
            } else {
                do { _ = try await lease.fencedMulti([.delete(path: layout.readOnly)]) } catch let error as ZooKeeperError where error.code == .noNode {}
            }
            await lease.release()
        } catch {
            await lease.release()
            throw error
        }
        logger.notice(readOnly ? "the cluster is read-only" : "the cluster accepts writes again")
    }

    public func isReadOnly() async throws -> Bool { try await client.exists(layout.readOnly) != nil }

    /// Asks every member (this one last) to shut down.
    public func shutDownCluster() async throws -> [String] {
        let members = try await layout.readMembers(client)
        for member in members where member != id {
            _ = try? await peers.call(.POST, member, "/admin/replication/shutdown", timeout: .seconds(5))
        }
        Task {  // after this request's answer has left
            try? await Task.sleep(for: .milliseconds(200))
            self.shutDown()
        }
        return members.sorted()
    }

    /// The members' addresses and the coordinator's.
    public func clusterView() async throws -> (members: Set<String>, coordinator: String?) {
        let members = try await layout.readMembers(client)
        let leader = try await election.currentLeader()
        return (members, leader.map { String(decoding: $0.payload, as: UTF8.self) })
    }
}

extension Data {
    var bytes: [UInt8] { [UInt8](self) }
}
