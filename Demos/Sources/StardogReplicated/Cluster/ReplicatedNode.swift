@_spi(Concurrency) import Coordination
import DemoSupport
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import ZooKeeper

/// One member of the replicated cluster (a `Service`): it joins (``ClusterJoin``), serves reads
/// while it is a member in good standing, campaigns to be the coordinator, sends writes to the
/// coordinator (``CommitCoordinator`` here, ``CoordinatorForwarding`` elsewhere), votes in commit
/// rounds (``Participant``), keeps the transactions clients open on it (``OpenTransactions``), and
/// rejoins after it is expelled.
///
/// The protocol (documented in `Documentation/RunningAReplicatedCluster.md`):
/// - **Commit** (the coordinator, in rounds that carry every write queued meanwhile, each under
///   the cluster lock): prepare on every member (each fsyncs its vote on the whole round), expel
///   those that fail or time out, record the round's outcome in ZooKeeper (the commit point,
///   fenced by the lock), commit on the rest (expelling failures), wait out the standing lease if
///   anyone was expelled, then acknowledge every write of the round.
/// - **Standing**: a member serves only while connected and while its own member znode was seen
///   within ``MemberStanding/lease``; the coordinator waits that long after expelling before it
///   acknowledges, so an expelled node has stopped serving by then.
/// - **Undecided votes** are decided from ZooKeeper's record (committed exactly when it shows
///   what the round produces): at join, before the next prepare, and when one is older than
///   twice the commit timeout.
public final class ReplicatedNode: Service, Sendable {
    public let configuration: StardogConfiguration
    /// This node's id in the cluster: its address.
    public let id: String
    let logger: Logger
    let context: NodeContext
    var store: LocalStore { context.store }
    var client: ZooKeeperClient { context.client }
    var layout: ClusterLayout { context.layout }
    let peerClient = PeerClient(connectTimeout: .seconds(2))
    let election: LeaderElection
    let participant: Participant
    let coordinator: CommitCoordinator
    let transactions = OpenTransactions()
    let forwarding: CoordinatorForwarding
    let standing: MemberStanding

    /// Whether the election names this node (its term has started). ``isCoordinator`` also asks
    /// that the node still be a member, so a node that steps down stops coordinating at once.
    private let electedCoordinator = Atomic<Bool>(false)
    /// Set once the HTTP server listens (this process holds the node's port).
    private let serverRunning = Latch<Bool>()
    /// Runs the node's parts until a shutdown (SIGTERM, or the cluster's shutdown request).
    private let lifetime: NodeLifetime

    /// Opens the local store and prepares the ZooKeeper client (not connected yet).
    public init(configuration: StardogConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        id = configuration.nodeAddress
        let layout = ClusterLayout(clusterName: configuration.clusterName, user: configuration.zookeeperUser, password: configuration.zookeeperPassword)
        let store = try LocalStore(home: configuration.home)
        let client = try NodeZooKeeper.client(
            connectString: configuration.zookeeperAddress, setting: "pack.zookeeper.address", sessionTimeout: configuration.sessionTimeout,
            connectionTimeout: configuration.connectionTimeout,
            credentials: [.init(user: configuration.zookeeperUser, password: configuration.zookeeperPassword)], logger: logger)
        var electionConfiguration = LeaderElection.Configuration()
        electionConfiguration.acl = layout.acl
        election = LeaderElection(client: client, path: layout.election, participantID: id, configuration: electionConfiguration)
        var lockConfiguration = DistributedLock.Configuration()
        lockConfiguration.acl = layout.acl
        context = NodeContext(
            id: id, configuration: configuration, logger: logger, client: client, layout: layout,
            lock: DistributedLock(client: client, path: layout.lock, configuration: lockConfiguration), store: store,
            peers: PeerCalls(client: peerClient), metrics: ReplicatedMetrics())
        participant = Participant(context: context)
        let standing = MemberStanding(context: context)
        self.standing = standing
        forwarding = CoordinatorForwarding(context: context, election: election)
        coordinator = CommitCoordinator(context: context, participant: participant, standingLease: MemberStanding.lease) {
            standing.stepDown()
        }
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
        try await lifetime.run { group in
            group.addTask {
                // Serves until the node stops (cancelled), then lets the answers under way finish.
                try await HTTPServer.run(
                    host: "0.0.0.0", port: self.configuration.httpPort, logger: self.logger, maxBody: StardogHTTP.maxMemberBody,
                    tooLarge: { StardogHTTP.error(ReplicatedError(.bodyTooLarge, "the request body is larger than \($0) bytes")) },
                    onBound: { port in
                        self.serverRunning.set(true)
                        self.logger.info("serving HTTP", metadata: ["replicated.port": "\(port)"])
                    },
                    respond: StardogHTTP.respond(node: self))
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
        peerClient.shutdown()
        await client.close()
    }

    /// Joins, serves as a member until it loses its standing, and joins again. A lost connection
    /// or an expired session on the way only delays the next join; the node stops on shutdown,
    /// on a refused join, and on ZooKeeper errors that waiting cannot mend.
    func lifecycle() async throws {
        guard await serverRunning.wait() != nil else { throw CancellationError() }
        while !Task.isCancelled {
            let registeredAt: ContinuousClock.Instant
            do {
                registeredAt = try await ClusterJoin(context: context, participant: participant).join()
            } catch let error as ZooKeeperError where error.isTransient {
                logger.warning("cannot join while ZooKeeper is unreachable; waiting for the session", metadata: ["replicated.error": "\(error)"])
                try await Task.sleep(for: .milliseconds(100))
                try await client.waitUntilConnected()
                continue
            }
            standing.joined(registeredAt: registeredAt)
            logger.info("joined the cluster", metadata: ["replicated.catalog": "\(JoinPlan.describe(store.catalog))"])
            do {
                try await serveAsMember()
            } catch let error as ZooKeeperError where error.isTransient {
                logger.warning("lost ZooKeeper while serving", metadata: ["replicated.error": "\(error)"])
            }
            leaveMembership()
            if Task.isCancelled { return }  // the node is stopping: it leaves, it has not lost its place
            context.metrics.membershipLost.increment()
            logger.warning("this node is no longer a member (expelled, stepped down, or its session ended); it will sync and rejoin")
        }
    }

    /// Stops serving as a member (nothing is answered until the next join).
    private func leaveMembership() {
        standing.left()
        electedCoordinator.store(false, ordering: .relaxed)
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
                            self.electedCoordinator.store(true, ordering: .relaxed)
                            self.logger.notice("this node is the coordinator")
                            defer { self.electedCoordinator.store(false, ordering: .relaxed) }
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
            group.addTask { try await self.forwarding.follow() }
            _ = try await group.next()
            group.cancelAll()
        }
        electedCoordinator.store(false, ordering: .relaxed)
    }

    /// Confirms every ``MemberStanding/confirmInterval`` that this node is still a member;
    /// returns when it is not. Also decides a vote left undecided for too long.
    private func keepStanding() async throws {
        while true {
            try await Task.sleep(for: MemberStanding.confirmInterval)
            guard try await standing.stillMember() else { return }
            await participant.decideStaleVote()
        }
    }

    /// Whether this node may answer requests (see ``MemberStanding``).
    public func inGoodStanding() async -> Bool { await standing.inGoodStanding() }

    public var isCoordinator: Bool { electedCoordinator.load(ordering: .relaxed) && standing.isMember }

    /// The coordinator in good standing (what `/admin/cluster/coordinator` answers).
    public func isCoordinatorInGoodStanding() async -> Bool { await inGoodStanding() && isCoordinator }

    /// Leaves on shutdown: deletes the member znode.
    private func leave() async {
        guard client.state.isConnected else { return }
        try? await client.delete(layout.member(id))
    }

    // MARK: Transactions on the receiving node

    public func beginTransaction(database: String) async throws -> String {
        guard await inGoodStanding() else { throw Self.notInCluster }
        guard store.version(of: database) != nil else { throw LocalStore.unknown(database) }
        return try transactions.begin(database: database)
    }

    /// Adds to or removes from an open transaction.
    public func change(database: String, transaction: String, adding: Bool, ntriples: String) async throws {
        try await transactions.change(database: database, transaction: transaction, adding: adding, ntriples: ntriples)
    }

    /// Commits an open transaction through the coordinator. On failure it stays open (commit
    /// again, or roll back).
    public func commitTransaction(database: String, transaction: String) async throws -> DatabaseVersion? {
        try await transactions.commit(database: database, transaction: transaction) { try await self.submit($0) }
    }

    public func rollbackTransaction(database: String, transaction: String) throws {
        try transactions.rollback(database: database, transaction: transaction)
    }

    // MARK: Forwarding to the coordinator

    static let notInCluster = ReplicatedError(.notInCluster, "this node is not a synced member of the cluster (joining, expelled, or without ZooKeeper)")

    /// Runs `operation` on the cluster: here when this node coordinates, otherwise forwarded to
    /// the coordinator.
    public func submit(_ operation: ClusterOperation) async throws -> DatabaseVersion? {
        try operation.checkSize()
        guard await inGoodStanding() else { throw Self.notInCluster }
        let known = try await forwarding.current(until: .now + configuration.commitTimeout * 2)
        if known.address == id {
            // The election already names this node; the cluster lock and its fencing keep any
            // overlap with the previous coordinator's last round safe.
            return try await coordinator.submit(operation)
        }
        return try await forwarding.forward(operation, to: known)
    }

    // MARK: Coordinator

    /// Commits `operations` (forwarded together by a member) in this node's next round, if this
    /// node coordinates; each has its own outcome.
    func coordinate(_ operations: [ClusterOperation]) async -> [OperationOutcome] {
        guard isCoordinator else {
            let error = ErrorBody(ReplicatedError(.transactionAborted, "\(id) is not the coordinator; retry"))
            return operations.map { _ in OperationOutcome(error: error) }
        }
        return await coordinator.submit(operations).map { result in
            do { return OperationOutcome(next: try result.get()) } catch { return OperationOutcome(error: ErrorBody(ReplicatedError(answering: error))) }
        }
    }

    // MARK: Read-only mode and shutdown

    /// Starts or ends read-only mode (under the cluster lock, so no commit is in flight).
    public func setReadOnly(_ readOnly: Bool) async throws {
        guard await inGoodStanding() else { throw Self.notInCluster }
        let lease = try await context.lock.acquire(timeout: configuration.commitTimeout * 4)
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
            _ = try? await context.peers.call(.POST, member, "/admin/replication/shutdown", timeout: .seconds(5))
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
