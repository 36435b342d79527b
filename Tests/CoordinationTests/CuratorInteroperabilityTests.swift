import Testing
import ZooKeeper
import ZooKeeperTesting

@testable import Coordination

/// Our recipes beside Apache Curator 5.4's, as real processes on one ZooKeeper: on the same
/// znodes they keep each other's invariants (one lock holder, one leader, no lost increment) and
/// read each other's data (service instances).
@Suite(.enabled(if: CuratorPeerProcess.shouldRun, "Apache Curator and a JDK are not installed (scripts/install-dependencies installs them)"))
struct CuratorInteroperabilityTests {
    /// One step of the fenced counter that Java and Swift holders share (8 bytes big-endian, as
    /// the peer's): an ephemeral marker that a second holder could not create, and a write at the
    /// version read, which any write by a second holder in between would fail.
    static func incrementFenced(_ client: ZooKeeperClient, counter: String, marker: String) async throws {
        do {
            try await client.create(marker, mode: .ephemeral, parents: .persistent)
        } catch let error as ZooKeeperError where error.code == .nodeExists {
            Issue.record("two holders at once: \(marker) exists")
            return
        }
        let codec = BigEndianCodec<Int64>()
        let node: NodeData
        do {
            node = try await client.getData(counter)
        } catch let error as ZooKeeperError where error.code == .noNode {
            _ = try? await client.create(counter, data: codec.encode(0), parents: .persistent)
            node = try await client.getData(counter)
        }
        do {
            try await client.setData(counter, data: codec.encode(try codec.decode(node.bytes) + 1), version: node.stat.version)
        } catch let error as ZooKeeperError where error.code == .badVersion {
            Issue.record("the counter changed while we held the lock")
        }
        try await Task.sleep(for: .milliseconds(2))
        try await client.delete(marker)
    }

    static func counterValue(_ client: ZooKeeperClient, _ path: String) async throws -> Int64 {
        try BigEndianCodec<Int64>().decode(try await client.getData(path).bytes)
    }

    /// Waits for every peer and expects each to have exited with 0, showing its output otherwise.
    static func expectSuccess(_ peers: [CuratorPeerProcess]) async {
        for peer in peers {
            var output: [String] = []
            for await line in peer.lines { output.append(line) }
            let status = await peer.exitStatus()
            #expect(status == 0, "the Curator peer exited with \(status): \(output.joined(separator: " | "))")
        }
    }

    @Test(.timeLimit(.minutes(3))) func swiftAndCuratorMutexHoldersNeverOverlap() async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath()
        let (lockPath, counter) = ("\(root)/lock", "\(root)/counter")
        let peers = try await (0..<2).asyncMap { _ in
            try await CuratorPeerProcess.start("mutex", zk: server.connectString, ["path": lockPath, "counter": counter, "iterations": "25"])
        }
        let clients = try await (0..<2).asyncMap { _ in try await connectedTestClient(server.connectString) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients {
                group.addTask {
                    let lock = DistributedLock(client: client, path: lockPath)
                    for _ in 0..<25 {
                        try await lock.withLock { _ in try await Self.incrementFenced(client, counter: counter, marker: counter + "-holder") }
                    }
                }
            }
            try await group.waitForAll()
        }
        await Self.expectSuccess(peers)
        #expect(try await Self.counterValue(clients[0], counter) == 100, "every holder's increment is there")
        #expect(try await clients[0].childrenIfExists(lockPath).isEmpty)
        for client in clients { await client.close() }
    }

    @Test(.timeLimit(.minutes(3))) func swiftAndCuratorReadWriteLocksKeepWritersAlone() async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath()
        let (lockPath, counter) = ("\(root)/rw", "\(root)/counter")
        let peers = [
            try await CuratorPeerProcess.start("rwlock", zk: server.connectString, ["path": lockPath, "counter": counter, "iterations": "20", "role": "write"]),
            try await CuratorPeerProcess.start("rwlock", zk: server.connectString, ["path": lockPath, "counter": counter, "iterations": "30", "role": "read"]),
        ]
        let client = try await connectedTestClient(server.connectString)
        let (writerMarker, readers) = (counter + "-writer", counter + "-readers")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                let lock = DistributedLock(client: client, path: lockPath, kind: .write)
                for _ in 0..<20 {
                    try await lock.withLock { _ in
                        let inside = try await client.childrenIfExists(readers)
                        if !inside.isEmpty { Issue.record("a writer holds the lock while readers are inside: \(inside)") }
                        try await Self.incrementFenced(client, counter: counter, marker: writerMarker)
                    }
                }
            }
            group.addTask {
                let lock = DistributedLock(client: client, path: lockPath, kind: .read)
                for _ in 0..<30 {
                    try await lock.withLock { _ in
                        let mine = try await client.create(readers + "/r-", mode: .ephemeralSequential, parents: .persistent)
                        if try await client.exists(writerMarker) != nil { Issue.record("a reader holds the lock while a writer is inside") }
                        try await Task.sleep(for: .milliseconds(2))
                        try await client.delete(mine.path)
                    }
                }
            }
            try await group.waitForAll()
        }
        await Self.expectSuccess(peers)
        #expect(try await Self.counterValue(client, counter) == 40)
        let names = try await client.childrenIfExists(lockPath)
        #expect(names.isEmpty, "\(names)")
        await client.close()
    }

    @Test(.timeLimit(.minutes(3))) func swiftAndCuratorSemaphoreHoldersNeverExceedTheLeases() async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath()
        let (path, holders) = ("\(root)/semaphore", "\(root)/holders")
        let peers = try await (0..<2).asyncMap { _ in
            try await CuratorPeerProcess.start("semaphore", zk: server.connectString, ["path": path, "leases": "2", "holders": holders, "iterations": "15"])
        }
        let clients = try await (0..<2).asyncMap { _ in try await connectedTestClient(server.connectString) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients {
                group.addTask {
                    let semaphore = DistributedSemaphore(client: client, path: path, maxLeases: 2)
                    for _ in 0..<15 {
                        try await semaphore.withLease { _ in
                            let mine = try await client.create(holders + "/h-", mode: .ephemeralSequential, parents: .persistent)
                            let inside = try await client.getChildren(holders).names.count
                            if inside > 2 { Issue.record("\(inside) holders of 2 leases") }
                            try await Task.sleep(for: .milliseconds(5))
                            try await client.delete(mine.path)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        await Self.expectSuccess(peers)
        #expect(try await clients[0].childrenIfExists(path + "/leases").isEmpty)
        for client in clients { await client.close() }
    }

    @Test(.timeLimit(.minutes(3))) func swiftAndCuratorLeaderSelectorsAgreeAndHandOver() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        var seen: [String] = []

        let java = try await CuratorPeerProcess.start("leader-selector", zk: server.connectString, ["path": path, "id": "java-a"])
        var javaLines = java.lines.makeAsyncIterator()
        _ = try await awaitLine(&javaLines, seen: &seen) { $0 == "leader java-a" }
        let election = LeaderElection(client: client, path: path, participantID: "swift-1")
        let campaign = Task { try await election.campaign() }
        try await eventually("the Swift participant is queued") { try await election.participants().count == 2 }
        #expect(try await election.participants() == [.init(id: "java-a", isLeader: true), .init(id: "swift-1", isLeader: false)])
        java.send("participants")
        _ = try await awaitLine(&javaLines, seen: &seen) { $0 == "participants java-a,swift-1" }
        #expect(try await election.currentLeader()?.participantID == "java-a")

        // The Java leader dies: its session expires and the Swift participant leads.
        java.kill9()
        let leadership = try await campaign.value
        #expect(leadership.isLeader)
        #expect(try await election.participants().first == .init(id: "swift-1", isLeader: true))

        // A new Java participant waits behind it, and leads once it resigns.
        let next = try await CuratorPeerProcess.start("leader-selector", zk: server.connectString, ["path": path, "id": "java-b"])
        var nextLines = next.lines.makeAsyncIterator()
        try await eventually("the Java participant is queued") { try await election.participants().count == 2 }
        next.send("participants")
        _ = try await awaitLine(&nextLines, seen: &seen) { $0.hasPrefix("participants") }
        #expect(seen.last == "participants swift-1,java-b", "\(seen)")
        await leadership.resign()
        _ = try await awaitLine(&nextLines, seen: &seen) { $0 == "leader java-b" }
        #expect(!seen.contains("leader java-b") || seen.firstIndex(of: "leader java-b")! > seen.firstIndex(of: "participants swift-1,java-b")!)
        next.send("quit")
        await Self.expectSuccess([next])
        await client.close()
    }

    @Test(.timeLimit(.minutes(3))) func swiftAndCuratorLeaderLatchesAgreeAndHandOver() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        var configuration = LeaderElection.Configuration()
        configuration.layout = .leaderLatch
        let election = LeaderElection(client: client, path: path, participantID: "swift-latch", configuration: configuration)
        let leadership = try await election.campaign()
        #expect(try await client.getChildren(path).names.allSatisfy { $0.hasPrefix("_c_") && $0.contains("-latch-") })

        var seen: [String] = []
        let java = try await CuratorPeerProcess.start("leader-latch", zk: server.connectString, ["path": path, "id": "java-latch"])
        var lines = java.lines.makeAsyncIterator()
        try await eventually("the Java latch is queued") { try await election.participants().count == 2 }
        java.send("participants")
        _ = try await awaitLine(&lines, seen: &seen) { $0.hasPrefix("participants") }
        #expect(seen.last == "participants swift-latch,java-latch")
        #expect(!seen.contains("leader java-latch"), "the Java latch does not lead while Swift does")
        await leadership.resign()
        _ = try await awaitLine(&lines, seen: &seen) { $0 == "leader java-latch" }
        #expect(try await election.currentLeader()?.participantID == "java-latch")
        java.send("quit")
        await Self.expectSuccess([java])
        await client.close()
    }

    @Test(.timeLimit(.minutes(3))) func servicesRegisteredByEitherAreDiscoveredByTheOther() async throws {
        let server = try await ZooKeeperServer.shared()
        let base = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        var seen: [String] = []
        let javaRegistrant = try await CuratorPeerProcess.start(
            "discovery-register", zk: server.connectString,
            ["base": base, "name": "api", "id": "java-1", "address": "java-host", "port": "7000", "payload-json": #"{"zone":"eu","weight":2}"#])
        var registrantLines = javaRegistrant.lines.makeAsyncIterator()
        _ = try await awaitLine(&registrantLines, seen: &seen) { $0 == "registered" }

        let discovery = ServiceDiscovery(client: client, basePath: base)
        let found = try await discovery.instances(of: "api")
        #expect(found.map(\.id) == ["java-1"])
        #expect(found.first?.address == "java-host" && found.first?.port == 7000 && found.first?.serviceType == .dynamic)
        #expect(found.first?.payload == .object(["zone": .string("eu"), "weight": .integer(2)]))

        try await discovery.register(ServiceInstance(
            name: "api", id: "swift-1", address: "swift-host", port: 7001, payload: .object(["zone": .string("us"), "big": .integer(1 << 40)])))
        let query = try await CuratorPeerProcess.start("discovery-query", zk: server.connectString, ["base": base, "name": "api", "expect-count": "2"])
        var output: [String] = []
        for await line in query.lines { output.append(line) }
        #expect(await query.exitStatus() == 0, "\(output)")
        #expect(output.contains(#"instance java-1 java-host 7000 {"weight":2,"zone":"eu"}"#), "\(output)")
        #expect(output.contains(#"instance swift-1 swift-host 7001 {"big":1099511627776,"zone":"us"}"#), "\(output)")
        #expect(Set(output.filter { $0.hasPrefix("provider") }) == ["provider java-1", "provider swift-1"], "Curator's provider offers both")

        javaRegistrant.send("quit")
        await Self.expectSuccess([javaRegistrant])
        try await eventually("the Java instance is gone") { try await discovery.instances(of: "api").map(\.id) == ["swift-1"] }
        await client.close()
    }

    @Test(.timeLimit(.minutes(3))) func swiftAndCuratorIncrementOneSharedCountWithoutLoss() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath() + "/count"
        let clients = try await (0..<2).asyncMap { _ in try await connectedTestClient(server.connectString) }
        try await SharedCount(client: clients[0], path: path).start()
        let java = try await CuratorPeerProcess.start("shared-count", zk: server.connectString, ["path": path, "increments": "100"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients {
                group.addTask {
                    let count = SharedCount(client: client, path: path)
                    for _ in 0..<100 { try await count.add(1) }
                }
            }
            try await group.waitForAll()
        }
        await Self.expectSuccess([java])
        #expect(try await SharedCount(client: clients[0], path: path).get().value == 300)
        for client in clients { await client.close() }
    }

    @Test(.timeLimit(.minutes(3)), arguments: [false, true])
    func swiftAndCuratorIncrementOneAtomicLongWithoutLoss(promoted: Bool) async throws {
        let server = try await ZooKeeperServer.shared()
        let root = uniqueTestPath() + (promoted ? "-promoted" : "")
        var options: KeyValuePairs<String, String> = ["path": root + "/value", "increments": "100"]
        if promoted { options = ["path": root + "/value", "increments": "100", "promoted-lock": root + "/lock"] }
        let java = try await CuratorPeerProcess.start("atomic-long", zk: server.connectString, options)
        let clients = try await (0..<2).asyncMap { _ in try await connectedTestClient(server.connectString) }
        let impatient = { var policy = RetryPolicy(); policy.maxAttempts = 1; return policy }()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients {
                group.addTask {
                    let counter = DistributedAtomicLong(
                        client: client, path: root + "/value", retryPolicy: promoted ? impatient : nil, promotedLockPath: promoted ? root + "/lock" : nil)
                    for _ in 0..<100 {
                        while try await !counter.increment().succeeded {}
                    }
                }
            }
            try await group.waitForAll()
        }
        await Self.expectSuccess([java])
        #expect(try await DistributedAtomicLong(client: clients[0], path: root + "/value").get() == 300)
        for client in clients { await client.close() }
    }

    @Test(.timeLimit(.minutes(3))) func swiftAndCuratorMembersPassOneDoubleBarrier() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let javas = try await ["java-1", "java-2"].asyncMap {
            try await CuratorPeerProcess.start("double-barrier", zk: server.connectString, ["path": path, "members": "4", "id": $0])
        }
        let clients = try await (0..<2).asyncMap { _ in try await connectedTestClient(server.connectString) }
        var iterators = javas.map { $0.lines.makeAsyncIterator() }
        var seen: [String] = []
        for index in iterators.indices { _ = try await awaitLine(&iterators[index], seen: &seen) { $0.hasPrefix("entering") } }
        try await Task.sleep(for: .milliseconds(300))
        #expect(!seen.contains { $0.hasPrefix("entered") }, "nobody is through with two of four members")
        let barriers = clients.map { DoubleBarrier(client: $0, path: path, memberCount: 4) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for barrier in barriers { group.addTask { try await barrier.enter(timeout: .seconds(30)) } }
            try await group.waitForAll()
        }
        for index in iterators.indices { _ = try await awaitLine(&iterators[index], seen: &seen) { $0.hasPrefix("entered") } }
        for java in javas { java.send("leave") }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for barrier in barriers { group.addTask { try await barrier.leave(timeout: .seconds(30)) } }
            try await group.waitForAll()
        }
        for index in iterators.indices { _ = try await awaitLine(&iterators[index], seen: &seen) { $0.hasPrefix("left") } }
        await Self.expectSuccess(javas)
        for client in clients { await client.close() }
    }

    @Test(.timeLimit(.minutes(2))) func aCuratorWaiterIsReleasedBySwift() async throws {
        let server = try await ZooKeeperServer.shared()
        let path = uniqueTestPath()
        let client = try await connectedTestClient(server.connectString)
        let barrier = DistributedBarrier(client: client, path: path)
        try await barrier.set()
        let java = try await CuratorPeerProcess.start("barrier-wait", zk: server.connectString, ["path": path])
        let output = Shared<[String]>([])
        let reading = Task { for await line in java.lines { output.withLock { $0.append(line) } } }
        // The Java waiter connects and blocks on the closed barrier: its session appears as a
        // watcher of the barrier's node, and it has not come through.
        try await eventually("the Java peer watches the barrier") {
            try await server.fourLetterWord("wchp").contains(path)
        }
        #expect(java.isRunning && !output.value.contains("released"), "\(output.value)")
        try await barrier.remove()
        await reading.value
        #expect(output.value.contains("released"), "\(output.value)")
        #expect(await java.exitStatus() == 0, "\(output.value)")
        await client.close()
    }
}
