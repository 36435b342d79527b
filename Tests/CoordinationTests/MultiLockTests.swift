import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

/// The lock over several locks: all or nothing.
@Suite struct MultiLockTests {
    @Test(.timeLimit(.minutes(1))) func itTakesEveryLockOrNone() async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath()
        let a = try await connectedTestClient(server.connectString)
        let b = try await connectedTestClient(server.connectString)
        let paths = ["\(root)/one", "\(root)/two", "\(root)/three"]
        // Another session holds the last lock: taking all three fails and leaves none taken.
        let blocker = try await DistributedLock(client: b, path: paths[2]).acquire()
        let multi = MultiLock(paths.map { DistributedLock(client: a, path: $0) })
        do {
            _ = try await multi.acquire(timeout: .milliseconds(500))
            Issue.record("acquired a lock another session holds")
        } catch let error as CoordinationError {
            #expect(error.code == .timedOut)
        }
        for path in paths.dropLast() {
            #expect(try await a.childrenIfExists(path).isEmpty, "\(path) was released after the failure")
        }
        await blocker.release()
        let held = try await multi.withLocks(timeout: .seconds(5)) { leases in
            leases.allSatisfy(\.isHeld) && leases.count == 3
        }
        #expect(held)
        for path in paths { #expect(try await a.childrenIfExists(path).isEmpty) }
        await a.close()
        await b.close()
    }

    /// An expired session ends the body with `.lost`, naming a lock, and another session can
    /// take every lock at once afterwards.
    @Test(.timeLimit(.minutes(1))) func anExpiryCancelsTheBodyAndFreesEveryLock() async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath()
        let a = try await connectedTestClient(server.connectString)
        let b = try await connectedTestClient(server.connectString)
        let paths = ["\(root)/one", "\(root)/two"]
        let holding = Task {
            try await MultiLock(paths.map { DistributedLock(client: a, path: $0) }).withLocks { _ in
                try await Task.sleep(for: .seconds(60))
            }
        }
        try await eventually("both locks are held") { try await b.childrenIfExists(paths[1]).count == 1 }
        try await a.expireSessionForTesting()
        do {
            try await holding.value
            Issue.record("the body outlived the session")
        } catch let error as CoordinationError {
            #expect(error.code == .lost && paths.contains { error.path.hasPrefix($0) }, "\(error.path)")
        }
        let leases = try await MultiLock(paths.map { DistributedLock(client: b, path: $0) }).acquire(timeout: .seconds(10))
        #expect(leases.count == 2)
        await MultiLock.release(leases)
        await a.close()
        await b.close()
    }
}
