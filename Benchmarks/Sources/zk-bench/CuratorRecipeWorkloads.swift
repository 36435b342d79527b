import Coordination
import Foundation
import Synchronization
import ZooKeeper

/// The workloads of `Benchmarks/curator/CuratorRecipeBench.java`, done the same way with our
/// recipes: what is set up, what is timed and what is checked are the Java side's (see
/// `Benchmarks/curator/README.md`).
extension RecipeWorkload {
    /// In-flight creates while the tree is built (the Java side's `WINDOW`).
    static let creationWindow = 1000

    /// `count` nodes `root/d<i/100>/n<i>` of `payload` bytes: the directories one by one, the
    /// leaves pipelined.
    func buildTree(_ client: ZooKeeperClient, root: String, count: Int, payload: [UInt8]) async throws {
        try await client.create(root)
        for directory in 0..<(count + 99) / 100 { try await client.create("\(root)/d\(directory)") }
        var pending: [PendingReply<CreatedNode>] = []
        for index in 0..<count {
            pending.append(client.submitCreate("\(root)/d\(index / 100)/n\(index)", data: payload))
            if pending.count == Self.creationWindow {
                for reply in pending { _ = try await reply.value() }
                pending.removeAll(keepingCapacity: true)
            }
        }
        for reply in pending { _ = try await reply.value() }
    }

    func treeCacheLoad(_ client: ZooKeeperClient, base: String, count: Int, payload: Int) async throws -> Measurement {
        let root = "\(base)/t"
        try await buildTree(client, root: root, count: count, payload: [UInt8](repeating: 0x61, count: payload))
        let cache = TreeCache(client: client, path: root)
        let cpu = processCPUSeconds()
        let start = ContinuousClock.now
        cache.start()
        try await cache.waitUntilInitialized()
        let seconds = (ContinuousClock.now - start).seconds
        let used = processCPUSeconds() - cpu
        let held = cache.snapshot().count
        await cache.close()
        let expected = count + 1 + (count + 99) / 100
        return Measurement(seconds: seconds, latenciesNanoseconds: [], cpuSeconds: used,
                           failure: held == expected ? nil : "the cache holds \(held) nodes, expected \(expected)")
    }

    func treeCachePropagation(_ client: ZooKeeperClient, base: String, count: Int, payload: Int) async throws -> Measurement {
        let nodes = 1000
        let root = "\(base)/t"
        let bytes = [UInt8](repeating: 0x61, count: payload)
        try await buildTree(client, root: root, count: nodes, payload: bytes)
        let cache = TreeCache(client: client, path: root)
        var events = cache.events().makeAsyncIterator()
        cache.start()
        while let event = try await events.next(), event != .initialized {}
        var random = SystemRandomNumberGenerator()
        var latencies: [UInt64] = []
        latencies.reserveCapacity(count)
        let cpu = processCPUSeconds()
        let start = ContinuousClock.now
        for index in 0..<count {
            let node = Int.random(in: 0..<nodes, using: &random)
            let path = "\(root)/d\(node / 100)/n\(node)"
            // A distinct payload per operation: its number over the start of the payload.
            let tag = Array("op\(index);".utf8)
            let data = bytes.count < tag.count ? tag : tag + bytes.dropFirst(tag.count)
            let began = ContinuousClock.now
            try await client.setData(path, data: data)
            while let event = try await events.next() {
                if case .changed(path, let changed) = event, changed.bytes == data { break }
            }
            latencies.append((ContinuousClock.now - began).nanoseconds)
        }
        let seconds = (ContinuousClock.now - start).seconds
        let used = processCPUSeconds() - cpu
        await cache.close()
        return Measurement(seconds: seconds, latenciesNanoseconds: latencies, cpuSeconds: used)
    }

    func serviceLookup(_ sessions: [ZooKeeperClient], base: String, count: Int) async throws -> Measurement {
        let instances = 20
        let services = "\(base)/services"
        let registrar = ServiceDiscovery(client: sessions[sessions.count - 1], basePath: services)
        for index in 0..<instances {
            try await registrar.register(ServiceInstance(name: "svc", id: "i-\(index)", address: "10.0.0.\(index + 1)", port: 8000 + index))
        }
        let cache = ServiceDiscovery(client: sessions[0], basePath: services).cache(of: "svc")
        cache.start()
        try await cache.waitUntilInitialized()
        let provider = ServiceProvider(cache: cache, strategy: .roundRobin)
        let ready = ContinuousClock.now + .seconds(30)
        while provider.instances().count != instances {
            guard ContinuousClock.now < ready else { throw BenchError("the provider's cache never held \(instances) instances") }
            try await Task.sleep(for: .milliseconds(10))
        }
        // No per-operation timing: one call is about a microsecond, a clock read a large share of it.
        var got: [ServiceInstance?] = []
        got.reserveCapacity(count)
        let cpu = processCPUSeconds()
        let start = ContinuousClock.now
        for _ in 0..<count { got.append(provider.instance()) }
        let seconds = (ContinuousClock.now - start).seconds
        let used = processCPUSeconds() - cpu
        await cache.close()
        var counts: [String: Int] = [:]
        for instance in got { counts[instance?.id ?? "nil", default: 0] += 1 }
        var failure: String?
        if counts.count != instances {
            failure = "round robin returned \(counts.keys.sorted())"
        } else if let off = counts.first(where: { abs($0.value - count / instances) > 1 }) {
            failure = "\(off.key) returned \(off.value) times, expected \(count / instances) ± 1"
        }
        return Measurement(seconds: seconds, latenciesNanoseconds: [], cpuSeconds: used, failure: failure)
    }

    func counterIncrements(_ sessions: [ZooKeeperClient], base: String, count: Int) async throws -> Measurement {
        let path = "\(base)/counter"
        // Curator's RetryNTimes(1000, 1): 1000 retries, 1 ms apart.
        var policy = RetryPolicy()
        policy.maxAttempts = 1001
        policy.initialDelay = .milliseconds(1)
        policy.multiplier = 1
        policy.maxDelay = .milliseconds(1)
        policy.jitter = 0
        policy.maxElapsed = nil
        let counters = sessions.map { DistributedAtomicLong(client: $0, path: path, retryPolicy: policy) }
        _ = try await counters[0].trySet(0)  // outside the measurement: no create race on the first increment
        let progress = RecipeProgress()
        let cpu = processCPUSeconds()
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for counter in counters {
                group.addTask {
                    while progress.tickets.add(1, ordering: .relaxed).oldValue < count {
                        let began = ContinuousClock.now
                        while true {
                            let result = try await counter.increment()
                            progress.attempts.add(result.tries, ordering: .relaxed)
                            if result.succeeded { break }
                        }
                        progress.record((ContinuousClock.now - began).nanoseconds)
                    }
                }
            }
            try await group.waitForAll()
        }
        let seconds = (ContinuousClock.now - start).seconds
        let used = processCPUSeconds() - cpu
        let final = try await counters[0].get()
        var measurement = Measurement(seconds: seconds, latenciesNanoseconds: progress.latencies, cpuSeconds: used,
                                      failure: final == Int64(count) ? progress.failure : "final value \(final), expected \(count)")
        measurement.extraFractions["tries_per_op"] = Double(progress.attempts.load(ordering: .relaxed)) / Double(count)
        return measurement
    }
}
