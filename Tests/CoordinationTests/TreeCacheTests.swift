import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

/// The subtree cache against a real server: the initial read, changes, a depth limit, an
/// expired session, and watches withdrawn on close.
@Suite struct TreeCacheTests {
    /// Takes events until `count` have arrived (or fails after 20 seconds).
    static func take(_ count: Int, from events: inout TreeCacheEvents.AsyncIterator) async throws -> [TreeCacheEvent] {
        var taken: [TreeCacheEvent] = []
        while taken.count < count, let event = try await events.next() { taken.append(event) }
        return taken
    }

    @Test(.timeLimit(.minutes(1))) func itReadsTheTreeThenFollowsEveryChange() async throws {
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        let root = uniqueTestPath()
        try await client.create("\(root)/a/x", data: [1], parents: .persistent)
        try await client.create("\(root)/b", data: [2])
        try await client.create("\(root)/a/x/deep", data: [3])  // below maxDepth 2: not cached
        let cache = TreeCache(client: client, path: root, maxDepth: 2)
        var events = cache.events().makeAsyncIterator()
        cache.start()
        let initial = try await Self.take(5, from: &events)
        #expect(initial.compactMap(\.path) == [root, "\(root)/a", "\(root)/b", "\(root)/a/x"], "level by level, each in name order")
        #expect(initial.last == .initialized)
        #expect(Set(cache.snapshot().keys) == [root, "\(root)/a", "\(root)/a/x", "\(root)/b"])

        try await client.setData("\(root)/b", data: [20])
        guard case .changed("\(root)/b", let changed)? = try await events.next() else { Issue.record("expected a change of b"); return }
        #expect(changed.bytes == [20])
        try await client.create("\(root)/a/y", data: [4])
        guard case .created("\(root)/a/y", _)? = try await events.next() else { Issue.record("expected y created"); return }
        try await client.deleteRecursively("\(root)/a")
        let deletions = try await Self.take(3, from: &events)
        #expect(Set(deletions.compactMap(\.path)) == ["\(root)/a/x", "\(root)/a/y", "\(root)/a"])
        #expect(deletions.last?.path == "\(root)/a", "the parent last")
        #expect(cache.snapshot().keys.sorted() == [root, "\(root)/b"])

        // A late subscriber gets the tree as it is, then the changes.
        var late = cache.events().makeAsyncIterator()
        #expect(try await Self.take(3, from: &late).compactMap(\.path) == [root, "\(root)/b"])
        await cache.close()
        #expect(try await events.next() == nil, "the stream ends with the cache")
        try await client.deleteRecursively(root)
        await client.close()
    }

    /// Changes made while the cache's session expires are reported as exactly the differences
    /// once the new session has read the tree again.
    @Test(.timeLimit(.minutes(1))) func anExpiredSessionIsFollowedByTheDifferences() async throws {
        let server = try await ZooKeeperServer.shared()
        let client = try await connectedTestClient(server.connectString)
        let writer = try await connectedTestClient(server.connectString)
        let root = uniqueTestPath()
        for index in 0..<5 { try await writer.create("\(root)/n\(index)", data: [UInt8(index)], parents: .persistent) }
        let cache = TreeCache(client: client, path: root)
        var events = cache.events().makeAsyncIterator()
        cache.start()
        _ = try await Self.take(7, from: &events)  // root, 5 nodes, initialized

        // The session expires; the tree changes while the client opens a new one.
        try await client.expireSessionForTesting()
        try await writer.delete("\(root)/n0")
        try await writer.setData("\(root)/n1", data: [100])
        try await writer.create("\(root)/n5", data: [5])
        try await client.waitUntilConnected()
        let differences = try await Self.take(3, from: &events)
        #expect(differences.contains { if case .deleted("\(root)/n0", _) = $0 { true } else { false } })
        #expect(differences.contains { if case .changed("\(root)/n1", let node) = $0 { node.bytes == [100] } else { false } })
        #expect(differences.contains { if case .created("\(root)/n5", _) = $0 { true } else { false } })
        try await eventually("the cache equals the tree") {
            cache.snapshot().count == 6 && cache.node(at: "\(root)/n1")?.bytes == [100]
        }
        // And it follows again on the new session.
        try await writer.setData("\(root)/n2", data: [42])
        guard case .changed("\(root)/n2", _)? = try await events.next() else { Issue.record("expected n2 changed"); return }
        await cache.close()
        try await writer.deleteRecursively(root)
        await writer.close()
        await client.close()
    }

    /// A closed cache leaves no watch on the server.
    @Test(.timeLimit(.minutes(1))) func closingWithdrawsTheWatches() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        let client = try await connectedTestClient(server.connectString)
        for index in 0..<50 { try await client.create("/tree/d\(index % 5)/n\(index)", data: [1], parents: .persistent) }
        // Paths under /tree that the server watches (the client's own watch on the ensemble
        // configuration is not the cache's).
        func watchedPaths() async throws -> Int {
            try await server.fourLetterWord("wchp").split(separator: "\n").count { $0.hasPrefix("/tree") }
        }
        let cache = TreeCache(client: client, path: "/tree")
        cache.start()
        try await cache.waitUntilInitialized()
        #expect(try await watchedPaths() == 56, "every node watched")
        await cache.close()
        try await eventually("the watches are withdrawn") { try await watchedPaths() == 0 }
        await client.close()
    }

    /// A connection cut during the first read: the cache ends up equal to the tree, having
    /// reported each node once, and a closed cache leaves no watch on the server (the watches set
    /// again by the second read replace those of the first, which are withdrawn).
    @Test(.timeLimit(.minutes(2))) func aReadCutOffByALostConnectionLeavesNothingBehind() async throws {
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        let proxy = try await FaultProxy.start(targetPort: server.port)
        let writer = try await connectedTestClient(server.connectString)
        for directory in 0..<20 {
            try await writer.create("/tree/d\(directory)", parents: .persistent)
            let replies = (0..<100).map { writer.submitCreate("/tree/d\(directory)/n\($0)", data: [1]) }
            for reply in replies { _ = try await reply.value() }
        }
        let client = try await connectedTestClient(proxy.connectString, sessionTimeout: .seconds(20))
        let cache = TreeCache(client: client, path: "/tree")
        var events = cache.events().makeAsyncIterator()
        cache.start()
        var created = Set<String>()
        while created.count < 200, let event = try await events.next() {
            if case .created(let path, _) = event { created.insert(path) }
        }
        proxy.cut()
        try await Task.sleep(for: .milliseconds(300))
        proxy.restore()
        try await cache.waitUntilInitialized()
        var duplicates = 0
        while let event = try await events.next(), event != .initialized {
            if case .created(let path, _) = event, !created.insert(path).inserted { duplicates += 1 }
        }
        #expect(duplicates == 0, "a node reported twice")
        #expect(cache.snapshot().count == 1 + 20 + 2000)
        await cache.close()
        try await eventually("the watches are withdrawn") {
            try await server.fourLetterWord("wchp").split(separator: "\n").count { $0.hasPrefix("/tree") } == 0
        }
        await client.close()
        await writer.close()
        await proxy.shutdown()
    }
}
