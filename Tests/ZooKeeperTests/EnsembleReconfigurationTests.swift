import Testing
import ZooKeeper
import ZooKeeperTesting

@Suite struct EnsembleConfigurationParsingTests {
    @Test func theServersPublishedConfigurationIsRead() throws {
        let configuration = try EnsembleConfiguration(parsing: """
            server.2=10.0.0.2:2888:3888:observer;2181
            server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181
            server.3=[fe80::1]:2888:3888;[fe80::1]:2182
            server.4=10.0.0.4:2888:3888
            version=10000000a
            """)
        #expect(configuration.version == 0x10000000a)
        #expect(configuration.servers.map(\.id) == [1, 2, 3, 4])
        #expect(configuration.servers[0].clientAddress == .init(host: "10.0.0.1", port: 2181), "a wildcard means the server's host")
        #expect(configuration.servers[1].role == .observer)
        #expect(configuration.servers[1].clientAddress == .init(host: "10.0.0.2", port: 2181))
        #expect(configuration.servers[2].host == "fe80::1")
        #expect(configuration.servers[2].clientAddress == .init(host: "fe80::1", port: 2182))
        #expect(configuration.servers[3].clientAddress == nil, "a static line names no client address")
        #expect(configuration.clientServers.count == 3)
        #expect(configuration.servers[0].configurationLine == "server.1=10.0.0.1:2888:3888:participant;10.0.0.1:2181")
        #expect(configuration.servers[2].configurationLine == "server.3=[fe80::1]:2888:3888:participant;[fe80::1]:2182")
        let reparsed = try EnsembleConfiguration(parsing: configuration.servers.map(\.configurationLine).joined(separator: "\n"))
        #expect(reparsed.servers == configuration.servers.map { server in
            var server = server
            if server.clientAddress == nil { server.clientAddress = nil }
            return server
        })
        #expect(try EnsembleConfiguration(parsing: "").servers.isEmpty)
    }

    @Test(arguments: [
        ("server.x=h:1:2", "not a number"), ("server.1=h:1", "expected <host>"), ("server.1=h:1:2:voter", "unknown role"),
        ("server.1=h:1:2;port", "client address"), ("version=zz", "hexadecimal"), ("server.1", "no \"=\""),
    ])
    func aLineThatCannotBeReadIsNamed(_ line: String, _ problem: String) {
        #expect {
            try EnsembleConfiguration(parsing: line)
        } throws: { error in
            guard let error = error as? ZooKeeperError else { return false }
            return error.code == .marshallingError && error.message.contains(line) && error.message.contains(problem)
        }
    }
}

@Suite(.serialized) struct EnsembleReconfigurationTests {
    /// Start 3 servers, connect a client that knows only them, add 2 servers by reconfiguration,
    /// then remove the 3 one by one (each reconfigured out and stopped): the client follows, and
    /// its session, its watch and its ephemeral node survive.
    @Test(.timeLimit(.minutes(3))) func aClientSurvivesTheReplacementOfEveryServer() async throws {
        let ensemble = try await ZooKeeperEnsemble.start(size: 3, dynamicReconfiguration: true)
        defer { ensemble.destroy() }
        let originals = ensemble.servers
        let client = try await connectedTestClient(originals.map(\.connectString).joined(separator: ","), sessionTimeout: .seconds(8))
        let session = try #require(client.state.session)
        let initial = try await client.getConfiguration()
        #expect(initial.servers.map(\.id) == [1, 2, 3])
        #expect(Set(initial.clientServers.map(\.port)) == Set(originals.map(\.port)))

        try await client.create("/owned-by-the-session", mode: .ephemeral)
        try await client.create("/watched", data: Array("before".utf8))
        var updates = client.dataUpdates("/watched").makeAsyncIterator()
        #expect(try await updates.next() == .data(try await client.getData("/watched")))
        var configurations = client.configurationUpdates().makeAsyncIterator()
        #expect(try await configurations.next()?.servers.map(\.id) == [1, 2, 3])

        let added = [try await ensemble.addServer(), try await ensemble.addServer()]
        let joining = try added.map { try #require($0.ensembleMember) }
        // A reply lost after the change was applied is retried and finds the version moved on.
        try await eventually("the new servers joined", timeout: .seconds(60)) {
            do {
                try await client.reconfigure(joining: joining, ifVersion: initial.version)
                return true
            } catch let error as ZooKeeperError where error.code == .newConfigNoQuorum || error.isRetryable || error.code == .badVersion {
                return (try? await client.getConfiguration())?.servers.map(\.id) == [1, 2, 3, 4, 5]
            }
        }
        #expect(try await configurations.next()?.servers.map(\.id) == [1, 2, 3, 4, 5], "the stream follows the change")

        for server in originals { try await ensemble.removeServer(server) }
        var seen: [[Int]] = []
        while let ids = try await configurations.next()?.servers.map(\.id) {
            seen.append(ids)
            if ids == [4, 5] { break }
        }
        #expect(seen.allSatisfy { Set($0).isSuperset(of: [4, 5]) && !$0.contains(1) }, "the stream follows each removal: \(seen)")
        try await eventually("the client follows the new servers") { Set(client.servers.map(\.port)) == Set(added.map(\.port)) }
        #expect(originals.allSatisfy { !$0.isRunning })

        try await eventually("the client is connected to a new server", timeout: .seconds(30)) {
            (try? await client.exists("/watched")) != nil
        }
        #expect(client.state.session?.sessionID == session.sessionID, "the same session")
        #expect(client.state.session?.generation == 1)
        #expect(try await client.exists("/owned-by-the-session")?.ephemeralOwner == session.sessionID)
        try await client.setData("/watched", data: Array("after".utf8))
        var latest = try await updates.next()
        while case .data(let node)? = latest, node.string != "after" { latest = try await updates.next() }
        #expect(latest.map { if case .data(let node) = $0 { node.string } else { "" } } == "after", "the watch survived")

        let observer = try await connectedTestClient(added.map(\.connectString).joined(separator: ","))
        #expect(try await observer.exists("/owned-by-the-session")?.ephemeralOwner == session.sessionID)
        await observer.close()
        await client.close()
    }

    /// A non-incremental reconfiguration makes the list it is given the whole membership: server
    /// 3 is replaced by a 4th the test kit started, the configuration names exactly the new
    /// members at a higher version, the client follows them, and a change made against the
    /// version before is refused with `.badVersion`.
    @Test(.timeLimit(.minutes(3))) func aReconfigurationWithEveryMemberReplacesTheMembership() async throws {
        let ensemble = try await ZooKeeperEnsemble.start(size: 3, dynamicReconfiguration: true)
        defer { ensemble.destroy() }
        let client = try await connectedTestClient(ensemble.connectString, sessionTimeout: .seconds(8))
        let initial = try await client.getConfiguration()
        let initialVersion = try #require(initial.version)
        #expect(initial.servers.map(\.id) == [1, 2, 3])

        let added = try await ensemble.addServer()
        let members = initial.servers.filter { $0.id != 3 } + [try #require(added.ensembleMember)]
        // The new server must be in sync with the leader before {1, 2, 4} has a quorum. Removing
        // the server the client talks to cuts the connection, so the reply can be lost after the
        // change was applied; then a retry finds the version moved on.
        var replaced: EnsembleConfiguration?
        try await eventually("the reconfiguration is applied", timeout: .seconds(60)) {
            do {
                replaced = try await client.reconfigure(members: members, ifVersion: initialVersion)
                return true
            } catch let error as ZooKeeperError where error.code == .newConfigNoQuorum || error.isRetryable || error.code == .badVersion {
                replaced = try? await client.getConfiguration()
                return replaced.map { $0.version != initialVersion } ?? false
            }
        }
        let configuration = try #require(replaced)
        #expect(configuration.servers == members, "exactly the members given, server 3 gone")
        #expect(try #require(configuration.version) > initialVersion)
        try await eventually("the client follows the new members") {
            Set(client.servers.map(\.port)) == Set(members.compactMap(\.clientAddress?.port))
        }

        await #expect {
            try await retryingConnectionLoss { try await client.reconfigure(members: initial.servers, ifVersion: initialVersion) }
        } throws: { ($0 as? ZooKeeperError)?.code == .badVersion }
        let after = try await retryingConnectionLoss { try await client.getConfiguration() }
        #expect(after.servers == members, "the stale change was not applied")
        #expect(after.version == configuration.version)
        await client.close()
    }

    @Test(.timeLimit(.minutes(2))) func reconfigurationErrorsAreClear() async throws {
        let server = try await ZooKeeperServer.shared()
        let standalone = try await connectedTestClient(server.connectString)
        let member = EnsembleConfiguration.Server(id: 9, host: "127.0.0.1", quorumPort: 1, electionPort: 2, clientAddress: .init(host: "127.0.0.1", port: 3))
        await #expect {
            try await standalone.reconfigure(joining: [member])
        } throws: { ($0 as? ZooKeeperError)?.code == .reconfigDisabled }
        await #expect {
            try await standalone.reconfigure()
        } throws: { ($0 as? ZooKeeperError)?.code == .badArguments }
        await standalone.close()

        let ensemble = try await ZooKeeperEnsemble.start(size: 3, dynamicReconfiguration: true)
        defer { ensemble.destroy() }
        let client = try await connectedTestClient(ensemble.connectString)
        let current = try await client.getConfiguration()
        await #expect {
            try await client.reconfigure(leaving: [3], ifVersion: (current.version ?? 0) + 1)
        } throws: { ($0 as? ZooKeeperError)?.code == .badVersion }
        // A joining server that is not running cannot be in sync: {1, 9} has no quorum.
        await #expect {
            try await client.reconfigure(joining: [member], leaving: [2, 3])
        } throws: { ($0 as? ZooKeeperError)?.code == .newConfigNoQuorum }
        #expect(try await client.getConfiguration() == current, "nothing changed")
        await client.close()
    }
}
