import ArgumentParser
import DemoSupport
import Foundation
import NIOCore
import NIOHTTP1
import ZooKeeperTesting

/// Commit latency and throughput of `replicated` clusters of several sizes (fsync on, every node
/// on this machine, one standalone ZooKeeper), with how many transactions the coordinator's
/// rounds carried, and reads on one node of each. Each (binary, size, clients) row runs on a
/// fresh cluster; several binaries (`--replicated old=PATH --replicated new=PATH`) are measured
/// in one run, row by row. With `--repeat N` every row is measured N times, the sizes taking
/// turns (1, 3, 5, 1, 3, 5, …), and a summary gives each size's median and its ratio to the
/// smallest size: the machine's speed moves from minute to minute, and a ratio of two rows
/// measured once moves with it. The clients send their writes round-robin over the nodes (a
/// member forwards what it gets to the coordinator) or, with `--writes coordinator`, to the
/// coordinator (`--writes round-robin,coordinator` measures both, row by row).
///
/// Build first: `swift build -c release --product replicated && swift build -c release --product replicated-bench`.
@main
struct ReplicatedBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replicated-bench", abstract: "Commits/s, commit latency, round sizes and reads/s of replicated clusters of 1, 3 and 5 nodes.")

    @Option(help: "Cluster sizes, comma-separated.") var nodes: String = "1,3,5"
    @Option(help: "Seconds of commits per row.") var seconds: Int = 10
    @Option(help: "Concurrent committing clients, comma-separated (one row each).") var clients: String = "8,32"
    @Option(help: "Seconds of reads per cluster size.") var readSeconds: Int = 5
    @Option(help: "Concurrent reading clients.") var readers: Int = 16
    @Option(help: "Passes over every row, the cluster sizes taking turns (a summary of medians follows).") var `repeat`: Int = 1
    @Option(help: "A replicated binary to measure, as label=path (repeat to compare; default: the one beside this program).")
    var replicated: [String] = []
    @Option(help: "Where the clients send their writes, comma-separated (each one a row of its own): round-robin (each write to the next node; members forward theirs) or coordinator.")
    var writes: String = WriteRouting.roundRobin.rawValue

    /// Where the clients send their writes.
    enum WriteRouting: String, CaseIterable {
        /// Each client's next write goes to the next node, as a round-robin load balancer sends
        /// them; a member forwards the writes it gets to the coordinator.
        case roundRobin = "round-robin"
        /// Every write goes to the node that answers 200 to `GET /admin/cluster/coordinator`, as a
        /// load balancer that health-checks that route sends writes.
        case coordinator
    }

    static func main() async {
        // The clients' tasks run on the peer client's event loops, not hopping to the cooperative
        // pool and back on every request: the load generator takes less of the cores it shares
        // with the cluster it measures.
        ProcessSetup.runConcurrencyOnEventLoops()
        await main(nil)
    }

    func run() async throws {
        var binaries: [(label: String, path: String)] = []
        for entry in replicated {
            guard let equals = entry.firstIndex(of: "=") else { throw ValidationError("--replicated \(entry): expected label=path") }
            binaries.append((String(entry[..<equals]), String(entry[entry.index(after: equals)...])))
        }
        if binaries.isEmpty {
            let beside = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("replicated").path
            binaries = [("replicated", beside)]
        }
        for binary in binaries where !FileManager.default.isExecutableFile(atPath: binary.path) {
            throw ValidationError("\(binary.path) is missing: swift build -c release --product replicated")
        }
        let routings = try writes.split(separator: ",").map { name in
            guard let routing = WriteRouting(rawValue: String(name)) else {
                throw ValidationError("--writes \(name): expected one of \(WriteRouting.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return routing
        }
        // Each binary once per routing, labelled with the routing when there are several.
        let variants = binaries.flatMap { binary in
            routings.map { routing in (label: routings.count > 1 ? "\(binary.label) \(routing.rawValue)" : binary.label, path: binary.path, writes: routing) }
        }
        let sizes = nodes.split(separator: ",").compactMap { Int($0) }
        let clientCounts = clients.split(separator: ",").compactMap { Int($0) }
        let server = try await ZooKeeperServer.start()
        defer { server.destroy() }
        print("| binary | nodes | clients | commits/s | p50 ms | p99 ms | failed | round size mean / p50 / p99 / max | forward size mean | reads/s (node 1) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        var run = 0
        var passes = PassFigures()
        for pass in 0..<max(1, self.repeat) {
            for clientCount in clientCounts {
                for size in sizes {
                    for variant in variants {
                        run += 1
                        let cluster = try await BenchCluster.start(size: size, binary: variant.path, zookeeper: server.connectString, name: "bench-\(run)")
                        do {
                            let commits = try await measureCommits(cluster, clients: clientCount, writes: variant.writes)
                            let (rounds, forwards) = await cluster.batchSizes()
                            let reads = clientCount == clientCounts.last ? String(format: "%.0f", try await measureReads(cluster, writers: clientCount)) : ""
                            let figures = String(format: "%.0f | %.1f | %.1f | %d", commits.perSecond, commits.p50, commits.p99, commits.failed)
                            print("| \(variant.label) | \(size) | \(clientCount) | \(figures) | \(rounds) | \(forwards) | \(reads) |")
                            passes.record(commits.perSecond, binary: variant.label, size: size, clients: clientCount, pass: pass)
                        } catch {
                            print("| \(variant.label) | \(size) | \(clientCount) | failed: \(error) |")
                        }
                        await cluster.stop()
                    }
                }
            }
        }
        if self.repeat > 1 { passes.printSummary(binaries: variants.map(\.label), sizes: sizes, clientCounts: clientCounts) }
    }

    /// Commits/s of every pass, for the summary of a run with `--repeat`.
    struct PassFigures {
        private var commits: [String: [Int: Double]] = [:]

        private static func key(_ binary: String, _ size: Int, _ clients: Int) -> String { "\(binary)|\(size)|\(clients)" }

        mutating func record(_ perSecond: Double, binary: String, size: Int, clients: Int, pass: Int) {
            commits[Self.key(binary, size, clients), default: [:]][pass] = perSecond
        }

        /// Each size's median commits/s (and range), and its ratio to the smallest size: the
        /// median over the passes of the two rows' ratio in the same pass, measured minutes apart
        /// at most.
        func printSummary(binaries: [String], sizes: [Int], clientCounts: [Int]) {
            func median(_ values: [Double]) -> Double {
                let sorted = values.sorted()
                return sorted.isEmpty ? .nan : sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
            }
            guard let smallest = sizes.min() else { return }
            print("")
            print("| binary | clients | nodes | commits/s median (min–max) | vs \(smallest) node(s), median of passes (each pass) |")
            print("|---|---|---|---|---|")
            for binary in binaries {
                for clientCount in clientCounts {
                    let base = commits[Self.key(binary, smallest, clientCount)] ?? [:]
                    for size in sizes {
                        let row = commits[Self.key(binary, size, clientCount)] ?? [:]
                        let values = row.sorted { $0.key < $1.key }.map(\.value)
                        guard let low = values.min(), let high = values.max() else { continue }
                        let ratios = row.sorted { $0.key < $1.key }.compactMap { pass, value in base[pass].map { value / $0 } }
                        let ratio = size == smallest ? "" : String(format: "%.2f", median(ratios)) + " (" + ratios.map { String(format: "%.2f", $0) }.joined(separator: ", ") + ")"
                        print("| \(binary) | \(clientCount) | \(size) | " + String(format: "%.0f (%.0f–%.0f)", median(values), low, high) + " | \(ratio) |")
                    }
                }
            }
        }
    }

    struct CommitFigures {
        var perSecond: Double
        var p50: Double
        var p99: Double
        var failed: Int
    }

    /// `clients` clients commit one triple per transaction (`POST /db/add`), round-robin over the
    /// nodes or to the coordinator.
    func measureCommits(_ cluster: BenchCluster, clients: Int, writes: WriteRouting) async throws -> CommitFigures {
        let targets = writes == .coordinator ? [try await cluster.coordinator()] : cluster.addresses
        let deadline = ContinuousClock.now + .seconds(seconds)
        let started = ContinuousClock.now
        let results = try await withThrowingTaskGroup(of: ([Double], Int).self) { group in
            for client in 0..<clients {
                group.addTask {
                    var latencies: [Double] = []
                    var failed = 0
                    var count = 0
                    while ContinuousClock.now < deadline {
                        count += 1
                        let address = targets[(client + count) % targets.count]
                        let body = "<urn:bench:c\(client)-\(count)> <urn:bench:p> \"\(count)\" .\n"
                        let start = ContinuousClock.now
                        let status = try await BenchCluster.request(.POST, address, "/db/add", body: body).status
                        if status == 200 { latencies.append((ContinuousClock.now - start) / .milliseconds(1)) } else { failed += 1 }
                    }
                    return (latencies, failed)
                }
            }
            return try await group.reduce(into: [([Double], Int)]()) { $0.append($1) }
        }
        let elapsed = (ContinuousClock.now - started) / .seconds(1)
        let latencies = results.flatMap { $0.0 }.sorted()
        func percentile(_ p: Double) -> Double { latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        return CommitFigures(perSecond: Double(latencies.count) / elapsed, p50: percentile(0.5), p99: percentile(0.99), failed: results.map { $0.1 }.reduce(0, +))
    }

    /// `readers` clients read one subject's triples (of the `writers` that committed) from node 1.
    func measureReads(_ cluster: BenchCluster, writers: Int) async throws -> Double {
        let deadline = ContinuousClock.now + .seconds(readSeconds)
        let started = ContinuousClock.now
        let address = cluster.addresses[0]
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            for reader in 0..<readers {
                group.addTask {
                    var count = 0
                    while ContinuousClock.now < deadline {
                        let path = "/db/triples?s=%3Curn:bench:c\(reader % writers)-\(count % 50 + 1)%3E"
                        if try await BenchCluster.request(.GET, address, path).status == 200 { count += 1 }
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(counts) / ((ContinuousClock.now - started) / .seconds(1))
    }
}

/// `size` replicated processes on loopback, each with its home under a temporary directory.
struct BenchCluster: Sendable {
    let addresses: [String]
    let processes: [ChildProcess]
    let directory: String

    static func start(size: Int, binary: String, zookeeper: String, name: String) async throws -> BenchCluster {
        let directory = NSTemporaryDirectory() + "replicated-bench-" + UUID().uuidString
        var addresses: [String] = []
        var processes: [ChildProcess] = []
        for index in 1...size {
            let home = "\(directory)/node\(index)"
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
            let port = try freeLoopbackPort()
            let properties = """
                pack.enabled=true
                pack.zookeeper.address=\(zookeeper)
                pack.cluster.name=\(name)
                pack.node.address=127.0.0.1
                stardog.http.port=\(port)
                pack.node.join.retry.delay=200ms
                """
            try properties.write(toFile: home + "/stardog.properties", atomically: true, encoding: .utf8)
            let process = ChildProcess(logPath: home + "/replicated.log")
            try process.start(executable: binary, arguments: ["--config", home + "/stardog.properties", "--log-level", "warning"])
            addresses.append("127.0.0.1:\(port)")
            processes.append(process)
            try await eventually("127.0.0.1:\(port) is healthy", timeout: .seconds(60)) {
                (try? await request(.GET, "127.0.0.1:\(port)", "/admin/healthcheck"))?.status == 200
            }
        }
        let cluster = BenchCluster(addresses: addresses, processes: processes, directory: directory)
        guard try await request(.PUT, addresses[0], "/admin/databases/db").status == 201 else { throw ValidationError("could not create the database") }
        return cluster
    }

    /// Kept-alive connections, one per client in flight: the demos' peer client, which costs a
    /// commit about half the CPU AsyncHTTPClient did (the clients share the two cores with the
    /// nodes they measure).
    static let client = PeerClient()

    static func request(_ method: HTTPMethod, _ address: String, _ path: String, body: String? = nil) async throws -> (status: Int, body: String) {
        let answer = try await client.send(
            peer: address, method: method, path: path, body: body.map { ByteBuffer(string: $0) },
            extraHeaders: body == nil ? [:] : ["Content-Type": "application/n-triples"], timeout: .seconds(30))
        return (answer.status, String(buffer: answer.body))
    }

    /// The address of the node that answers 200 to `GET /admin/cluster/coordinator`.
    func coordinator() async throws -> String {
        var found: String?
        try await eventually("a node is the coordinator", timeout: .seconds(30)) {
            for address in addresses where found == nil {
                if (try? await Self.request(.GET, address, "/admin/cluster/coordinator"))?.status == 200 { found = address }
            }
            return found != nil
        }
        guard let found else { throw ValidationError("no node answers GET /admin/cluster/coordinator with 200") }
        return found
    }

    /// How many transactions the coordinator's rounds carried (`GET /admin/status`), as
    /// "mean / p50 / p99 / max", and how many the other members' requests forwarding them to the
    /// coordinator carried, as a mean over all of them; "—" when the nodes do not report it.
    func batchSizes() async -> (rounds: String, forwards: String) {
        struct Status: Decodable {
            struct Sizes: Decodable { var count: Int; var operations: Int; var mean: Double; var p50: Int; var p99: Int; var max: Int }
            var rounds: Sizes
            var forwards: Sizes?
            enum CodingKeys: String, CodingKey {
                case rounds = "cluster.commit.round.size"
                case forwards = "cluster.forward.batch.size"
            }
        }
        var busiest: Status.Sizes?
        var forwarded = (requests: 0, operations: 0)
        for address in addresses {
            guard let reply = try? await Self.request(.GET, address, "/admin/status"), reply.status == 200,
                let status = try? JSONDecoder().decode(Status.self, from: Data(reply.body.utf8))
            else { continue }
            if status.rounds.count > (busiest?.count ?? 0) { busiest = status.rounds }
            if let forwards = status.forwards {
                forwarded.requests += forwards.count
                forwarded.operations += forwards.operations
            }
        }
        let rounds = busiest.map { String(format: "%.1f / %d / %d / %d", $0.mean, $0.p50, $0.p99, $0.max) } ?? "—"
        let forwards = forwarded.requests == 0 ? "—" : String(format: "%.1f", Double(forwarded.operations) / Double(forwarded.requests))
        return (rounds, forwards)
    }

    func stop() async {
        for process in processes { await process.stop(grace: .seconds(5)) }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
