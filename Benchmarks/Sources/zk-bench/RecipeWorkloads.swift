import Coordination
import Foundation
import Synchronization
import ZooKeeper

/// The recipe workloads (several sessions each): those of the shared peer contract, and those of
/// `Benchmarks/curator`'s `CuratorRecipeBench` (the subtree cache, service lookup, counter).
enum RecipeWorkload: String {
    case lockUncontended = "lock-uncontended"
    case lockContended = "lock-contended"
    case electionHandoff = "election-handoff"
    case membershipPropagation = "membership-propagation"
    case treeCacheLoad = "tree-cache-load"
    case treeCachePropagation = "tree-cache-propagation"
    case serviceLookup = "service-lookup"
    case counterIncrements = "counter-increments"

    var defaultCount: Int {
        switch self {
        case .lockUncontended, .lockContended, .treeCachePropagation, .counterIncrements: 2000
        case .electionHandoff, .membershipPropagation: 200
        case .treeCacheLoad: 10000
        case .serviceLookup: 200_000
        }
    }

    var defaultClients: Int {
        switch self {
        case .lockUncontended, .treeCacheLoad, .treeCachePropagation: 1
        case .lockContended, .counterIncrements: 8
        case .electionHandoff: 5
        case .membershipPropagation: 10
        case .serviceLookup: 2  // the instances' session and the provider's
        }
    }

    func run(server: String, count: Int, clients: Int, payload: Int) async throws -> Measurement {
        let sessionCount = self == .membershipPropagation ? clients + 1 : clients
        var sessions: [ZooKeeperClient] = []
        for _ in 0..<sessionCount {
            var configuration = ZooKeeperClient.Configuration()
            configuration.sessionTimeout = .seconds(30)
            configuration.cLibraryLogLevel = .error
            let client = try ZooKeeperClient(connectString: server, configuration: configuration)
            try await client.connect()
            sessions.append(client)
        }
        let admin = sessions[0]
        let base = "/bench/swift-" + String(format: "%016llx", UInt64.random(in: 0...UInt64.max))
        var createdRoot = false
        do {
            try await admin.create("/bench")
            createdRoot = true
        } catch let error as ZooKeeperError where error.code == .nodeExists {}
        try await admin.create(base)
        defer {}
        let measurement: Measurement
        do {
            switch self {
            case .lockUncontended: measurement = try await lockUncontended(admin, base: base, count: count)
            case .lockContended: measurement = try await lockContended(sessions, base: base, count: count)
            case .electionHandoff: measurement = try await electionHandoff(sessions, base: base, count: count)
            case .membershipPropagation: measurement = try await membership(sessions, base: base, count: count)
            case .treeCacheLoad: measurement = try await treeCacheLoad(admin, base: base, count: count, payload: payload)
            case .treeCachePropagation: measurement = try await treeCachePropagation(admin, base: base, count: count, payload: payload)
            case .serviceLookup: measurement = try await serviceLookup(sessions, base: base, count: count)
            case .counterIncrements: measurement = try await counterIncrements(sessions, base: base, count: count)
            }
        } catch {
            await cleanUp(admin, base: base, removeRoot: createdRoot, sessions: sessions)
            throw error
        }
        await cleanUp(admin, base: base, removeRoot: createdRoot, sessions: sessions)
        return measurement
    }

    private func cleanUp(_ admin: ZooKeeperClient, base: String, removeRoot: Bool, sessions: [ZooKeeperClient]) async {
        for session in sessions.dropFirst() { await session.close() }
        try? await admin.deleteRecursively(base)
        if removeRoot { try? await admin.delete("/bench") }
        await admin.close()
    }

    private func lockUncontended(_ client: ZooKeeperClient, base: String, count: Int) async throws -> Measurement {
        let lock = DistributedLock(client: client, path: "\(base)/lock")
        var latencies: [UInt64] = []
        latencies.reserveCapacity(count)
        let cpu = processCPUSeconds()
        let start = ContinuousClock.now
        for _ in 0..<count {
            let began = ContinuousClock.now
            let lease = try await lock.acquire()
            await lease.release()
            latencies.append((ContinuousClock.now - began).nanoseconds)
        }
        return Measurement(seconds: (ContinuousClock.now - start).seconds, latenciesNanoseconds: latencies,
                           cpuSeconds: processCPUSeconds() - cpu, failure: nil)
    }

    private func lockContended(_ sessions: [ZooKeeperClient], base: String, count: Int) async throws -> Measurement {
        let progress = RecipeProgress()
        let path = "\(base)/lock"
        let cpu = processCPUSeconds()
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for session in sessions {
                group.addTask {
                    let lock = DistributedLock(client: session, path: path)
                    while progress.tickets.add(1, ordering: .relaxed).oldValue < count {
                        let began = ContinuousClock.now
                        let lease = try await lock.acquire()
                        if progress.holders.add(1, ordering: .relaxed).newValue != 1 { progress.fail("two holders at once") }
                        await Task.yield()
                        if progress.holders.load(ordering: .relaxed) != 1 { progress.fail("another holder entered") }
                        progress.holders.subtract(1, ordering: .relaxed)
                        await lease.release()
                        progress.record((ContinuousClock.now - began).nanoseconds)
                    }
                }
            }
            try await group.waitForAll()
        }
        return Measurement(seconds: (ContinuousClock.now - start).seconds, latenciesNanoseconds: progress.latencies,
                           cpuSeconds: processCPUSeconds() - cpu, failure: progress.failure)
    }

    private func electionHandoff(_ sessions: [ZooKeeperClient], base: String, count: Int) async throws -> Measurement {
        let path = "\(base)/election"
        let progress = RecipeProgress()
        let told = AsyncStream<(Int, Leadership, ContinuousClock.Instant)>.makeStream()
        // Every candidate campaigns in a loop: told it leads → report → wait to be asked to resign.
        let candidates = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, session) in sessions.enumerated() {
                    group.addTask {
                        let election = LeaderElection(client: session, path: path, participantID: "c\(index)")
                        while !Task.isCancelled {
                            let term = try await election.campaign()
                            let now = ContinuousClock.now
                            if progress.holders.add(1, ordering: .relaxed).newValue != 1 { progress.fail("two leaders at once") }
                            told.continuation.yield((index, term, now))
                            _ = await term.waitUntilLost()  // the driver resigns it
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        var iterator = told.stream.makeAsyncIterator()
        guard var (leader, term, _) = await iterator.next() else { throw BenchError("no first leader") }
        // Measure only once every candidate is in line (otherwise the first to resign could be alone).
        while try await sessions[0].getChildren(path).names.count < sessions.count {
            try await Task.sleep(for: .milliseconds(5))
        }
        let cpu = processCPUSeconds()
        let start = ContinuousClock.now
        for _ in 0..<count {
            let resignedAt = ContinuousClock.now
            progress.holders.subtract(1, ordering: .relaxed)
            await term.resign()
            guard let (next, nextTerm, toldAt) = await iterator.next() else {
                progress.fail("the candidates stopped")
                break
            }
            if next == leader { progress.fail("the candidate that resigned led again at once") }
            progress.record((toldAt - resignedAt).nanoseconds)
            (leader, term) = (next, nextTerm)
        }
        let seconds = (ContinuousClock.now - start).seconds
        let used = processCPUSeconds() - cpu
        candidates.cancel()
        await term.resign()
        _ = try? await candidates.value
        return Measurement(seconds: seconds, latenciesNanoseconds: progress.latencies, cpuSeconds: used, failure: progress.failure)
    }

    private func membership(_ sessions: [ZooKeeperClient], base: String, count: Int) async throws -> Measurement {
        let group = "\(base)/members"
        let joiner = sessions[0]
        try await joiner.create(group)
        let watchers = Array(sessions.dropFirst())
        let progress = RecipeProgress()
        let seen = SeenLog(watchers: watchers.count)
        let watching = Task {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for (index, session) in watchers.enumerated() {
                    tasks.addTask {
                        var previous: Set<String> = []
                        var first = true
                        for try await members in MembershipWatcher(client: session, group: group).members() {
                            if first {
                                seen.ready()
                                first = false
                            }
                            let now = Set(members.keys)
                            for joined in now.subtracting(previous) { seen.saw(watcher: index, event: "+\(joined)") }
                            for left in previous.subtracting(now) { seen.saw(watcher: index, event: "-\(left)") }
                            previous = now
                        }
                    }
                }
                try await tasks.waitForAll()
            }
        }
        guard await seen.waitUntilReady(timeout: .seconds(30)) else { throw BenchError("the watchers did not start") }
        var leaveLatencies: [UInt64] = []
        let cpu = processCPUSeconds()
        let start = ContinuousClock.now
        for index in 0..<count {
            let member = MembershipWatcher(client: joiner, group: group)
            let began = ContinuousClock.now
            try await member.join(memberID: "m-\(index)")
            guard await seen.waitFor("+m-\(index)", timeout: .seconds(30)) else { progress.fail("a join was missed"); break }
            progress.record((ContinuousClock.now - began).nanoseconds)
            let leaving = ContinuousClock.now
            try await member.leave()
            guard await seen.waitFor("-m-\(index)", timeout: .seconds(30)) else { progress.fail("a leave was missed"); break }
            leaveLatencies.append((ContinuousClock.now - leaving).nanoseconds)
        }
        let seconds = (ContinuousClock.now - start).seconds
        let used = processCPUSeconds() - cpu
        watching.cancel()
        if progress.failure == nil, let problem = seen.checkOrder(count: count) { progress.fail(problem) }
        var measurement = Measurement(seconds: seconds, latenciesNanoseconds: progress.latencies, cpuSeconds: used, failure: progress.failure)
        let leaves = Measurement(seconds: 0, latenciesNanoseconds: leaveLatencies, cpuSeconds: 0)
        measurement.extra["leave_p50_us"] = leaves.percentileMicroseconds(50)
        measurement.extra["leave_p99_us"] = leaves.percentileMicroseconds(99)
        return measurement
    }
}

/// Shared counters of the multi-session workloads.
final class RecipeProgress: Sendable {
    let tickets = Atomic<Int>(0)
    let holders = Atomic<Int>(0)
    /// Attempts made (the counter workload's optimistic tries).
    let attempts = Atomic<Int>(0)
    private let state = Mutex<(latencies: [UInt64], failure: String?)>(([], nil))
    func record(_ latency: UInt64) { state.withLock { $0.latencies.append(latency) } }
    func fail(_ problem: String) { state.withLock { $0.failure = $0.failure ?? problem } }
    var latencies: [UInt64] { state.withLock { $0.latencies } }
    var failure: String? { state.withLock { $0.failure } }
}

/// What each membership watcher saw, in order, with waiting for an event to reach all of them.
final class SeenLog: Sendable {
    private let events: Mutex<[[String]]>
    let watchers: Int
    init(watchers: Int) {
        self.watchers = watchers
        events = Mutex(Array(repeating: [], count: watchers))
    }

    func saw(watcher: Int, event: String) { events.withLock { $0[watcher].append(event) } }

    /// Waits until every watcher has seen `event` (polling tightly: this is the measured latency).
    func waitFor(_ event: String, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if events.withLock({ $0.allSatisfy { $0.last == event || $0.contains(event) } }) { return true }
            await Task.yield()
            try? await Task.sleep(for: .microseconds(50))
        }
        return false
    }

    private let readyCount = Atomic<Int>(0)

    /// A watcher has its first snapshot (its watch is armed).
    func ready() { readyCount.add(1, ordering: .relaxed) }

    func waitUntilReady(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if readyCount.load(ordering: .relaxed) == watchers { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    /// Every watcher saw +m-i then -m-i for every i, once each and in order.
    func checkOrder(count: Int) -> String? {
        let expected = (0..<count).flatMap { ["+m-\($0)", "-m-\($0)"] }
        for (index, seen) in events.withLock({ $0 }).enumerated() where seen != expected {
            return "watcher \(index) saw \(seen.count) events, not the \(expected.count) expected in order"
        }
        return nil
    }
}

extension Duration {
    var nanoseconds: UInt64 { UInt64(components.seconds) * 1_000_000_000 + UInt64(components.attoseconds / 1_000_000_000) }
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
