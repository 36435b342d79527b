import Foundation
import Synchronization
import ZooKeeper

/// The four data workloads: one session each.
enum Workload: String {
    case getPipelined = "get-pipelined"
    case getSequential = "get-sequential"
    case setPipelined = "set-pipelined"
    case createDelete = "create-delete"

    static let window = 1000

    var defaultCount: Int {
        switch self {
        case .getPipelined: 200_000
        case .getSequential: 20_000
        case .setPipelined: 100_000
        case .createDelete: 5000
        }
    }

    func run(server: String, count: Int, payload: Int, executor: (any TaskExecutor)?) async throws -> Measurement {
        var configuration = ZooKeeperClient.Configuration()
        configuration.sessionTimeout = .seconds(30)
        configuration.cLibraryLogLevel = .error
        let client = try ZooKeeperClient(connectString: server, configuration: configuration)
        try await client.connect()
        let base = "/bench/swift-" + String(format: "%016llx", UInt64.random(in: 0...UInt64.max))
        var createdBenchRoot = false
        do {
            try await client.create("/bench")
            createdBenchRoot = true
        } catch let error as ZooKeeperError where error.code == .nodeExists {}
        try await client.create(base)
        let data = [UInt8](repeating: 0x61, count: payload)
        defer {}
        let measurement: Measurement
        do {
            switch self {
            case .getPipelined, .getSequential:
                try await client.create("\(base)/data", data: data)
                measurement = try await measureGets(client, path: "\(base)/data", count: count, expected: data,
                                                    window: self == .getPipelined ? Self.window : 1, executor: executor)
            case .setPipelined:
                try await client.create("\(base)/data")
                measurement = try await measureSets(client, path: "\(base)/data", count: count, data: data, executor: executor)
            case .createDelete:
                measurement = try await measureCreateDelete(client, base: base, count: count, executor: executor)
            }
        } catch {
            try? await cleanUp(client, base: base, removeRoot: createdBenchRoot)
            await client.close()
            throw error
        }
        try await cleanUp(client, base: base, removeRoot: createdBenchRoot)
        await client.close()
        return measurement
    }

    private func cleanUp(_ client: ZooKeeperClient, base: String, removeRoot: Bool) async throws {
        for child in try await client.getChildren(base).names {
            try await client.delete("\(base)/\(child)")
        }
        try await client.delete(base)
        if removeRoot { try? await client.delete("/bench") }
    }

    /// `count` operations by `window` concurrent workers (a window of 1 is sequential).
    private func measure(
        count: Int, window: Int, executor: (any TaskExecutor)?, _ operation: @escaping @Sendable (Int) async throws -> String?
    ) async throws -> Measurement {
        let shared = SharedProgress()
        let latencies = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: count)
        defer { latencies.deallocate() }
        let latencyAddress = UInt(bitPattern: latencies.baseAddress)
        let cpuBefore = processCPUSeconds()
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<min(window, count) {
                group.addTask(executorPreference: executor) {
                    let latencies = UnsafeMutablePointer<UInt64>(bitPattern: latencyAddress)!
                    while true {
                        let index = shared.next.add(1, ordering: .relaxed).oldValue
                        if index >= count { return }
                        let began = ContinuousClock.now
                        let problem = try await operation(index)
                        let elapsed = ContinuousClock.now - began
                        latencies[index] = UInt64(elapsed.components.seconds) * 1_000_000_000
                            + UInt64(elapsed.components.attoseconds / 1_000_000_000)
                        if let problem { shared.failure.withLock { $0 = $0 ?? problem } }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - start
        let residentAfterLoop = currentResidentKilobytes()
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Measurement(
            seconds: seconds, latenciesNanoseconds: Array(latencies), cpuSeconds: processCPUSeconds() - cpuBefore,
            failure: shared.failure.withLock { $0 }, residentAfterLoopKilobytes: residentAfterLoop)
    }

    private func measureGets(
        _ client: ZooKeeperClient, path: String, count: Int, expected: [UInt8], window: Int, executor: (any TaskExecutor)?
    ) async throws -> Measurement {
        try await measure(count: count, window: window, executor: executor) { _ in
            let node = try await client.getData(path)
            return node.bytes == expected ? nil : "a reply did not carry the payload"
        }
    }

    private func measureSets(_ client: ZooKeeperClient, path: String, count: Int, data: [UInt8], executor: (any TaskExecutor)?) async throws -> Measurement {
        let shared = SharedProgress()
        var measurement = try await measure(count: count, window: Self.window, executor: executor) { _ in
            let stat = try await client.setData(path, data: data)
            shared.highestVersion.max(stat.version, ordering: .relaxed)
            return nil
        }
        let finalVersion = try await client.exists(path)?.version
        if shared.highestVersion.load(ordering: .relaxed) != Int32(count) || finalVersion != Int32(count) {
            measurement.failure = measurement.failure
                ?? "highest version \(shared.highestVersion.load(ordering: .relaxed)), final \(String(describing: finalVersion)), expected \(count)"
        }
        return measurement
    }

    private func measureCreateDelete(_ client: ZooKeeperClient, base: String, count: Int, executor: (any TaskExecutor)?) async throws -> Measurement {
        var measurement = try await measure(count: count, window: 1, executor: executor) { index in
            let path = "\(base)/cd-\(index)"
            try await client.create(path, mode: .ephemeral)
            try await client.delete(path)
            return nil
        }
        let left = try await client.getChildren(base).names.count
        if left != 0 { measurement.failure = measurement.failure ?? "\(left) znodes left under \(base)" }
        return measurement
    }
}

/// Counters the concurrent workers share.
final class SharedProgress: Sendable {
    let next = Atomic<Int>(0)
    let highestVersion = Atomic<Int32>(0)
    let failure = Mutex<String?>(nil)
}
