import ArgumentParser
import AsyncHTTPClient
import DemoSupport
import Foundation
import Logging
import SequinsKV
import ZooKeeperTesting

@main
struct KVBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv-bench", abstract: "Measurements of the kv (sequins) demo.",
        subcommands: [Load.self, Servers.self, WriteData.self, RunZooKeeper.self])

    static func main() async {
        ProcessSetup.runConcurrencyOnEventLoops()
        await main(nil)
    }
}

/// Loading block-compressed SequenceFiles into a version against only decoding them.
struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time loading N records against reading and decompressing them.")
    @Option var records = 1_000_000
    @Option var valueSize = 100
    @Option var files = 8
    @Option var repeats = 3
    @Option var directory = NSTemporaryDirectory() + "kv-bench-load"

    func run() async throws {
        try? FileManager.default.removeItem(atPath: directory)
        let versionDirectory = try SampleData.writeVersion(
            root: directory + "/source", database: "bench", version: "1", files: files, records: records, valueSize: valueSize)
        let paths = try SourceRoot(directory + "/source").dataFiles(database: "bench", version: "1")
        let bytes = paths.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
        print("\(records) records, \(valueSize)-byte values, \(files) block-compressed (zlib) files, \(bytes / 1_048_576) MiB in \(versionDirectory)")
        let clock = ContinuousClock()
        var decodeTimes: [Duration] = []
        var loadTimes: [Duration] = []
        for _ in 0..<repeats {
            // Baseline: read and decompress every record, touching each key and value once.
            let decode = try clock.measure {
                var checksum = 0
                for path in paths {
                    var reader = try SequenceFileReader(path: path)
                    try reader.forEachRecord { key, value in
                        checksum &+= key.count &+ value.count
                        return true
                    }
                }
                precondition(checksum > 0)
            }
            decodeTimes.append(decode)
            // kv: read, pick the partitions (all of them, as a lone node does), index, and store.
            let store = try LocalStore(directory: directory + "/store-\(UUID().uuidString)")
            let load = try await clock.measure {
                var builder = VersionBuilder(files: paths, partitionCount: paths.count, selected: Set(0..<paths.count))
                builder.maxParallelLoads = 1
                let partitions = try await builder.build(into: store.versionDirectory(database: "bench", version: "1"))
                let manifest = StoredVersionManifest(
                    numPartitions: paths.count, selectedPartitions: Array(0..<paths.count), createdAt: 0,
                    sourcePath: versionDirectory)
                try store.saveManifest(manifest, database: "bench", version: "1")
                precondition(partitions.values.reduce(0) { $0 + $1.count } == records)
            }
            loadTimes.append(load)
            try? FileManager.default.removeItem(atPath: store.directory)
        }
        let decode = decodeTimes.sorted()[repeats / 2]
        let load = loadTimes.sorted()[repeats / 2]
        func rate(_ duration: Duration) -> Double {
            Double(records) / (Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
        }
        print(String(format: "decode only: %@ (median of %d) = %.0f records/s", "\(decode)", repeats, rate(decode)))
        print(String(format: "kv load (decode + partition + index + store): %@ = %.0f records/s", "\(load)", rate(load)))
        print(String(format: "ratio load/decode speed: %.2f", rate(load) / rate(decode)))
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Writes one version of sample SequenceFiles (gzip block-compressed, which sequins reads too)
/// and the key lists wrk draws from: keys that exist, and as many that do not.
struct WriteData: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Write sample SequenceFiles and key lists for a comparison.")
    @Option var records = 1_000_000
    @Option var valueSize = 100
    @Option var files = 8
    @Option(help: "Where: <directory>/source/bench/1/part-*, keys.txt, missing.txt") var directory: String

    func run() async throws {
        try? FileManager.default.removeItem(atPath: directory + "/source")
        try SampleData.writeVersion(
            root: directory + "/source", database: "bench", version: "1", files: files, records: records, valueSize: valueSize)
        try (0..<records).map { "/bench/" + SampleData.key($0) }.joined(separator: "\n")
            .write(toFile: directory + "/keys.txt", atomically: true, encoding: .utf8)
        try (0..<records).map { "/bench/missing-\($0)" }.joined(separator: "\n")
            .write(toFile: directory + "/missing.txt", atomically: true, encoding: .utf8)
        print("wrote \(records) records in \(files) files under \(directory)/source/bench/1")
    }
}

/// Runs a standalone ZooKeeper server (Debian's package) until stdin closes; prints `connect=<host:port>`.
struct RunZooKeeper: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "zookeeper", abstract: "Run a ZooKeeper server until stdin closes.")

    func run() async throws {
        let server = try await ZooKeeperServer.start()
        FileHandle.standardOutput.write(Data("connect=\(server.connectString)\n".utf8))
        _ = try await runOffPool { FileHandle.standardInput.readDataToEndOfFile() }
        _ = try await runOffPool { server.destroy() }
    }
}

/// Starts what wrk measures: a kv node whose keys are local, a second node that must proxy to
/// it, and the constant-body baseline, all on one ZooKeeper; writes the key lists for wrk.
struct Servers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the servers for the wrk comparison until stdin closes.")
    @Option var records = 100_000
    @Option var directory = NSTemporaryDirectory() + "kv-bench-http"

    func run() async throws {
        _ = ProcessSetup.bootstrapLogging(levelName: "warning", label: "bench")
        try? FileManager.default.removeItem(atPath: directory)
        try SampleData.writeVersion(root: directory + "/source", database: "bench", version: "1", files: 4, records: records, valueSize: 100)
        let server = try await ZooKeeperServer.start()
        defer {
            // destroy() waits for the JVM; not on an event loop (the watchdog covers a crash).
            Thread.detachNewThread { server.destroy() }
        }
        // Node "local" holds every partition (shard 1, replication 1, alone when it starts);
        // node "proxying" joins later with shard 2 and max_replication 1, so it holds nothing and
        // proxies every key to "local".
        let ports = try (0..<3).map { _ in try freeLoopbackPort() }
        func configuration(_ index: Int, shard: String) -> SequinsConfiguration {
            var configuration = SequinsConfiguration()
            configuration.source = directory + "/source"
            configuration.localStore = directory + "/store\(index)"
            configuration.bind = "127.0.0.1:\(ports[index])"
            configuration.sharding.enabled = true
            configuration.sharding.replication = 1
            configuration.sharding.maxReplication = 1
            configuration.sharding.shardID = shard
            configuration.sharding.timeToConverge = .milliseconds(200)
            configuration.sharding.proxyTimeout = .seconds(1)
            configuration.sharding.advertisedHostname = "127.0.0.1"
            configuration.zk.servers = [server.connectString]
            return configuration
        }
        let logger = Logger(label: "kv-bench")
        try await withThrowingTaskGroup(of: Void.self) { group in
            let local = try KVNode(configuration: configuration(0, shard: "1"), logger: logger)
            group.addTask { try await local.run() }
            try await waitForVersion(port: ports[0], proxied: false)
            let proxying = try KVNode(configuration: configuration(1, shard: "2"), logger: logger)
            group.addTask { try await proxying.run() }
            try await waitForVersion(port: ports[1], proxied: true)
            group.addTask { try await ConstantResponseServer.run(host: "127.0.0.1", port: ports[2], body: "value-0@1" + String(repeating: ".", count: 91)) }
            let keys = (0..<records).map { "/bench/" + SampleData.key($0) }.joined(separator: "\n")
            try keys.write(toFile: directory + "/keys.txt", atomically: true, encoding: .utf8)
            let line = "local=127.0.0.1:\(ports[0]) proxying=127.0.0.1:\(ports[1]) constant=127.0.0.1:\(ports[2]) keys=\(directory)/keys.txt\n"
            FileHandle.standardOutput.write(Data(line.utf8))
            // The event loops run the concurrency pool here: wait for stdin on a thread of its own.
            _ = try await runOffPool { FileHandle.standardInput.readDataToEndOfFile() }
            group.cancelAll()
        }
    }

    /// Waits until the node at `port` serves version 1, and checks its role in the comparison: the
    /// "local" node answers itself, the "proxied" one through a peer (else the figures would
    /// measure something else).
    func waitForVersion(port: Int, proxied: Bool) async throws {
        try await eventually("127.0.0.1:\(port) serves version 1", timeout: .seconds(120)) {
            let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/bench/key-0")
            let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(5))
            return response?.status == .ok
        }
        for index in 0..<20 {
            let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/bench/" + SampleData.key(index))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            guard response.status == .ok, response.headers.contains(name: "X-Sequins-Proxied-To") == proxied else {
                throw ValidationError("127.0.0.1:\(port) should answer \(proxied ? "through a peer" : "itself"): \(response.status), \(response.headers)")
            }
        }
    }
}
