import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

/// The barriers against a real server: waiters released together, members that enter and leave
/// together, and a waiter whose session expires while it waits.
@Suite struct BarrierTests {
    @Test(.timeLimit(.minutes(1))) func aBarrierHoldsItsWaitersUntilRemovedEvenAcrossAnExpiry() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let owner = try await connectedTestClient(server.connectString)
        let waiter = try await connectedTestClient(server.connectString)
        let barrier = DistributedBarrier(client: owner, path: path)
        try await barrier.waitUntilRemoved()  // open: returns at once
        try await barrier.set()
        try await barrier.set()  // closed already is fine
        #expect(try await barrier.isSet())
        do {
            try await DistributedBarrier(client: waiter, path: path).waitUntilRemoved(timeout: .milliseconds(200))
            Issue.record("passed a closed barrier")
        } catch let error as CoordinationError {
            #expect(error.code == .timedOut)
        }
        let released = Shared(false)
        let waiting = Task {
            try await DistributedBarrier(client: waiter, path: path).waitUntilRemoved()
            released.withLock { $0 = true }
        }
        try await eventually("the waiter watches the barrier") { try await server.fourLetterWord("wchp").contains(path) }
        try await waiter.expireSessionForTesting()
        // The waiter looks again on its new session: it watches the barrier from that session.
        try await eventually("the waiter has a new session") { waiter.state.session != nil }
        let session = "0x" + String(UInt64(bitPattern: try #require(waiter.state.session?.sessionID)), radix: 16)
        try await eventually("the waiter watches the barrier from its new session") {
            let blocks = try await server.fourLetterWord("wchc").components(separatedBy: "0x").map { "0x" + $0 }
            return blocks.contains { $0.hasPrefix(session) && $0.contains(path) }
        }
        #expect(!released.value, "an expiry does not open the barrier")
        try await barrier.remove()
        try await waiting.value
        #expect(released.value)
        try await barrier.remove()  // open already is fine
        await owner.close()
        await waiter.close()
    }

    @Test(.timeLimit(.minutes(1))) func membersOfADoubleBarrierEnterTogetherAndLeaveTogether() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let clients = try await (0..<3).asyncMap { _ in try await connectedTestClient(server.connectString) }
        let log = Shared<[String]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, client) in clients.enumerated() {
                group.addTask {
                    let barrier = DoubleBarrier(client: client, path: path, memberCount: 3)
                    try await Task.sleep(for: .milliseconds(150 * index))  // arrive one by one
                    log.withLock { $0.append("entering") }
                    if index == 1 { try await client.expireSessionForTesting() }  // enters again on the new session
                    try await barrier.enter(timeout: .seconds(20))
                    log.withLock { $0.append("entered") }
                    try await Task.sleep(for: .milliseconds(100 * (2 - index)))  // leave in a different order
                    log.withLock { $0.append("leaving") }
                    try await barrier.leave(timeout: .seconds(20))
                    log.withLock { $0.append("left") }
                }
            }
            try await group.waitForAll()
        }
        let events = log.value
        #expect(events.lastIndex(of: "entering")! < events.firstIndex(of: "entered")!, "nobody enters before everyone arrived")
        #expect(events.lastIndex(of: "leaving")! < events.firstIndex(of: "left")!, "nobody leaves before everyone is leaving")
        #expect(try await clients[0].childrenIfExists(path).isEmpty, "no member node and no ready node remain")
        for client in clients { await client.close() }
    }

    @Test(.timeLimit(.minutes(1))) func aDoubleBarrierThatTimesOutLeavesNoMemberNode() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        do {
            try await DoubleBarrier(client: client, path: path, memberCount: 2).enter(timeout: .milliseconds(300))
            Issue.record("entered alone a barrier for two")
        } catch let error as CoordinationError {
            #expect(error.code == .timedOut)
        }
        #expect(try await client.childrenIfExists(path).isEmpty)
        await client.close()
    }
    /// A member cancelled while it waits to enter leaves no node behind (the delete is sent even
    /// from the cancelled task), so the next two members do not pass a barrier for three.
    @Test(.timeLimit(.minutes(1))) func aCancelledEnterLeavesNoMemberNode() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let entering = Task { try await DoubleBarrier(client: client, path: path, memberCount: 3).enter() }
        try await eventually("the member's node is there") { try await client.childrenIfExists(path).count == 1 }
        entering.cancel()
        _ = await entering.result
        try await eventually("the cancelled member's node is gone", timeout: .seconds(5)) { try await client.childrenIfExists(path).isEmpty }
        await client.close()
    }
    /// A member whose session expires while it waits to enter fails with `.lost` (as Curator's
    /// does): the others may have counted its node and passed, and would never come back for it.
    @Test(.timeLimit(.minutes(1))) func anExpiryWhileWaitingToEnterIsALoss() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let entering = Task { try await DoubleBarrier(client: client, path: path, memberCount: 2).enter(timeout: .seconds(30)) }
        try await eventually("the member waits") { try await client.childrenIfExists(path).count == 1 }
        try await client.expireSessionForTesting()
        await #expect {
            try await entering.value
        } throws: { ($0 as? CoordinationError)?.code == .lost }
        await client.close()
    }
}
