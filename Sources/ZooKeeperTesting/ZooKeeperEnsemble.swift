import Foundation

/// Three (or more) real ZooKeeper servers forming a quorum on loopback, for failover tests.
///
/// ```swift
/// let ensemble = try await ZooKeeperEnsemble.start()
/// defer { ensemble.destroy() }
/// await ensemble.servers[0].kill()       // two of three keep the quorum
/// ```
public final class ZooKeeperEnsemble: Sendable {
    /// The members; index `i` has server id `i + 1`.
    public let servers: [ZooKeeperServer]

    /// All members' client addresses, for a client's connect string.
    public var connectString: String { servers.map(\.connectString).joined(separator: ",") }

    /// Starts `size` servers and waits until they elected a leader and all serve.
    public static func start(size: Int = 3, configuration: ZooKeeperServer.Configuration = .init()) async throws -> ZooKeeperEnsemble {
        var ports: Set<Int> = []
        func port() throws -> Int {
            while true {
                let candidate = try freeLoopbackPort()
                if ports.insert(candidate).inserted { return candidate }
            }
        }
        var members: [(peerPort: Int, electionPort: Int, clientPort: Int)] = []
        for _ in 0..<size { members.append((try port(), try port(), try port())) }
        var servers: [ZooKeeperServer] = []
        for index in 0..<size {
            servers.append(try ZooKeeperServer(
                configuration: configuration, port: members[index].clientPort,
                quorum: .init(id: index + 1, servers: members)))
        }
        let ensemble = ZooKeeperEnsemble(servers: servers)
        do {
            for server in servers { try server.launch() }
            for server in servers { try await server.waitUntilServing(timeout: .seconds(90)) }
        } catch {
            ensemble.destroy()
            throw error
        }
        return ensemble
    }

    init(servers: [ZooKeeperServer]) {
        self.servers = servers
    }

    /// The index of the current leader, if one serves.
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
