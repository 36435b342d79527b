import Testing
import ZooKeeper
import ZooKeeperTesting
@_spi(Concurrency) @testable import Coordination

@Suite struct DistributedLockTests {
    /// With a digest ACL, the lock's node and the holder's node carry it: a session without the
    /// credentials can see the holder but can neither break the lock nor queue for it.
    @Test func aProtectedLockCannotBeBrokenWithoutTheCredentials() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        var configuration = ZooKeeperClient.Configuration()
        configuration.digestCredentials = [.init(user: "ops", password: "secret")]
        let owner = try ZooKeeperClient(connectString: server.connectString, configuration: configuration)
        _ = try await owner.connect()
        let stranger = try await connectedTestClient(server.connectString)
        var lockConfiguration = DistributedLock.Configuration()
        lockConfiguration.acl = [ACL.digest(user: "ops", password: "secret"), ACL(permissions: .read, scheme: "world", id: "anyone")]
        let lease = try await DistributedLock(client: owner, path: path, configuration: lockConfiguration).acquire(timeout: .seconds(10))
        #expect(try await owner.getACL(path).acl == lockConfiguration.acl)
        #expect(try await owner.getACL(lease.node.path).acl == lockConfiguration.acl)
        #expect(try await stranger.childrenIfExists(path) == [lease.node.name])
        await #expect(throws: ZooKeeperError.self) { try await stranger.delete(lease.node.path) }
        await #expect(throws: ZooKeeperError.self) { _ = try await DistributedLock(client: stranger, path: path).tryAcquire() }
        #expect(lease.isHeld)
        await lease.release()
        await owner.close()
        await stranger.close()
    }

    /// 8 sessions take the same lock many times; an in-process checker never sees two holders.
    @Test func mutualExclusionAcrossSessions() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let holders = Shared(0)
        let violations = Shared(0)
        let acquisitions = Shared(0)
        let clients = try await withThrowingTaskGroup(of: ZooKeeperClient.self) { group in
            for _ in 0..<8 { group.addTask { try await connectedTestClient(server.connectString) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients {
                group.addTask {
                    let lock = DistributedLock(client: client, path: path)
                    for _ in 0..<12 {
                        try await lock.withLock(timeout: .seconds(60)) { lease in
                            if holders.withLock({ $0 += 1; return $0 }) != 1 { violations.withLock { $0 += 1 } }
                            try await Task.sleep(for: .milliseconds(2))
                            #expect(lease.isHeld)
                            holders.withLock { $0 -= 1 }
                            acquisitions.withLock { $0 += 1 }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(violations.value == 0)
        #expect(acquisitions.value == 96)
        // Releases send their deletes before returning; other sessions see them a moment later.
        try await eventually("no node is left behind") { try await clients[0].childrenIfExists(path).isEmpty }
        for client in clients { await client.close() }
    }

    @Test func tryAcquireAndTimeoutLeaveNoNodes() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let a = try await connectedTestClient(server.connectString)
        let b = try await connectedTestClient(server.connectString)
        let lease = try await DistributedLock(client: a, path: path).acquire()
        #expect(try await DistributedLock(client: b, path: path).tryAcquire() == nil)
        do {
            _ = try await DistributedLock(client: b, path: path).acquire(timeout: .milliseconds(300))
            Issue.record("acquired a held lock")
        } catch let error as CoordinationError {
            #expect(error.code == .timedOut)
        }
        try await eventually("b's nodes are gone") { try await a.childrenIfExists(path) == [lease.node.name] }
        await lease.release()
        // The release's delete reaches other sessions a moment later.
        try await eventually("a's node is gone for b too") { try await b.childrenIfExists(path).isEmpty }
        let second = try #require(try await DistributedLock(client: b, path: path).tryAcquire())
        #expect(second.fencingToken > lease.fencingToken, "fencing tokens grow")
        await second.release()
        try await eventually("released") { try await a.childrenIfExists(path).isEmpty }
        await a.close()
        await b.close()
    }

    /// A timeout also bounds the wait for a connection: acquiring while cut off gives up at the deadline.
    @Test func theTimeoutHoldsWhileDisconnected() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        let proxy = try await FaultProxy.start(targetPort: server.port)
        let client = try await connectedTestClient(proxy.connectString, sessionTimeout: .seconds(10))
        proxy.cut()
        try await eventually("suspended") { !client.state.isConnected }
        do {
            _ = try await DistributedLock(client: client, path: uniqueTestPath()).acquire(timeout: .milliseconds(500))
            Issue.record("acquired while disconnected")
        } catch let error as CoordinationError {
            #expect(error.code == .timedOut)
        }
        proxy.restore()
        await client.close()
        await proxy.shutdown()
    }

    /// Cancelling a waiter deletes its node, and the waiter behind it proceeds.
    @Test func cancellingAWaiterLeavesNoOrphan() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let a = try await connectedTestClient(server.connectString)
        let b = try await connectedTestClient(server.connectString)
        let c = try await connectedTestClient(server.connectString)
        let lease = try await DistributedLock(client: a, path: path).acquire()
        let waitingB = Task { try await DistributedLock(client: b, path: path).acquire() }
        try await eventually("b queues") { try await a.childrenIfExists(path).count == 2 }
        let waitingC = Task { try await DistributedLock(client: c, path: path).acquire() }
        try await eventually("c queues") { try await a.childrenIfExists(path).count == 3 }
        waitingB.cancel()
        await #expect(throws: CancellationError.self) { try await waitingB.value }
        try await eventually("b's node is gone") { try await a.childrenIfExists(path).count == 2 }
        await lease.release()
        let leaseC = try await waitingC.value
        #expect(leaseC.isHeld)
        await leaseC.release()
        for client in [a, b, c] { await client.close() }
    }

    /// A counting semaphore lets exactly `leases` holders in at once.
    @Test func semaphoreAdmitsExactlyItsLeases() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let inside = Shared(0)
        let peak = Shared(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let own = try await connectedTestClient(server.connectString)
                    let semaphore = DistributedSemaphore(client: own, path: path, maxLeases: 3)
                    for _ in 0..<3 {
                        try await semaphore.withLease { _ in
                            let now = inside.withLock { $0 += 1; return $0 }
                            peak.withLock { $0 = max($0, now) }
                            // Stay until someone else is in too (the semaphore has room for
                            // three), or long enough to show that nobody can come in.
                            let until = ContinuousClock.now + .seconds(3)
                            while inside.value < 2, peak.value < 2, ContinuousClock.now < until {
                                try await Task.sleep(for: .milliseconds(10))
                            }
                            inside.withLock { $0 -= 1 }
                        }
                    }
                    await own.close()
                }
            }
            try await group.waitForAll()
        }
        #expect(peak.value <= 3)
        #expect(peak.value >= 2, "the semaphore let several holders in at once")
        await client.close()
    }

    /// Readers share the lock; a writer excludes everyone.
    @Test func readWriteLock() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let a = try await connectedTestClient(server.connectString)
        let b = try await connectedTestClient(server.connectString)
        let read1 = try await DistributedLock(client: a, path: path, kind: .read).acquire()
        let read2 = try #require(try await DistributedLock(client: b, path: path, kind: .read).tryAcquire())
        #expect(try await DistributedLock(client: b, path: path, kind: .write).tryAcquire() == nil)
        // The failed attempt's node is deleted in the background: gone before the writer
        // queues, or client a could count it as the writer's.
        try await eventually("the failed attempt's node is gone") { try await a.childrenIfExists(path).count == 2 }
        let writer = Task { try await DistributedLock(client: b, path: path, kind: .write).acquire() }
        try await eventually("the writer queues") { try await a.childrenIfExists(path).count == 3 }
        // A reader arriving after a waiting writer waits behind it.
        #expect(try await DistributedLock(client: a, path: path, kind: .read).tryAcquire() == nil)
        await read1.release()
        await read2.release()
        let write = try await writer.value
        #expect(write.isHeld)
        await write.release()
        await a.close()
        await b.close()
    }

    /// A fenced write by a holder whose node is gone fails as a whole.
    @Test func fencedWritesFailForAStaleHolder() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        try await client.create("\(path)-data", data: Array("0".utf8))
        let lease = try await DistributedLock(client: client, path: path).acquire()
        _ = try await lease.fencedMulti([.setData(path: "\(path)-data", data: Array("1".utf8))])
        // Someone deletes our lock node (an operator, or the server after expiry).
        try await client.delete(lease.node.path)
        do {
            _ = try await lease.fencedMulti([.setData(path: "\(path)-data", data: Array("2".utf8))])
            Issue.record("a stale holder wrote")
        } catch let error as ZooKeeperError {
            #expect(error.code == .noNode)
            #expect(error.failedOperationIndex == 0)
        } catch let error as CoordinationError {
            #expect(error.code == .lost)
        }
        #expect(try await client.getData("\(path)-data").string == "1")
        #expect(await lease.waitUntilLost() == .nodeDeleted)
        await lease.release()
        try await client.delete("\(path)-data")
        await client.close()
    }

    /// Partition the holder: its loss signal fires before anyone else acquires (same clock).
    @Test(arguments: [LossPolicy.onPresumedExpired, .onSuspended])
    func lossIsSignalledBeforeTakeover(_ policy: LossPolicy) async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        let proxy = try await FaultProxy.start(targetPort: server.port)
        let path = uniqueTestPath()
        let holder = try await connectedTestClient(proxy.connectString, sessionTimeout: .seconds(3))
        let contender = try await connectedTestClient(server.connectString, sessionTimeout: .seconds(3))
        var configuration = DistributedLock.Configuration()
        configuration.lossPolicy = policy
        let lease = try await DistributedLock(client: holder, path: path, configuration: configuration).acquire()
        let lostAt = Shared<ContinuousClock.Instant?>(nil)
        let watcher = Task {
            _ = await lease.waitUntilLost()
            lostAt.withLock { $0 = .now }
        }
        let takeover = Task {
            let lease = try await DistributedLock(client: contender, path: path).acquire(timeout: .seconds(30))
            return (lease, ContinuousClock.now)
        }
        try await Task.sleep(for: .milliseconds(200))
        proxy.blackhole()
        let (otherLease, acquiredAt) = try await takeover.value
        await watcher.value
        let lost = try #require(lostAt.value)
        #expect(lost < acquiredAt, "the holder learned of the loss \(acquiredAt - lost) before the takeover")
        await otherLease.release()
        await holder.close()
        await contender.close()
        await proxy.shutdown()
    }

    /// The create of an acquire happens on the server but its reply is lost, and the acquire
    /// runs out of time before the connection comes back: once it does, the node is found and
    /// deleted, so it does not hold up the lock for as long as the session lives.
    @Test(.timeLimit(.minutes(2))) func anAcquireThatTimesOutAfterALostCreateReplyLeavesNoNode() async throws {
        try await withProxiedClient { proxy, contender, observer, path in
            try await contender.createPath(path, mode: .container)
            proxy.dropReplies()
            await #expect(throws: CoordinationError.self) {
                _ = try await DistributedLock(client: contender, path: path).acquire(timeout: .seconds(1))
            }
            let left = try await observer.childrenIfExists(path)
            #expect(left.count == 1, "the create reached the server: \(left)")
            proxy.restore()
            try await eventually("the node the timed-out acquire created is deleted", timeout: .seconds(20)) {
                try await observer.childrenIfExists(path).isEmpty
            }
            let lease = try #require(try await DistributedLock(client: observer, path: path).tryAcquire())
            await lease.release()
        }
    }

    /// Disconnected, `tryAcquire` cannot know whether the lock is free: it waits for the
    /// connection no longer than the session timeout, then says it timed out.
    @Test(.timeLimit(.minutes(1))) func tryAcquireWhileDisconnectedGivesUpAfterTheSessionTimeout() async throws {
        let server = try await ZooKeeperServer.shared()
        let proxy = try await FaultProxy.start(targetPort: server.port)
        let client = try await connectedTestClient(proxy.connectString, sessionTimeout: .seconds(4))
        proxy.cut()
        try await eventually("disconnected") { !client.state.isConnected }
        await #expect {
            _ = try await DistributedLock(client: client, path: uniqueTestPath()).tryAcquire()
        } throws: { ($0 as? CoordinationError)?.code == .timedOut }
        proxy.restore()
        await client.close()
        await proxy.shutdown()
    }

    /// The holder's session expires: the loss fires, and a new session can take the lock again.
    @Test func expiryEndsTheLeaseAndTheLockCanBeRetaken() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let lock = DistributedLock(client: client, path: path)
        let lease = try await lock.acquire()
        try await client.expireSessionForTesting()
        #expect(await lease.waitUntilLost() == .sessionLost)
        #expect(!lease.isHeld)
        let again = try await lock.acquire(timeout: .seconds(20))
        #expect(again.node.generation == 2)
        await again.release()
        await lease.release()
        await client.close()
    }

    /// A semaphore lease's holder loses its session: the lease is reported lost, a waiting
    /// contender takes the lease, and the holder takes one again on its new session once there is room.
    @Test(.timeLimit(.minutes(2))) func expiryEndsASemaphoreLeaseAndAnotherContenderTakesIt() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let holder = try await connectedTestClient(server.connectString)
        let contender = try await connectedTestClient(server.connectString)
        let semaphore = DistributedSemaphore(client: holder, path: path, maxLeases: 1)
        let lease = try await semaphore.acquire(timeout: .seconds(20))
        let expiredSession = try #require(holder.state.session?.sessionID)
        // The lease nodes are listed as soon as a lease is granted: no other lease may be there then.
        let waiting = Task {
            let lease = try await DistributedSemaphore(client: contender, path: path, maxLeases: 1).acquire(timeout: .seconds(60))
            return (lease, try await contender.childrenIfExists("\(path)/leases"))
        }
        try await eventually("the contender waits with a lease node of its own") {
            try await contender.childrenIfExists("\(path)/leases").count == 2
        }

        try await holder.expireSessionForTesting()
        #expect(await lease.waitUntilLost() == .sessionLost)
        #expect(!lease.isHeld)
        let (taken, leasesWhenTaken) = try await waiting.value
        #expect(taken.isHeld)
        #expect(leasesWhenTaken == [taken.node.name], "the expired lease's node was gone when the contender got in")

        // The holder, on its new session, waits for room and gets it when the contender releases.
        let again = Task {
            let lease = try await semaphore.acquire(timeout: .seconds(60))
            return (lease, try await holder.childrenIfExists("\(path)/leases"))
        }
        try await eventually("the holder waits from its new session") {
            try await contender.childrenIfExists("\(path)/leases").count == 2
        }
        await taken.release()
        let (second, leasesWhenRetaken) = try await again.value
        #expect(second.isHeld)
        #expect(leasesWhenRetaken == [second.node.name], "the contender's lease was gone when the holder got in again")
        #expect(second.node.generation == 2)
        #expect(second.node.sessionID != expiredSession && second.node.sessionID == holder.state.session?.sessionID)
        await second.release()
        await lease.release()
        try await eventually("no lease node is left behind") { try await contender.childrenIfExists("\(path)/leases").isEmpty }
        await holder.close()
        await contender.close()
    }

    /// A read/write lock holder whose session expires mid-hold: its lease is lost, the waiters of
    /// the other kind proceed (two readers together after a writer, a writer after a reader), a
    /// fenced write of the expired holder fails while theirs succeed, and on its new session the
    /// holder queues behind them.
    @Test(.timeLimit(.minutes(2)), arguments: [DistributedLock.Kind.write, .read])
    func aReadWriteHolderWhoseSessionExpiresLetsTheOthersProceed(_ expiring: DistributedLock.Kind) async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let data = "\(path)-data"
        let waiterKinds: [DistributedLock.Kind] = expiring == .write ? [.read, .read] : [.write]
        let holder = try await connectedTestClient(server.connectString)
        let waiters = try await waiterKinds.asyncMap { _ in try await connectedTestClient(server.connectString) }
        try await holder.create(data, data: Array("initial".utf8))
        let lock = DistributedLock(client: holder, path: path, kind: expiring)
        let lease = try await lock.acquire(timeout: .seconds(20))
        // The lock's children are listed as soon as a waiter gets in: the holder's node may not be there then.
        let waiting = zip(waiters, waiterKinds).map { client, kind in
            Task {
                let lease = try await DistributedLock(client: client, path: path, kind: kind).acquire(timeout: .seconds(60))
                return (lease, try await client.childrenIfExists(path))
            }
        }
        try await eventually("the others queue") { try await holder.childrenIfExists(path).count == 1 + waiterKinds.count }

        try await holder.expireSessionForTesting()
        #expect(await lease.waitUntilLost() == .sessionLost)
        let acquired = try await waiting.asyncMap { try await $0.value }
        let leases = acquired.map(\.0)
        #expect(leases.allSatisfy { $0.isHeld })
        for (_, children) in acquired {
            #expect(!children.contains(lease.node.name), "the expired holder's node was gone when a waiter got in")
        }
        do {
            try await lease.fencedMulti([.setData(path: data, data: Array("stale".utf8))])
            Issue.record("the expired holder wrote")
        } catch let error as CoordinationError {
            #expect(error.code == .lost)
        } catch let error as ZooKeeperError {
            #expect(error.code == .noNode && error.failedOperationIndex == 0)
        }
        for (index, lease) in leases.enumerated() {
            try await lease.fencedMulti([.setData(path: data, data: Array("waiter \(index)".utf8))])
        }

        // On its new session the holder queues behind them: not before they release.
        #expect(try await lock.tryAcquire() == nil)
        for lease in leases { await lease.release() }
        let again = try await lock.acquire(timeout: .seconds(20))
        #expect(again.node.generation == 2)
        #expect(try await holder.getData(data).string == "waiter \(leases.count - 1)", "the stale write never landed")
        await again.release()
        await lease.release()
        await holder.close()
        for client in waiters { await client.close() }
    }

    /// withLock cancels its body when the lock is lost, and says so.
    @Test func withLockCancelsTheBodyOnLoss() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let bodyCancelled = Shared(false)
        do {
            try await DistributedLock(client: client, path: path).withLock { lease in
                Task { try await client.delete(lease.node.path) }  // the lock is taken away
                do {
                    try await Task.sleep(for: .seconds(30))
                } catch is CancellationError {
                    bodyCancelled.withLock { $0 = true }
                    throw CancellationError()
                }
            }
            Issue.record("withLock returned normally")
        } catch let error as CoordinationError {
            #expect(error.code == .lost)
        }
        #expect(bodyCancelled.value)
        await client.close()
    }

    /// A create whose reply is lost (the connection is cut after the server applied it) is found
    /// again by its GUID and adopted; no orphan node stays behind.
    @Test func aLostCreateReplyLeavesNoOrphan() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        let proxy = try await FaultProxy.start(targetPort: server.port)
        let path = uniqueTestPath()
        let client = try await connectedTestClient(proxy.connectString, sessionTimeout: .seconds(6))
        let observer = try await connectedTestClient(server.connectString)
        try await client.createPath(path, mode: .container)
        proxy.delay(.milliseconds(400))
        let acquiring = Task { try await DistributedLock(client: client, path: path).acquire(timeout: .seconds(30)) }
        // The request reaches the server after 400 ms; its reply would arrive 400 ms later.
        try await eventually("the server created the node", timeout: .seconds(5)) { try await observer.childrenIfExists(path).count == 1 }
        proxy.cut()
        try await Task.sleep(for: .milliseconds(100))
        proxy.restore()
        let lease = try await acquiring.value
        #expect(try await observer.childrenIfExists(path) == [lease.node.name], "exactly our node, adopted")
        await lease.release()
        try await eventually("released") { try await observer.childrenIfExists(path).isEmpty }
        await client.close()
        await observer.close()
        await proxy.shutdown()
    }

    /// The owner check: a node in the queue that another session owns is never taken for ours,
    /// even at the head of the queue (CURATOR-604 / CURATOR-696).
    @Test func aNodeOfAnotherSessionIsNeverAdopted() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let other = try await connectedTestClient(server.connectString)
        try await client.createPath(path, mode: .container)
        // A node shaped like ours but created by another session (as a node of our previous
        // session would be, before the server deletes it).
        let foreign = try await other.create("\(path)/_c_00000000-0000-0000-0000-000000000000-lock-", mode: .ephemeralSequential)
        let session = try #require(client.state.session)
        let contender = QueueContender(client: client, parent: path, lockName: "lock-", maxHolders: 1)
        do {
            try await contender.awaitTurn(
                ContenderNode(path: foreign.path, sessionID: foreign.stat.ephemeralOwner, generation: session.generation, czxid: foreign.stat.czxid),
                children: nil, deadline: nil)
            Issue.record("took another session's node for ours")
        } catch let error as CoordinationError {
            #expect(error.code == .lost)
        }
        await other.close()
        await client.close()
    }

    /// withLock is re-entrant within a task and the tasks it starts: the inner call shares the
    /// outer lease, one node, released by the outermost call.
    @Test func withLockIsReentrantWithinATask() async throws {
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        let path = uniqueTestPath()
        let lock = DistributedLock(client: client, path: path)
        let sameLease = try await lock.withLock(timeout: .seconds(5)) { outer in
            let inner = try await lock.withLock(timeout: .seconds(1)) { $0 }
            let child = try await Task { try await lock.withLock(timeout: .seconds(1)) { $0 } }.value
            #expect(try await client.getChildren(path).names.count == 1, "one node for the nested holds")
            return inner === outer && child === outer && outer.isHeld
        }
        #expect(sameLease)
        #expect(try await client.getChildren(path).names.isEmpty, "the outermost call released it")
        await client.close()
    }
    /// A `Task` started in the body inherits the lease; its `withLock` is cancelled when the
    /// outermost call releases the lease, instead of going on with a lease nobody holds.
    @Test(.timeLimit(.minutes(1))) func anInheritedLeaseEndsForATaskThatOutlivesTheBody() async throws {
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        let path = uniqueTestPath()
        let lock = DistributedLock(client: client, path: path)
        let started = Latch<Void>()
        let outliving = try await lock.withLock(timeout: .seconds(5)) { _ in
            let task = Task {
                try await lock.withLock { _ in
                    _ = started.set(())
                    try await Task.sleep(for: .seconds(60))
                }
            }
            _ = await started.wait()
            return task
        }
        await #expect {
            try await outliving.value
        } throws: { ($0 as? CoordinationError)?.code == .lost }
        await client.close()
    }
}
