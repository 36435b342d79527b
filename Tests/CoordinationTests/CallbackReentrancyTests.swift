import Testing
import ZooKeeper
import ZooKeeperTesting
@testable import Coordination

/// Failure mode 5 of the incumbents (kazoo#356, #381, #208, CURATOR-172): calling ZooKeeper from
/// inside a watch, state or lock callback deadlocks their single event thread. Here no user code
/// runs on the C client's thread, so every such call simply works.
@Suite struct CallbackReentrancyTests {
    @Test func zooKeeperCallsFromInsideEventHandlersDoNotDeadlock() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        // Inside a session-event loop.
        for await state in client.sessionEvents {
            if case .connected = state {
                try await client.create(path)
                break
            }
        }
        // Inside a watch stream: react to an event by writing, and by taking and releasing a lock.
        var updates = client.childrenUpdates(path).makeAsyncIterator()
        #expect(try await updates.next() == .children(NodeChildren(names: [], stat: try #require(try await client.exists(path)))))
        try await client.create("\(path)/a")
        if case .children(let children)? = try await updates.next() {
            #expect(children.names == ["a"])
            let lease = try await DistributedLock(client: client, path: "\(path)-lock").acquire(timeout: .seconds(10))
            try await client.delete("\(path)/a")
            await lease.release()
        }
        // Inside a lock body, and inside a one-shot watch's continuation.
        try await DistributedLock(client: client, path: "\(path)-lock").withLock(timeout: .seconds(10)) { _ in
            let (_, watch) = try await client.existsAndWatch("\(path)/b")
            try await client.create("\(path)/b")
            _ = try await watch.triggered()
            try await client.delete("\(path)/b")
        }
        try await client.delete(path)
        await client.close()
    }

    /// A holder keeps its lock across a disconnect shorter than the presumed-expiry delay (same
    /// session), and the lock keeps excluding others.
    @Test func aLockSurvivesAShortDisconnect() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        let proxy = try await FaultProxy.start(targetPort: server.port)
        let path = uniqueTestPath()
        let holder = try await connectedTestClient(proxy.connectString, sessionTimeout: .seconds(10))
        let lease = try await DistributedLock(client: holder, path: path).acquire()
        let session = holder.sessionCredentials?.sessionID
        proxy.cut()
        try await eventually("suspended") { !holder.state.isConnected }
        proxy.restore()
        try await holder.waitUntilConnected(timeout: .seconds(20))
        try await eventually("reconnected") { holder.state.isConnected }
        #expect(holder.sessionCredentials?.sessionID == session)
        #expect(lease.isHeld)
        let other = try await connectedTestClient(server.connectString)
        #expect(try await DistributedLock(client: other, path: path).tryAcquire() == nil)
        await lease.release()
        let next = try await DistributedLock(client: other, path: path).acquire(timeout: .seconds(10))
        await next.release()
        await holder.close()
        await other.close()
        await proxy.shutdown()
    }
}
