import Testing
import ZooKeeper
import ZooKeeperTesting

/// One-shot watches and the level-triggered streams, including across restarts and expiry.
@Suite struct WatchTests {
    @Test func oneShotWatchesFireOnceForTheirEvent() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            let (missing, creation) = try await client.existsAndWatch(path)
            #expect(missing == nil)
            try await client.create(path, data: Array("a".utf8))
            #expect(try await creation.triggered() == WatchedEvent(kind: .nodeCreated, path: path))

            let (_, change) = try await client.getDataAndWatch(path)
            let (_, children) = try await client.getChildrenAndWatch(path)
            try await client.setData(path, data: Array("b".utf8))
            #expect(try await change.triggered() == WatchedEvent(kind: .nodeDataChanged, path: path))
            // The event stays available to a second waiter.
            #expect(try await change.triggered().kind == .nodeDataChanged)
            try await client.create("\(path)/child")
            #expect(try await children.triggered() == WatchedEvent(kind: .nodeChildrenChanged, path: path))

            let (_, deletion) = try await client.getDataAndWatch("\(path)/child")
            try await client.delete("\(path)/child")
            #expect(try await deletion.triggered().kind == .nodeDeleted)
            #expect(client.registeredWatchCount == 0)
            try await client.delete(path)
        }
    }

    @Test func aFailedReadSetsNoWatch() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            await expectError(.noNode) { try await client.getDataAndWatch(uniquePath()) }
            await expectError(.noNode) { try await client.getChildrenAndWatch(uniquePath()) }
            #expect(client.registeredWatchCount == 0)
        }
    }

    @Test func closeResolvesPendingWatchesWithClosed() async throws {
        let server = try await SharedServer.get()
        let client = try ZooKeeperClient(connectString: server.connectString, configuration: configuration())
        try await client.connect()
        let (_, watch) = try await client.existsAndWatch(uniquePath())
        #expect(client.registeredWatchCount == 1)
        await client.close()
        await expectError(.closed) { try await watch.triggered() }
        #expect(client.registeredWatchCount == 0)
        #expect(client.outstandingCallbackContexts == 0)
    }

    /// A client dropped without `close()` closes its handle in the background while its watches
    /// may be firing: every watch still resolves (fired, or `.closed`), and the C client never
    /// delivers an event to a watch that was freed with the client (it did: a crash in CI).
    @Test func aClientDroppedWithoutCloseResolvesEveryWatch() async throws {
        let server = try await SharedServer.get()
        let path = uniquePath()
        let count = 200
        var watches: [NodeWatch] = []
        weak var dropped: ZooKeeperClient?
        do {
            let client = try ZooKeeperClient(connectString: server.connectString, configuration: configuration())
            try await client.connect()
            for index in 0..<count { watches.append(try await client.existsAndWatch("\(path)-\(index)").watch) }
            dropped = client
        }
        try await eventually("the dropped client is gone") { dropped == nil }
        try await withClient(server.connectString) { other in
            // Fire the watches while the dropped client's handle is being closed.
            for index in 0..<count { try await other.create("\(path)-\(index)", mode: .ephemeral) }
        }
        let armed = watches
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for watch in armed {
                    do {
                        #expect(try await watch.triggered().kind == .nodeCreated)
                    } catch is CancellationError {
                        return
                    } catch {
                        #expect((error as? ZooKeeperError)?.code == .closed, "\(error)")
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(30))
                Issue.record("the watches of a dropped client never resolved")
            }
            try await group.next()
            group.cancelAll()
        }
    }

    @Test func dataUpdatesFollowEveryStateOfTheNode() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            var updates = client.dataUpdates(path).makeAsyncIterator()
            #expect(try await updates.next() == .noNode)
            try await client.create(path, data: Array("1".utf8))
            #expect(try await updates.next().map(Self.text) == "1")
            try await client.setData(path, data: Array("2".utf8))
            #expect(try await updates.next().map(Self.text) == "2")
            try await client.delete(path)
            #expect(try await updates.next() == .noNode)
            try await client.create(path, data: Array("3".utf8))
            #expect(try await updates.next().map(Self.text) == "3")
            try await client.delete(path)
        }
    }

    @Test func childrenUpdatesFollowMembership() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            try await client.create(path)
            var updates = client.childrenUpdates(path).makeAsyncIterator()
            #expect(try await Self.names(updates.next()) == [])
            try await client.create("\(path)/a", mode: .ephemeral)
            #expect(try await Self.names(updates.next()) == ["a"])
            try await client.create("\(path)/b")
            #expect(try await Self.names(updates.next()) == ["a", "b"])
            try await client.delete("\(path)/a")
            #expect(try await Self.names(updates.next()) == ["b"])
            try await client.delete("\(path)/b")
            #expect(try await Self.names(updates.next()) == [])
            try await client.delete(path)
            #expect(try await updates.next() == .noNode)
        }
    }

    @Test func streamsEndWithClosedWhenTheClientCloses() async throws {
        let server = try await SharedServer.get()
        let client = try ZooKeeperClient(connectString: server.connectString, configuration: configuration())
        try await client.connect()
        let path = uniquePath()
        var updates = client.dataUpdates(path).makeAsyncIterator()
        #expect(try await updates.next() == .noNode)
        await client.close()
        await expectError(.closed) { try await updates.next() }
    }

    /// Same session across a server restart: the watch the C client keeps fires for a change made
    /// while the client was away, and the stream hands out a fresh snapshot after the reconnect.
    @Test func watchesSurviveAServerRestartWithinTheSession() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        try await withClient(server.connectString, configuration: configuration(sessionTimeout: .seconds(10))) { client in
            let path = uniquePath()
            try await client.create(path, data: Array("before".utf8))
            let (_, oneShot) = try await client.getDataAndWatch(path)
            var updates = client.dataUpdates(path).makeAsyncIterator()
            #expect(try await updates.next().map(Self.text) == "before")
            let session = client.sessionCredentials?.sessionID
            let recorder = StateRecorder(client)

            await server.stop()
            try await recorder.wait(for: .suspended)
            try await server.start()
            try await recorder.waitForReconnect()
            #expect(client.sessionCredentials?.sessionID == session)
            // The fresh snapshot after the reconnect.
            #expect(try await updates.next().map(Self.text) == "before")
            try await client.setData(path, data: Array("after".utf8))
            #expect(try await oneShot.triggered().kind == .nodeDataChanged)
            #expect(try await updates.next().map(Self.text) == "after")
            try await client.delete(path)
        }
    }

    /// A new session after expiry: one-shot watches fail with sessionExpired, the stream re-arms
    /// on the new session and resynchronises.
    @Test func streamsResyncAfterSessionExpiry() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            try await client.create(path, data: Array("v1".utf8))
            let (_, oneShot) = try await client.getDataAndWatch(path)
            var updates = client.childrenUpdates(path).makeAsyncIterator()
            #expect(try await Self.names(updates.next()) == [])
            let recorder = StateRecorder(client)

            try await client.expireSessionForTesting()
            await expectError(.sessionExpired) { try await oneShot.triggered() }
            try await recorder.wait(for: .newSession)
            #expect(try await Self.names(updates.next()) == [])  // resynchronised on the new session
            try await client.create("\(path)/after-expiry")
            // Reconnects while the session was being taken over may add more fresh (equal) snapshots.
            var names = try await Self.names(updates.next())
            while names == [] { names = try await Self.names(updates.next()) }
            #expect(names == ["after-expiry"])
            try await client.delete("\(path)/after-expiry")
            try await client.delete(path)
        }
    }

    /// A pipelined watched read whose waiter is cancelled may still set its watch: the watch stays
    /// alive (waited for by nobody) until it fires, and then goes (freed at the cancellation, it
    /// crashed the process when it fired).
    @Test func aCancelledWatchedReadKeepsItsWatchAliveUntilItFires() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            let count = 200
            let creates = (0..<count).map { client.submitCreate("\(path)-\($0)") }
            for create in creates { _ = try await create.value() }
            let readers = (0..<count).map { index in
                let reply = client.submitGetDataAndWatch("\(path)-\(index)") { _ in }
                return Task { try await reply.value() }
            }
            for reader in readers { reader.cancel() }
            for reader in readers { _ = try? await reader.value }
            try await client.sync(path + "-0")  // every read has been answered (and its watch set)
            for index in 0..<count { try await client.setData("\(path)-\(index)", data: [1]) }
            #expect(client.registeredWatchCount == 0, "nobody waits for the cancelled reads' watches")
            try await eventually("every watch fired and was released") { client.heldWatchCount == 0 }
            let deletes = (0..<count).map { client.submitDelete("\(path)-\($0)") }
            for delete in deletes { _ = try await delete.value() }
        }
    }

    /// The watches an expiry fails stay alive until the expired handle is closed (the C client
    /// still holds them and calls them while it closes; freed earlier, that crashed), and are
    /// released then.
    @Test func watchesFailedByAnExpiryAreReleasedWhenTheirHandleCloses() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString) { client in
            let path = uniquePath()
            var watches: [NodeWatch] = []
            for index in 0..<200 { watches.append(try await client.existsAndWatch("\(path)-\(index)").watch) }
            let recorder = StateRecorder(client)
            try await client.expireSessionForTesting()
            for watch in watches { await expectError(.sessionExpired) { try await watch.triggered() } }
            try await recorder.wait(for: .newSession)
            try await eventually("the expired handle's watches are released") { client.outstandingCallbackContexts <= 1 }  // the ensemble tracker's
            #expect(client.registeredWatchCount == 0)
        }
    }

    static func text(_ update: DataUpdate) -> String? {
        if case .data(let node) = update { return node.string }
        return nil
    }

    static func names(_ update: ChildrenUpdate?) -> [String]? {
        if case .children(let children) = update { return children.names.sorted() }
        return nil
    }

    /// The server's count of watches (`wchs`: "Total watches:N").
    static func serverWatchCount(_ server: ZooKeeperServer) async throws -> Int {
        let answer = try await server.fourLetterWord("wchs")
        guard let line = answer.split(separator: "\n").first(where: { $0.hasPrefix("Total watches:") }),
            let count = Int(line.dropFirst("Total watches:".count))
        else { throw ZooKeeperTestingError("unexpected wchs answer: \(answer)") }
        return count
    }

    /// The number of watches the server keeps for one session (`wchc`: each session's id, then
    /// one tab-indented path per watch, once for data and once for children watches).
    static func serverWatchCount(_ server: ZooKeeperServer, session: Int64) async throws -> Int {
        let answer = try await server.fourLetterWord("wchc")
        let header = "0x" + String(UInt64(bitPattern: session), radix: 16)
        var count = 0
        var inSession = false
        for line in answer.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.first?.isWhitespace == true {
                if inSession { count += 1 }
            } else if line.hasPrefix("0x") {
                inSession = line.filter { !$0.isWhitespace } == header
            } else {
                throw ZooKeeperTestingError("unexpected wchc answer: \(answer)")
            }
        }
        return count
    }

    /// 10,000 streams (data and children streams on 100 nodes, many on the same node at once,
    /// and existence watches on missing nodes) started and cancelled leave the server's watch
    /// count where it began, in total (`wchs`) and for the client's session (`wchc`); a stream
    /// that ends does not take the watch of another stream on the same node with it.
    @Test(.timeLimit(.minutes(3))) func streamsThatEndRemoveTheirWatchesFromTheServer() async throws {
        let server = try await ZooKeeperServer.start()  // its own, so that every watch is this test's
        defer { server.destroy() }
        try await withClient(server.connectString) { client in
            let root = "/streams"
            for index in 0..<100 { try await client.create("\(root)/n\(index)", parents: .persistent) }
            try await eventually("the client's own watches are in place") { client.outstandingCallbackContexts == client.registeredWatchCount + 1 }
            let baseline = try await Self.serverWatchCount(server)
            let session = try #require(client.state.session?.sessionID)
            let sessionBaseline = try await Self.serverWatchCount(server, session: session)

            let survivor = client.dataUpdates("\(root)/n0")
            var survivorUpdates = survivor.makeAsyncIterator()
            _ = try await survivorUpdates.next()
            let withSurvivor = try await Self.serverWatchCount(server)
            #expect(withSurvivor == baseline + 1)
            let sessionWithSurvivor = try await Self.serverWatchCount(server, session: session)
            #expect(sessionWithSurvivor == sessionBaseline + 1)

            for batch in 0..<20 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<500 {
                        let node = "\(root)/n\((batch * 500 + index) % 100)"
                        group.addTask {
                            switch index % 3 {
                            case 0:
                                var updates = client.dataUpdates(node).makeAsyncIterator()
                                _ = try await updates.next()
                            case 1:
                                var updates = client.childrenUpdates(node).makeAsyncIterator()
                                _ = try await updates.next()
                            default:
                                var updates = client.dataUpdates(node + "-missing").makeAsyncIterator()
                                _ = try await updates.next()
                            }
                        }  // the iterator is dropped here: the stream ends
                    }
                    try await group.waitForAll()
                }
            }
            try await eventually("the server's watches are back where they were", timeout: .seconds(60)) {
                try await Self.serverWatchCount(server) == withSurvivor
            }
            #expect(try await Self.serverWatchCount(server, session: session) == sessionWithSurvivor, "the session's own watches too")
            #expect(client.state.session?.sessionID == session, "one session throughout")
            #expect(client.registeredWatchCount == 1, "only the surviving stream's watch")
            try await client.setData("\(root)/n0", data: Array("changed".utf8))
            #expect(try await survivorUpdates.next().map { if case .data(let node) = $0 { node.string } else { "" } } == "changed")
            try await client.deleteRecursively(root)
        }
    }
    /// A watching read cancelled before its reply, whose reply is an error (the node is missing):
    /// the C client set no watch, and the client forgets its registration too (it stayed counted,
    /// so a later withdrawal on the path would not have removed the server's watch).
    @Test(.timeLimit(.minutes(1))) func aCancelledWatchingReadThatFailsLeavesNoRegistration() async throws {
        let server = try await SharedServer.get()
        let proxy = try await FaultProxy.start(targetPort: server.port)
        let client = try await connectedTestClient(proxy.connectString)
        proxy.delay(.milliseconds(300))
        let reading = Task { try await client.getDataAndWatch(uniquePath()) }
        try await Task.sleep(for: .milliseconds(50))
        reading.cancel()
        _ = await reading.result
        try await eventually("the registration of the watch that was never set is gone", timeout: .seconds(5)) {
            client.registeredWatchCount == 0
        }
        proxy.restore()
        await client.close()
        await proxy.shutdown()
    }
}
