import Testing
import ZooKeeper
import ZooKeeperTesting

/// Every operation and its error codes against a real standalone server.
@Suite struct OperationsTests {
    @Test func createReadUpdateDelete() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            let created = try await client.create(path, data: Array("one".utf8))
            #expect(created.path == path)
            #expect(created.stat.version == 0)
            let read = try await client.getData(path)
            #expect(read.string == "one")
            #expect(read.stat == created.stat)
            let stat = try await client.setData(path, data: Array("two".utf8), version: 0)
            #expect(stat.version == 1)
            #expect(try await client.exists(path)?.version == 1)
            await expectError(.badVersion) { try await client.setData(path, data: [], version: 0) }
            await expectError(.badVersion) { try await client.delete(path, version: 0) }
            try await client.delete(path, version: 1)
            #expect(try await client.exists(path) == nil)
            await expectError(.noNode) { try await client.getData(path) }
            await expectError(.noNode) { try await client.delete(path) }
            await expectError(.noNode) { try await client.setData(path, data: []) }
            await expectError(.noNode) { try await client.getChildren(path) }
        }
    }

    @Test func emptyAndBinaryDataRoundTrip() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            try await client.create(path)
            #expect(try await client.getData(path).bytes == [])
            let binary: [UInt8] = (0..<256).map { UInt8($0) }
            try await client.setData(path, data: binary)
            #expect(try await client.getData(path).bytes == binary)
            try await client.delete(path)
        }
    }

    @Test func createErrors() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            try await client.create(path)
            await expectError(.nodeExists) { try await client.create(path) }
            await expectError(.noNode) { try await client.create("\(path)/missing/child") }
            let ephemeral = try await client.create("\(path)/eph", mode: .ephemeral)
            #expect(ephemeral.stat.isEphemeral)
            #expect(ephemeral.stat.ephemeralOwner == client.sessionCredentials?.sessionID)
            await expectError(.noChildrenForEphemerals) { try await client.create("\(path)/eph/child") }
            await expectError(.notEmpty) { try await client.delete(path) }
            await expectError(.invalidACL) { try await client.create("\(path)/noacl", acl: []) }
            try await client.delete("\(path)/eph")
            try await client.delete(path)
        }
    }

    @Test func sequentialNodesGetIncreasingSuffixes() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            try await client.create(path)
            var names: [String] = []
            for mode in [CreateMode.persistentSequential, .ephemeralSequential, .persistentSequential] {
                names.append(try await client.create("\(path)/item-", mode: mode).path)
            }
            #expect(names == ["\(path)/item-0000000000", "\(path)/item-0000000001", "\(path)/item-0000000002"])
            let children = try await client.getChildren(path)
            #expect(children.names.sorted() == names.map { ZooKeeperPath.name(of: $0) })
            #expect(children.stat.numChildren == 3)
            for name in names { try await client.delete(name) }
            try await client.delete(path)
        }
    }

    @Test func ephemeralNodesVanishWhenTheSessionCloses() async throws {
        let server = try await SharedServer.get()
        let path = uniquePath()
        try await withClient(server.connectString) { client in
            try await client.create(path, mode: .ephemeral)
        }
        try await withClient(server.connectString) { client in
            let stat = try await client.exists(path)
            #expect(stat == nil)
        }
    }

    @Test func containerNodesAreRemovedOnceEmpty() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            try await client.create(path, mode: .container)
            try await client.create("\(path)/child")
            try await client.delete("\(path)/child")
            // The test server checks containers every second.
            try await eventually("the empty container is removed") { try await client.exists(path) == nil }
        }
    }

    @Test func ttlNodesExpire() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            let created = try await client.create(path, mode: .persistentWithTTL(.milliseconds(500)))
            #expect(created.path == path)
            try await eventually("the TTL node is removed") { try await client.exists(path) == nil }
            let sequential = try await client.create("\(path)-", mode: .persistentSequentialWithTTL(.seconds(60)))
            #expect(sequential.path.hasPrefix("\(path)-00"))
            try await client.delete(sequential.path)
        }
    }

    @Test func ttlWithoutServerSupportIsUnimplemented() async throws {
        var settings = ZooKeeperServer.Configuration()
        settings.extendedTypesEnabled = false
        let server = try await ZooKeeperServer.start(configuration: settings)
        defer { server.destroy() }
        try await withClient(server.connectString) { client in
            let error = await expectError(.unimplemented) {
                try await client.create(uniquePath(), mode: .persistentWithTTL(.seconds(1)))
            }
            #expect(error?.rawCode != nil)
        }
    }

    /// `createPath` with an ephemeral mode makes persistent ancestors (an ephemeral node cannot
    /// have children), and refuses a sequential mode, which would make a new node on every call.
    @Test func createPathMakesAncestorsPersistentAndRefusesSequentialModes() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let root = uniquePath()
            try await client.createPath("\(root)/a/leaf", mode: .ephemeral)
            #expect(try await client.exists("\(root)/a/leaf")?.isEphemeral == true)
            #expect(try await client.exists("\(root)/a")?.isEphemeral == false)
            await expectError(.badArguments) { try await client.createPath("\(root)/seq-", mode: .persistentSequential) }
            #expect(try await client.getChildren(root).names == ["a"], "no sequential node was made")
            for path in ["\(root)/a/leaf", "\(root)/a", root] { try await client.delete(path) }
        }
    }

    @Test func createWithParentsMakesMissingAncestors() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let root = uniquePath()
            try await client.create("\(root)/a/b/c", data: Array("leaf".utf8), parents: .persistent)
            #expect(try await client.getData("\(root)/a/b/c").string == "leaf")
            try await client.create("\(root)/x/y", parents: .container)
            #expect(try await client.exists("\(root)/x")?.isEphemeral == false)
            try await client.createPath("\(root)/a/b/c")  // exists already: fine
            try await client.createPath("\(root)/p/q/r")
            #expect(try await client.exists("\(root)/p/q/r") != nil)
            // Only the nearest ancestors missing: they are found from below.
            try await client.createPath("\(root)/a/b/d/e")
            try await client.create("\(root)/a/b/f/g", data: Array("g".utf8), parents: .persistent)
            #expect(try await client.exists("\(root)/a/b/d/e") != nil)
            #expect(try await client.getData("\(root)/a/b/f/g").string == "g")
            for path in ["\(root)/a/b/d/e", "\(root)/a/b/d", "\(root)/a/b/f/g", "\(root)/a/b/f"] { try await client.delete(path) }
            for path in ["\(root)/a/b/c", "\(root)/a/b", "\(root)/a", "\(root)/x/y", "\(root)/p/q/r", "\(root)/p/q", "\(root)/p"] {
                try await client.delete(path)
            }
            try? await client.delete("\(root)/x")
            try await client.delete(root)
        }
    }

    @Test func multiAppliesAllOrNothing() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            try await client.create(path, data: Array("v0".utf8))
            let results = try await client.multi([
                .check(path: path, version: 0),
                .create(path: "\(path)/seq-", data: Array("x".utf8), mode: .persistentSequential),
                .setData(path: path, data: Array("v1".utf8), version: 0),
                .create(path: "\(path)/plain"),
                .delete(path: "\(path)/plain"),
            ])
            #expect(results.count == 5)
            #expect(results[0] == .checked)
            #expect(results[1] == .created(path: "\(path)/seq-0000000000"))
            guard case .dataSet(let stat) = results[2] else {
                Issue.record("expected dataSet, got \(results[2])")
                return
            }
            #expect(stat.version == 1)
            #expect(results[4] == .deleted)

            // A failing check: nothing of the transaction is applied, and the error names the op.
            let error = await expectError(.badVersion) {
                try await client.multi([
                    .create(path: "\(path)/never"),
                    .check(path: path, version: 0),
                    .setData(path: path, data: Array("v2".utf8)),
                ])
            }
            #expect(error?.failedOperationIndex == 1)
            #expect(error?.path == path)
            #expect(try await client.exists("\(path)/never") == nil)
            #expect(try await client.getData(path).string == "v1")

            let invalid = await expectError(.invalidPath) { try await client.multi([.check(path: path), .delete(path: "bad")]) }
            #expect(invalid?.failedOperationIndex == 1)
            #expect(try await client.multi([]) == [])
            try await client.delete("\(path)/seq-0000000000")
            try await client.delete(path)
        }
    }

    @Test func syncThenRead() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            try await client.create(path)
            try await client.sync(path)
            #expect(try await client.exists(path) != nil)
            try await client.delete(path)
        }
    }

    @Test func digestAuthAndACLDenial() async throws {
        let server = try await SharedServer.get()
        let path = uniquePath()
        try await withClient(server.connectString, configuration: configuration {
            $0.digestCredentials = [.init(user: "alice", password: "wonderland")]
        }) { owner in
            try await owner.create(path, data: Array("secret".utf8), acl: [ACL.digest(user: "alice", password: "wonderland")])
            let (acl, stat) = try await owner.getACL(path)
            #expect(acl == [ACL(permissions: .all, scheme: "digest", id: ACL.digestID(user: "alice", password: "wonderland"))])
            #expect(stat.aversion == 0)
            #expect(try await owner.getData(path).string == "secret")

            try await withClient(server.connectString) { stranger in
                let denied = await expectError(.noAuth) { try await stranger.getData(path) }
                #expect(denied?.path == path)
                await expectError(.noAuth) { try await stranger.setData(path, data: []) }
                // Authenticating as the wrong user does not help; the right one does.
                try await stranger.addAuth(digest: .init(user: "alice", password: "wrong"))
                await expectError(.noAuth) { try await stranger.getData(path) }
                try await stranger.addAuth(digest: .init(user: "alice", password: "wonderland"))
                #expect(try await stranger.getData(path).string == "secret")
            }
            try await owner.setACL(path, acl: ACL.openUnsafe + ACL.creatorAll, version: 0)
            #expect(try await owner.getACL(path).stat.aversion == 1)
            await expectError(.badVersion) { try await owner.setACL(path, acl: ACL.openUnsafe, version: 0) }
            await expectError(.invalidACL) { try await owner.setACL(path, acl: []) }
            try await owner.delete(path)
        }
    }

    @Test func chrootScopesEveryPath() async throws {
        let server = try await SharedServer.get()
        let root = uniquePath()
        try await withClient(server.connectString) { client in try await client.create(root) }
        try await withClient(server.connectString + root) { chrooted in
            let created = try await chrooted.create("/inside", data: Array("x".utf8))
            #expect(created.path == "/inside")
            let sequential = try await chrooted.create("/seq-", mode: .ephemeralSequential)
            #expect(sequential.path == "/seq-0000000001")
            #expect(try await chrooted.getChildren("/").names.sorted() == ["inside", "seq-0000000001"])
            try await chrooted.delete(sequential.path)
        }
        try await withClient(server.connectString) { client in
            #expect(try await client.getData("\(root)/inside").string == "x")
            try await client.delete("\(root)/inside")
            try await client.delete(root)
        }
    }

    @Test func badInputFailsBeforeAnythingIsSent() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            await expectError(.invalidPath) { try await client.getData("no-slash") }
            await expectError(.invalidPath) { try await client.create("/a//b") }
            await expectError(.invalidPath) { try await client.delete("/trailing/") }
            let oversized = [UInt8](repeating: 7, count: client.configuration.maxDataSize + 1)
            let tooLarge = await expectError(.dataTooLarge) { try await client.create(uniquePath(), data: oversized) }
            #expect(tooLarge?.message.contains("jute.maxbuffer") == true)
            await expectError(.dataTooLarge) { try await client.setData("/x", data: oversized) }
            // A multi whose operations are each small enough but too large together is refused
            // before it is sent (the server would cut the connection).
            let half = [UInt8](repeating: 3, count: client.configuration.maxDataSize / 2 + 1)
            let together = await expectError(.dataTooLarge) {
                try await client.multi([.create(path: uniquePath(), data: half), .create(path: uniquePath(), data: half)])
            }
            #expect(together?.failedOperationIndex == nil)
            // TTLs the server would refuse are refused here, saying why.
            let ttl = await expectError(.badArguments) { try await client.create(uniquePath(), mode: .persistentWithTTL(.zero)) }
            #expect(ttl?.message.contains("TTL") == true)
            await expectError(.badArguments) { try await client.create(uniquePath(), mode: .persistentWithTTL(.seconds(Int64.max))) }
            // The largest allowed data goes through, and the session is still fine afterwards.
            let path = uniquePath()
            let largest = [UInt8](repeating: 1, count: client.configuration.maxDataSize)
            try await client.create(path, data: largest)
            #expect(try await client.getData(path).bytes.count == largest.count)
            try await client.delete(path)
            #expect(client.state.isConnected)
        }
    }

    @Test func aClientThatIsNotStartedSaysSo() async throws {
        let client = try ZooKeeperClient(connectString: "127.0.0.1:1")
        let error = await expectError(.invalidState) { try await client.getData("/") }
        #expect(error?.message.contains("not started") == true)
        await client.close()
        await expectError(.closed) { try await client.getData("/") }
    }

    @Test(.timeLimit(.minutes(1))) func connectingToNoServerTimesOutWithAClearError() async throws {
        let nobody = try RefusingLoopbackPort()  // held: no parallel test's server can take it
        let port = nobody.port
        let client = try ZooKeeperClient(connectString: "127.0.0.1:\(port)", configuration: configuration {
            $0.connectionTimeout = .seconds(2)
        })
        let error = await expectError(.connectionTimeout) { try await client.connect() }  // gives up: no hang
        #expect(error?.message.contains("127.0.0.1:\(port)") == true)
        #expect(client.state == .closed)
        await expectError(.closed) { try await client.exists("/") }
        #expect(client.outstandingCallbackContexts == 0)
        withExtendedLifetime(nobody) {}
    }

    /// A host name that does not resolve is named in the error, not left as a plain timeout.
    @Test(.timeLimit(.minutes(1))) func anUnresolvableHostIsNamedInTheError() async throws {
        let client = try ZooKeeperClient(connectString: "no-such-zookeeper-host.invalid:2181", configuration: configuration {
            $0.connectionTimeout = .seconds(2)
        })
        let error = await expectError(.connectionTimeout) { try await client.connect() }
        #expect(error?.message.contains("not resolved: no-such-zookeeper-host.invalid") == true, "\(String(describing: error))")
        #expect(client.outstandingCallbackContexts == 0)
    }

    /// A reply awaited twice at once used to leave the first waiter hanging (the second
    /// continuation replaced it): now one gets the reply and the other a clear error.
    @Test(.timeLimit(.minutes(1))) func aReplyAwaitedTwiceAnswersBothAwaiters() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            try await client.create(path, data: Array("x".utf8))
            for _ in 0..<50 {
                let reply = client.submitGetData(path)
                @Sendable func awaitReply() async -> Result<NodeData, any Error> {
                    do { return .success(try await reply.value()) } catch { return .failure(error) }
                }
                async let first = awaitReply()
                async let second = awaitReply()
                let results = await [first, second]
                let values = results.compactMap { try? $0.get() }
                let errors = results.compactMap { result -> ZooKeeperError? in
                    if case .failure(let error as ZooKeeperError) = result { return error }
                    return nil
                }
                #expect(values.map(\.bytes) == [Array("x".utf8)])
                #expect(errors.map(\.code) == [.invalidState])
                #expect(errors.first?.message.contains("already awaited") == true)
            }
            try await client.delete(path)
        }
    }

    @Test func missingNodesAreToleratedWhereAsked() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            #expect(try await client.childrenIfExists(path) == [])
            #expect(try await client.deleteIfExists(path) == false)
            try await client.create(path)
            #expect(try await client.deleteIfExists(path) == true)
            await expectError(.invalidPath) { try await client.childrenIfExists("no-slash") }
        }
    }

    /// A tree several levels deep and wide goes in one call; a missing tree is no error; the
    /// server's own subtree is left alone.
    @Test func deleteRecursivelyRemovesATree() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let root = uniquePath()
            for a in 0..<5 {
                for b in 0..<4 {
                    try await client.create("\(root)/a\(a)/b\(b)/leaf", parents: .persistent)
                }
            }
            try await client.create("\(root)/a0/eph", mode: .ephemeral)
            try await client.deleteRecursively(root)
            #expect(try await client.exists(root) == nil)
            try await client.deleteRecursively(root)  // already gone
            await expectError(.invalidPath) { try await client.deleteRecursively("relative") }
        }
    }
}

