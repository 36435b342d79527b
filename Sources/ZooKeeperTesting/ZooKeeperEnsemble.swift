import Foundation
import Synchronization
import ZooKeeper

/// Three (or more) real ZooKeeper servers forming a quorum on loopback, for failover tests, and
/// with dynamic reconfiguration for tests of a changing ensemble.
///
/// ```swift
/// let ensemble = try await ZooKeeperEnsemble.start()
/// defer { ensemble.destroy() }
/// await ensemble.servers[0].kill()       // two of three keep the quorum
/// ```
///
/// A dynamic ensemble (`dynamicReconfiguration: true`) keeps its membership in a dynamic
/// configuration file with client addresses, allows `reconfig` (any client may: ACLs are skipped on
/// its servers), and can change: ``addServer(currentMembers:)`` starts a server that knows the current members and
/// itself, ready to be added with `ZooKeeperClient.reconfigure(joining:leaving:ifVersion:)`;
/// ``removeServer(_:timeout:)`` reconfigures a member out and stops it.
public final class ZooKeeperEnsemble: Sendable {
    private struct State {
        var servers: [ZooKeeperServer]
        /// Every server's ports by id (including servers that have left).
        var ports: [Int: (peerPort: Int, electionPort: Int, clientPort: Int)]
    }
    private let state: Mutex<State>
    private let configuration: ZooKeeperServer.Configuration
    /// Whether servers can be added and removed by reconfiguration.
    public let dynamicReconfiguration: Bool

    /// The servers started so far, in the order they were started; the first `size` have ids
    /// `1…size`, added servers the next ids.
    public var servers: [ZooKeeperServer] { state.withLock { $0.servers } }

    /// All servers' client addresses, for a client's connect string.
    public var connectString: String { servers.map(\.connectString).joined(separator: ",") }

    /// Starts `size` servers and waits until they elected a leader and all serve.
    public static func start(
        size: Int = 3, configuration: ZooKeeperServer.Configuration = .init(), dynamicReconfiguration: Bool = false
    ) async throws -> ZooKeeperEnsemble {
        let ensemble = ZooKeeperEnsemble(configuration: configuration, dynamicReconfiguration: dynamicReconfiguration)
        do {
            var members: [Int: (peerPort: Int, electionPort: Int, clientPort: Int)] = [:]
            for id in 1...size { members[id] = try ensemble.reservePorts(id: id) }
            var servers: [ZooKeeperServer] = []
            for id in 1...size {
                let server = try ZooKeeperServer(
                    configuration: configuration, port: members[id]!.clientPort,
                    quorum: .init(id: id, servers: members, dynamic: dynamicReconfiguration))
                servers.append(server)
                ensemble.state.withLock { $0.servers.append(server) }
            }
            for server in servers { try server.launch() }
            for server in servers { try await server.waitUntilServing(timeout: .seconds(90)) }
        } catch {
            ensemble.destroy()
            throw error
        }
        return ensemble
    }

    private init(configuration: ZooKeeperServer.Configuration, dynamicReconfiguration: Bool) {
        self.configuration = configuration
        self.dynamicReconfiguration = dynamicReconfiguration
        state = Mutex(State(servers: [], ports: [:]))
    }

    private func reservePorts(id: Int) throws -> (peerPort: Int, electionPort: Int, clientPort: Int) {
        // freeLoopbackPort never gives a port twice, so the three differ from every other server's.
        let ports = (try freeLoopbackPort(), try freeLoopbackPort(), try freeLoopbackPort())
        state.withLock { $0.ports[id] = ports }
        return ports
    }

    /// Starts one more server, with the next id, that knows the current configuration's members
    /// and itself, and waits until it serves (as a non-voting member until a reconfiguration adds
    /// it: pass its ``ZooKeeperServer/ensembleMember`` to `reconfigure(joining:)`).
    /// - Parameter currentMembers: the ids of the servers in the current configuration (default:
    ///   every server started so far that is running).
    /// - Throws: ``ZooKeeperTestingError`` when the ensemble is not dynamic or the server does not start.
    public func addServer(currentMembers: [Int]? = nil) async throws -> ZooKeeperServer {
        guard dynamicReconfiguration else {
            throw ZooKeeperTestingError("servers can only be added to an ensemble started with dynamicReconfiguration: true")
        }
        let id = state.withLock { ($0.ports.keys.max() ?? 0) + 1 }
        let ports = try reservePorts(id: id)
        let memberIDs = currentMembers ?? servers.filter(\.isRunning).compactMap(\.serverID)
        var members = state.withLock { state in state.ports.filter { memberIDs.contains($0.key) } }
        members[id] = ports
        let server = try ZooKeeperServer(
            configuration: configuration, port: ports.clientPort, quorum: .init(id: id, servers: members, dynamic: true))
        state.withLock { $0.servers.append(server) }
        try await server.start()
        return server
    }

    /// Reconfigures `server` out of the ensemble, then stops it (SIGTERM) and waits until the
    /// remaining members serve with a leader: the way a server leaves, as ``addServer(currentMembers:)``
    /// is the way one arrives. It stays in ``servers``, stopped.
    ///
    /// The reconfiguration (`reconfigure(leaving: [id], ifVersion: current)`) goes through a
    /// client of its own, connected to the other running servers, so no test client loses its
    /// connection to it before it has left. It is repeated while the ensemble cannot apply it yet
    /// (`.newConfigNoQuorum`, `.reconfigInProgress`, a lost connection, a configuration that
    /// moved on); a server the configuration no longer names is only stopped.
    /// - Returns: the configuration without `server`.
    /// - Throws: ``ZooKeeperTestingError`` when the ensemble is not dynamic, `server` is not one of
    ///   its servers or the only one running, or it was not reconfigured out within `timeout`;
    ///   a `ZooKeeperError` the ensemble answers otherwise (for example `.badArguments`).
    @discardableResult
    public func removeServer(_ server: ZooKeeperServer, timeout: Duration = .seconds(60)) async throws -> EnsembleConfiguration {
        guard dynamicReconfiguration else {
            throw ZooKeeperTestingError("servers can only be removed from an ensemble started with dynamicReconfiguration: true")
        }
        guard let id = server.serverID, servers.contains(where: { $0 === server }) else {
            throw ZooKeeperTestingError("the server on port \(server.port) is not a member of this ensemble")
        }
        let others = servers.filter { $0 !== server && $0.isRunning }
        guard !others.isEmpty else { throw ZooKeeperTestingError("server \(id) is the only one running: nothing would remain") }
        var configuration = ZooKeeperClient.Configuration()
        configuration.connectionTimeout = .seconds(20)
        configuration.cLibraryLogLevel = nil  // the C library's messages stay with the test's clients
        let client = try ZooKeeperClient(connectString: others.map(\.connectString).joined(separator: ","), configuration: configuration)
        let remaining: EnsembleConfiguration
        do {
            try await client.connect()
            remaining = try await Self.reconfigure(leaving: id, through: client, deadline: .now + timeout)
            await client.close()
        } catch {
            await client.close()
            throw error
        }
        await server.stop()
        try await waitForQuorum(timeout: timeout)
        return remaining
    }

    /// Removes server `id` from the configuration through `client`, again until it is gone or
    /// `deadline` passes.
    private static func reconfigure(
        leaving id: Int, through client: ZooKeeperClient, deadline: ContinuousClock.Instant
    ) async throws -> EnsembleConfiguration {
        while true {
            do {
                let current = try await client.getConfiguration()
                guard current.servers.contains(where: { $0.id == id }) else { return current }
                return try await client.reconfigure(leaving: [id], ifVersion: current.version)
            } catch let error as ZooKeeperError
                where error.isRetryable || [.newConfigNoQuorum, .reconfigInProgress, .badVersion].contains(error.code)
            {
                guard ContinuousClock.now < deadline else {
                    throw ZooKeeperTestingError("server \(id) was not reconfigured out of the ensemble in time: \(error)")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// The index (in ``servers``) of the current leader, if one serves.
    public func leaderIndex() async -> Int? {
        for (index, server) in servers.enumerated() where await server.mode() == "leader" {
            return index
        }
        return nil
    }

    /// Waits until the running members serve with a leader among them.
    public func waitForQuorum(timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await leaderIndex() != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ZooKeeperTestingError("the ensemble did not elect a leader within \(timeout)")
    }

    /// Kills every member's process and deletes their directories.
    public func destroy() {
        for server in servers { server.destroy() }
    }
}
