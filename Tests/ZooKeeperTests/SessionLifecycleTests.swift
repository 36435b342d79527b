import Dispatch
import Foundation
import Synchronization
import Testing
import ZooKeeper
import ZooKeeperTesting

/// The session's life against real servers: expiry, partitions, failover, close, cancellation.
@Suite struct SessionLifecycleTests {
    @Test func expiryOpensANewSessionAndFailsWhatWasInFlight() async throws {
        let server = try await SharedServer.get()
        try await withClient(server.connectString, configuration: configuration {
            $0.digestCredentials = [.init(user: "bob", password: "builder")]
        }) { client in
            let recorder = StateRecorder(client)
            let first = try #require(client.state.session)
            #expect(first.generation == 1)
            let path = uniquePath()
            try await client.create(path, acl: [ACL.digest(user: "bob", password: "builder")])
            try await client.create("\(path)/ephemeral", mode: .ephemeral)

            try await client.expireSessionForTesting()
            let (expired, _) = try await recorder.wait(for: .expired)
            #expect(expired.session?.sessionID == first.sessionID)
            let (fresh, _) = try await recorder.wait(for: .newSession)
            #expect(fresh.session?.generation == 2)
            #expect(fresh.session?.sessionID != first.sessionID)
            try await client.waitUntilConnected()
            // The old session's ephemeral node is gone; the credentials were applied again.
            try await eventually("the old ephemeral node is gone") { try await client.exists("\(path)/ephemeral") == nil }
            #expect(try await client.getData(path).bytes == [])
            try await client.delete(path)
            let order = recorder.recorded.map { SessionStateKind($0.state) }.filter { [.expired, .connecting, .newSession, .connected].contains($0) }
            #expect(order.suffix(4) == [.expired, .connecting, .newSession, .connected])
        }
    }

    /// A handle opened while no server answers: the C client refuses credentials between its
    /// connection attempts, so they wait and are given at the first connection, before it is
    /// reported (they were dropped, and the session ran without them).
    @Test(.timeLimit(.minutes(1))) func credentialsGivenWhileNoServerAnswersApplyOnceConnected() async throws {
        let server = try await SharedServer.get()
        let proxy = try await FaultProxy.start(targetPort: server.port)
        proxy.cut()
        let client = try ZooKeeperClient(connectString: proxy.connectString, configuration: configuration {
            $0.digestCredentials = [.init(user: "carol", password: "secret")]
        })
        // Give the C client time to fail a connection attempt before the credentials are given.
        client.afterHandleInitForTesting.withLock { $0 = { _ in Thread.sleep(forTimeInterval: 0.3) } }
        client.start()
        try await Task.sleep(for: .milliseconds(600))
        proxy.restore()
        try await client.waitUntilConnected(timeout: .seconds(20))
        let path = uniquePath()
        try await client.create(path, acl: [ACL.digest(user: "carol", password: "secret")])
        #expect(try await client.getData(path).bytes == [], "the session carries the credentials")
        try await client.delete(path)
        await client.close()
        await proxy.shutdown()
    }

    /// On a busy machine a new handle can connect, and the connection be reported and used,
    /// before the handle queue has put the handle in the slot: the configured credentials are
    /// given at the connection, before it is reported, so the first request already carries them
    /// (it was refused with `noAuth` when they were given only by the opener).
    @Test(.timeLimit(.minutes(1))) func theFirstRequestCarriesTheCredentialsWhenTheOpenerIsSlow() async throws {
        let server = try await SharedServer.get()
        let owner = try ZooKeeperClient(connectString: server.connectString, configuration: configuration {
            $0.digestCredentials = [.init(user: "dave", password: "secret")]
        })
        try await owner.connect()
        let path = uniquePath()
        try await owner.create(path, data: Array("mine".utf8), acl: [ACL.digest(user: "dave", password: "secret")])
        let client = try ZooKeeperClient(connectString: server.connectString, configuration: configuration {
            $0.digestCredentials = [.init(user: "dave", password: "secret")]
        })
        let opened = DispatchSemaphore(value: 0)
        client.afterHandleInitForTesting.withLock { $0 = { _ in opened.wait() } }
        try await client.connect()
        let read: Result<[UInt8], any Error>
        do { read = .success(try await client.getData(path).bytes) } catch { read = .failure(error) }
        opened.signal()  // the opener finishes only now
        #expect(try read.get() == Array("mine".utf8))
        try await owner.delete(path)
        await client.close()
        await owner.close()
    }

    /// On a busy machine the session watcher can see a new handle connect (and the client can be
    /// used and closed) before the handle queue has finished opening it. The handle is then
    /// closed once, by the close, not a second time by the opener (which was a use-after-free).
    @Test func aHandleClosedBeforeItsOpenerFinishedIsClosedOnce() async throws {
        let server = try await SharedServer.get()
        for _ in 0..<5 {
            let client = try ZooKeeperClient(connectString: server.connectString, configuration: configuration())
            let opened = DispatchSemaphore(value: 0)
            client.afterHandleInitForTesting.withLock { $0 = { _ in opened.wait() } }
            try await client.connect()
            #expect(try await client.exists("/") != nil)
            let closing = Task { await client.close() }
            try await eventually("the client is closed") { client.state == .closed }
            opened.signal()
            await closing.value
            #expect(client.closedHandleCount == 1)
            #expect(client.outstandingCallbackContexts == 0)
        }
    }

    @Test func withoutReconnectAnExpiredClientFailsEveryRequest() async throws {
        let server = try await SharedServer.get()
        let client = try ZooKeeperClient(connectString: server.connectString, configuration: configuration {
            $0.reconnectAfterExpiry = false
        })
        try await client.connect()
        let recorder = StateRecorder(client)
        try await client.expireSessionForTesting()
        try await recorder.wait(for: .expired)
        await expectError(.sessionExpired) { try await client.exists("/") }
        await client.close()
        #expect(client.outstandingCallbackContexts == 0)
    }

    /// Without a new session nothing can be watched again: a data stream ends with the expiry
    /// instead of retrying for ever.
    @Test(.timeLimit(.minutes(1))) func withoutReconnectAStreamEndsWithTheExpiry() async throws {
        let server = try await SharedServer.get()
        let client = try ZooKeeperClient(connectString: server.connectString, configuration: configuration {
            $0.reconnectAfterExpiry = false
        })
        try await client.connect()
        var updates = client.dataUpdates(uniquePath()).makeAsyncIterator()
        #expect(try await updates.next() == .noNode)
        try await client.expireSessionForTesting()
        await expectError(.sessionExpired) { while try await updates.next() != nil {} }
        await client.close()
    }

    /// A silent partition through the proxy: suspended, presumedExpired a whole negotiated
    /// timeout later, then (once the network heals) expired and a new session, in that order.
    @Test func partitionGoesSuspendedPresumedExpiredExpiredNewSession() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        let proxy = try await FaultProxy.start(targetPort: server.port)
        let client = try ZooKeeperClient(connectString: proxy.connectString, configuration: configuration(sessionTimeout: .seconds(2)))
        let session = try await client.connect()
        #expect(session.negotiatedTimeout == .seconds(2))
        let recorder = StateRecorder(client)
        let path = uniquePath()
        try await client.create(path, mode: .ephemeral)

        proxy.blackhole()
        // suspended, then presumedExpired (its delay, 4/15 of the negotiated timeout, is checked
        // as pure logic in SessionStateMachineTests; a loaded machine delays when this test sees
        // the events, so it asserts their order, not their spacing).
        try await recorder.wait(for: .suspended)
        try await recorder.wait(for: .presumedExpired)
        // Requests meanwhile fail fast-ish instead of hanging.
        try await Task.sleep(for: .seconds(2))  // the server expires the session (2 s without pings)
        proxy.restore()
        try await recorder.wait(for: .expired)
        try await recorder.wait(for: .newSession)
        let kinds = recorder.recorded.map { SessionStateKind($0.state) }
        #expect(Array(kinds.prefix(6)) == [.connected, .suspended, .presumedExpired, .expired, .connecting, .newSession])
        try await client.waitUntilConnected()
        #expect(try await client.exists(path) == nil)
        await client.close()
        await proxy.shutdown()
        #expect(client.outstandingCallbackContexts == 0)
    }

    @Test func requestsDuringAPartitionFailWithConnectionLossAndTheSessionSurvivesAShortOne() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        let proxy = try await FaultProxy.start(targetPort: server.port)
        // The longest session the test server grants (20 ticks): the client must be back within
        // 4/15 of it, 2.7 s, or it presumes the session expired; a loaded machine has taken 1.6 s.
        try await withClient(proxy.connectString, configuration: configuration(sessionTimeout: .seconds(10))) { client in
            let session = client.sessionCredentials?.sessionID
            let recorder = StateRecorder(client)
            proxy.cut()
            try await recorder.wait(for: .suspended)
            await expectError(.connectionLoss) { try await client.getData("/") }
            proxy.restore()
            try await recorder.waitForReconnect()
            #expect(client.sessionCredentials?.sessionID == session)
            #expect(!recorder.recorded.contains { SessionStateKind($0.state) == .presumedExpired })
        }
        await proxy.shutdown()
    }

    /// Kill the ensemble member the client is connected to: it moves to another, same session.
    @Test func ensembleFailoverKeepsTheSession() async throws {
        let ensemble = try await ZooKeeperEnsemble.start()
        defer { ensemble.destroy() }
        try await withClient(ensemble.connectString, configuration: configuration(sessionTimeout: .seconds(8))) { client in
            let path = uniquePath()
            // A freshly elected ensemble can still drop the first connections while followers sync.
            try await retryingConnectionLoss { try await client.create(path, mode: .ephemeral) }
            let session = try #require(client.sessionCredentials?.sessionID)
            let hex = "0x" + String(UInt64(bitPattern: session), radix: 16)
            // Kill the server that lists the session. A listing can be stale (a server the client
            // was dropped from keeps it for a moment while the new one has not shown it yet); then
            // the client does not notice the kill: that server is restarted and the search repeated.
            let recorder = StateRecorder(client)
            var failedOver = false
            for _ in 0..<3 where !failedOver {
                var listing: [Int] = []
                try await eventually("exactly one server lists session \(hex)", timeout: .seconds(20)) {
                    listing = []
                    for (index, server) in ensemble.servers.enumerated() {
                        if let connections = try? await server.fourLetterWord("cons"), connections.contains("sid=\(hex))") || connections.contains("sid=\(hex),") {
                            listing.append(index)
                        }
                    }
                    return listing.count == 1
                }
                await ensemble.servers[listing[0]].kill()
                let deadline = ContinuousClock.now + .seconds(10)
                while ContinuousClock.now < deadline && !failedOver {
                    failedOver = recorder.recorded.contains { SessionStateKind($0.state) == .suspended }
                    try await Task.sleep(for: .milliseconds(50))
                }
                if !failedOver { try await ensemble.servers[listing[0]].start() }
            }
            try #require(failedOver, "the client never lost the server it was on")
            try await recorder.waitForReconnect(timeout: .seconds(40))
            #expect(client.sessionCredentials?.sessionID == session)
            // If the killed server led, the others elect a new leader and may drop the client once
            // more meanwhile; the session survives that too.
            let owner = try await retryingConnectionLoss { try await client.exists(path)?.ephemeralOwner }
            #expect(owner == session)
            #expect(!recorder.recorded.contains { SessionStateKind($0.state) == .expired })
            try await retryingConnectionLoss { try await client.delete(path) }
        }
    }

    /// Two of three members down: no quorum, requests fail; one back: the session goes on.
    @Test func ensembleWithoutQuorumSuspendsUntilAMemberReturns() async throws {
        let ensemble = try await ZooKeeperEnsemble.start()
        defer { ensemble.destroy() }
        try await withClient(ensemble.connectString, configuration: configuration(sessionTimeout: .seconds(10))) { client in
            let path = uniquePath()
            try await retryingConnectionLoss { try await client.create(path) }
            let recorder = StateRecorder(client)
            await ensemble.servers[0].kill()
            await ensemble.servers[1].kill()
            try await recorder.wait(for: .suspended)
            try await ensemble.servers[1].start()
            try await ensemble.waitForQuorum()
            try await client.waitUntilConnected(timeout: .seconds(40))
            #expect(try await client.exists(path) != nil)
            try await client.delete(path)
        }
    }

    /// The server rejects an unknown auth scheme and closes the connection: the handle is unusable.
    @Test func aRejectedAuthenticationEndsInAuthFailed() async throws {
        let server = try await SharedServer.get()
        let client = try ZooKeeperClient(connectString: server.connectString, configuration: configuration())
        try await client.connect()
        let recorder = StateRecorder(client)
        await expectError(.authFailed) { try await client.addAuth(scheme: "no-such-scheme", credential: Array("x".utf8)) }
        try await recorder.wait(for: .authFailed)
        await expectError(.authFailed) { try await client.exists("/") }
        await client.close()
        #expect(client.state == .closed)
        #expect(client.outstandingCallbackContexts == 0)
    }

    @Test func closeWithManyRequestsInFlightResumesEveryOne() async throws {
        let server = try await SharedServer.get()
        let client = try ZooKeeperClient(connectString: server.connectString, configuration: configuration())
        try await client.connect()
        let path = uniquePath()
        try await client.create(path, data: Array("x".utf8))
        let outcomes = Locked<(succeeded: Int, closed: Int, other: [String])>((0, 0, []))
        try await within(.seconds(30), "close with requests in flight") {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<3000 {
                    group.addTask {
                        do {
                            _ = try await client.getData(path)
                            outcomes.withLock { $0.succeeded += 1 }
                        } catch let error as ZooKeeperError where error.code == .closed {
                            outcomes.withLock { $0.closed += 1 }
                        } catch {
                            outcomes.withLock { $0.other.append("\(error)") }
                        }
                    }
                }
                group.addTask {
                    try? await Task.sleep(for: .milliseconds(5))
                    await client.close()
                }
            }
        }
        let result = outcomes.withLock { $0 }
        #expect(result.succeeded + result.closed == 3000, "other outcomes: \(result.other.prefix(3))")
        #expect(client.outstandingCallbackContexts == 0)
        #expect(client.state == .closed)
    }

    @Test func cancellingAnAwaitingCallThrowsCancellationAndLeaksNothing() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        let proxy = try await FaultProxy.start(targetPort: server.port)
        let client = try ZooKeeperClient(connectString: proxy.connectString, configuration: configuration(sessionTimeout: .seconds(10)))
        try await client.connect()
        let recorder = StateRecorder(client)
        proxy.blackhole()
        let waiting = Task { try await client.getData("/") }
        try await Task.sleep(for: .milliseconds(200))
        waiting.cancel()
        let outcome = try await within(.seconds(5), "the cancelled call") { await waiting.result }
        #expect(throws: CancellationError.self) { try outcome.get() }
        // Healing closes the blackholed connection; the client reconnects to the same session.
        proxy.restore()
        try await recorder.waitForReconnect()
        #expect(try await client.exists("/") != nil)
        await client.close()
        #expect(client.outstandingCallbackContexts == 0)
        await proxy.shutdown()
    }

    @Test func serviceRunEndsWithCloseOnCancellation() async throws {
        let server = try await SharedServer.get()
        let client = try ZooKeeperClient(connectString: server.connectString, configuration: configuration())
        let running = Task { try await client.run() }
        try await client.waitUntilConnected(timeout: .seconds(20))
        running.cancel()
        try await within(.seconds(10), "run() after cancellation") { try await running.value }
        #expect(client.state == .closed)
        #expect(client.outstandingCallbackContexts == 0)
    }
}
