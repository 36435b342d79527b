import Foundation
import Testing
import ZooKeeper
import ZooKeeperTesting
@testable import Coordination

/// Random fault schedules against three lock contenders, each behind its own fault proxy: whatever
/// the network does, no contender is told it holds the lock while another still believes it does,
/// and every fenced write that succeeds was made by a holder the server still recognised.
@Suite struct RandomFaultScheduleTests {
    enum Fault: CaseIterable { case blackhole, cut, delay, none }

    @Test func locksKeepTheirInvariantsUnderRandomFaults() async throws {
        let schedules = Int(ProcessInfo.processInfo.environment["FAULT_SCHEDULES"] ?? "") ?? 100
        var settings = ZooKeeperServer.Configuration()
        settings.tickTime = .milliseconds(100)  // sessions of 1 s, so a schedule takes about a second
        let server = try await ZooKeeperServer.start(configuration: settings)
        defer { server.destroy() }
        var proxies: [FaultProxy] = []
        var clients: [ZooKeeperClient] = []
        for _ in 0..<3 {
            let proxy = try await FaultProxy.start(targetPort: server.port)
            proxies.append(proxy)
            clients.append(try await connectedTestClient(proxy.connectString, sessionTimeout: .seconds(1)))
        }
        let observer = try await connectedTestClient(server.connectString)
        let path = uniqueTestPath()
        let counter = "\(path)-counter"
        try await observer.create(counter, data: Array("0".utf8))
        let holders = Shared<[Int: LockLease]>([:])
        let violations = Shared<[String]>([])
        let fencedWrites = Shared(0)
        let uncertainWrites = Shared(0)  // the reply was lost: applied or not
        let seed = UInt64.random(in: 0...UInt64.max)
        var random = SeededRandomNumberGenerator(seed: seed)

        let contenderClients = clients
        let contenders = Task {
            await withTaskGroup(of: Void.self) { group in
                for (index, client) in contenderClients.enumerated() {
                    group.addTask {
                        let lock = DistributedLock(client: client, path: path)
                        while !Task.isCancelled {
                            guard let lease = try? await lock.acquire(timeout: .seconds(5)) else { continue }
                            // Nobody else may still believe it holds the lock.
                            let others = holders.withLock { holders -> [Int] in
                                defer { holders[index] = lease }
                                return holders.filter { $0.key != index && $0.value.isHeld }.map(\.key)
                            }
                            if !others.isEmpty {
                                violations.withLock { $0.append("contender \(index) acquired while \(others) still held (seed \(seed))") }
                            }
                            // A fenced read-modify-write of the shared counter.
                            if let data = try? await client.getData(counter) {
                                do {
                                    _ = try await lease.fencedMulti([
                                        .setData(path: counter, data: Array(String(Int(data.string)! + 1).utf8), version: data.stat.version),
                                    ])
                                    fencedWrites.withLock { $0 += 1 }
                                } catch let error as ZooKeeperError where error.code == .badVersion || error.code == .noNode {
                                    // Rejected by the server: the fence (the lock node) or the version.
                                } catch is CoordinationError {
                                    // The lease was lost before the write was sent.
                                } catch {
                                    // Sent, but the answer never came (connection loss, timeout,
                                    // expiry, the task cancelled at the end): applied or not.
                                    uncertainWrites.withLock { $0 += 1 }
                                }
                            }
                            try? await Task.sleep(for: .milliseconds(Int.random(in: 1...30)))
                            _ = holders.withLock { $0.removeValue(forKey: index) }
                            await lease.release()
                        }
                    }
                }
            }
        }

        for _ in 0..<schedules {
            let target = Int.random(in: 0..<3, using: &random)
            let fault = Fault.allCases.randomElement(using: &random)!
            let duration = Duration.milliseconds(Int.random(in: 100...1500, using: &random))
            switch fault {
            case .blackhole: proxies[target].blackhole()
            case .cut: proxies[target].cut()
            case .delay: proxies[target].delay(.milliseconds(Int.random(in: 5...200, using: &random)))
            case .none: break
            }
            try await Task.sleep(for: duration)
            proxies[target].restore()
            try await Task.sleep(for: .milliseconds(Int.random(in: 50...300, using: &random)))
        }
        contenders.cancel()
        await contenders.value
        for proxy in proxies { proxy.restore() }
        #expect(violations.value.isEmpty, "\(violations.value.prefix(3))")
        // Every confirmed fenced increment is in the counter; the only others are ones whose reply
        // was lost (applied or not), and the version check made every increment count once.
        let final = try #require(Int(try await observer.getData(counter).string))
        #expect(final >= fencedWrites.value && final <= fencedWrites.value + uncertainWrites.value, "seed \(seed)")
        #expect(fencedWrites.value > 0)
        for client in clients { await client.close() }
        try await eventually("no lock node is left") { try await observer.childrenIfExists(path).isEmpty }
        await observer.close()
        for proxy in proxies { await proxy.shutdown() }
    }
}
