import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

/// The recipes given an invalid path refuse it with `.invalidPath` naming the path they were
/// given: never a crash, a hang, or a node written elsewhere (an empty path joined with a child's
/// name is a valid top-level path, `""` + `ready` is `/ready`).
@Suite struct InvalidPathTests {
    /// Paths the server would refuse, each for a different rule.
    static let invalidPaths = ["", "relative/path", "/trailing/", "/double//slash", "/up/..", "/control\u{1}character"]

    enum Recipe: String, CaseIterable, Sendable {
        case treeCache, distributedBarrier, doubleBarrier, sharedCount, distributedAtomicLong, distributedQueue, serviceDiscovery
    }

    /// Each public operation of `recipe` that takes its path, by name.
    static func operations(of recipe: Recipe, client: ZooKeeperClient, path: String) -> [(String, @Sendable () async throws -> Void)] {
        switch recipe {
        case .treeCache:
            let cache = TreeCache(client: client, path: path)
            return [
                ("start, waitUntilInitialized", {
                    cache.start()
                    try await cache.waitUntilInitialized()
                }),
                ("events", { for try await _ in cache.events() {} }),
            ]
        case .distributedBarrier:
            let barrier = DistributedBarrier(client: client, path: path)
            return [
                ("set", { try await barrier.set() }),
                ("isSet", { _ = try await barrier.isSet() }),
                ("waitUntilRemoved", { try await barrier.waitUntilRemoved(timeout: .seconds(10)) }),
                ("remove", { try await barrier.remove() }),
            ]
        case .doubleBarrier:
            let barrier = DoubleBarrier(client: client, path: path, memberCount: 1)
            return [
                ("enter", { try await barrier.enter(timeout: .seconds(10)) }),
                ("leave", { try await barrier.leave(timeout: .seconds(10)) }),
            ]
        case .sharedCount:
            let count = SharedCount(client: client, path: path)
            return [
                ("start", { try await count.start() }),
                ("get", { _ = try await count.get() }),
                ("add", { try await count.add(1) }),
            ]
        case .distributedAtomicLong:
            let counter = DistributedAtomicLong(client: client, path: path)
            return [
                ("get", { _ = try await counter.get() }),
                ("increment", { try await counter.increment() }),
                ("compareAndSet", { try await counter.compareAndSet(expected: 0, 1) }),
            ]
        case .distributedQueue:
            let queue = DistributedQueue(client: client, path: path)
            return [
                ("put", { try await queue.put([1]) }),
                ("count", { _ = try await queue.count() }),
                ("take", { _ = try await queue.take(timeout: .seconds(10)) }),
            ]
        case .serviceDiscovery:
            let discovery = ServiceDiscovery(client: client, basePath: path)
            return [
                ("register dynamic", { try await discovery.register(ServiceInstance(name: "api", id: "dynamic")) }),
                ("register static", { try await discovery.register(ServiceInstance(name: "api", id: "static", serviceType: .static)) }),
                ("instances", { _ = try await discovery.instances(of: "api") }),
            ]
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: Recipe.allCases)
    func anInvalidPathIsRefusedWithAnErrorNamingIt(_ recipe: Recipe) async throws {
        let server = try await ZooKeeperServer.shared()
        // Under a chroot of its own: anything written in the invalid path's stead shows at its `/`.
        let root = uniqueTestPath() + "-" + recipe.rawValue
        let setup = try await connectedTestClient(server.connectString)
        try await setup.createPath(root)
        await setup.close()
        let client = try await connectedTestClient(server.connectString + root)
        for path in Self.invalidPaths {
            for (name, operation) in Self.operations(of: recipe, client: client, path: path) {
                let what = "\(recipe).\(name) at \"\(path.debugDescription)\""
                do {
                    try await operation()
                    Issue.record("\(what) succeeded")
                } catch let error as ZooKeeperError {
                    #expect(error.code == .invalidPath, "\(what): \(error)")
                    #expect(error.path == path, "\(what) names another path: \(error)")
                } catch {
                    Issue.record("\(what) threw \(error) instead of .invalidPath")
                }
            }
        }
        #expect(try await client.getChildren("/").names == [], "nothing was written elsewhere")
        await client.close()
    }
}
