import ArgumentParser
import DemoSupport
import Foundation
import Logging
import SequinsKV
import ZooKeeperTesting

/// The README's main job: a local `kv` cluster on an embedded ZooKeeper, with generated data.
@main
struct KVDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv-demo",
        abstract: "Start ZooKeeper and three kv nodes (replication 2, min_replication 2) on generated SequenceFiles, and query them.")

    @Option(help: "Where to put the source, the stores and the logs (default: a new temporary directory).")
    var directory: String?

    @Option(help: "Records in the sample database.")
    var records: Int = 20000

    @Flag(help: "Exit after showing the lookups instead of running until Ctrl-C.")
    var once = false

    func run() async throws {
        let root = directory ?? NSTemporaryDirectory() + "kv-demo-\(getpid())"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let kvBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("kv").path
        guard FileManager.default.isExecutableFile(atPath: kvBinary) else {
            throw ValidationError("the kv executable is not next to kv-demo (\(kvBinary)): run `swift build --package-path Demos --product kv` first")
        }

        say("Starting an embedded ZooKeeper (Debian's zookeeper package)…")
        let server = try await ZooKeeperServer.start()
        say("  ZooKeeper is serving on \(server.connectString)")

        say("Writing the sample database 'names' (version 1: 5 block-compressed SequenceFiles, \(records) records) under \(root)/source…")
        try SampleData.writeVersion(root: root + "/source", database: "names", version: "1", files: 5, records: records, valueSize: 100)

        var nodes: [(process: Process, port: Int)] = []
        for index in 1...3 {
            let port = try freeLoopbackPort()
            let nodeDirectory = root + "/node\(index)"
            try FileManager.default.createDirectory(atPath: nodeDirectory, withIntermediateDirectories: true)
            let configuration = """
                source = "\(root)/source"
                bind = "127.0.0.1:\(port)"
                local_store = "\(nodeDirectory)/store"
                require_success_file = true

                [sharding]
                enabled = true
                replication = 2
                min_replication = 2
                time_to_converge = "2s"
                shard_id = "\(index)"
                advertised_hostname = "127.0.0.1"
                cluster_name = "kv-demo"

                [zk]
                servers = ["\(server.connectString)"]
                """
            try configuration.write(toFile: nodeDirectory + "/sequins.conf", atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: kvBinary)
            process.arguments = ["--config", nodeDirectory + "/sequins.conf"]
            _ = FileManager.default.createFile(atPath: nodeDirectory + "/kv.log", contents: nil)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: nodeDirectory + "/kv.log"))
            process.standardOutput = log
            process.standardError = log
            try process.run()
            nodes.append((process, port))
            say("  started kv node \(index) on 127.0.0.1:\(port) (config and log in \(nodeDirectory))")
        }
        defer {
            for node in nodes where node.process.isRunning {
                node.process.terminate()
                node.process.waitUntilExit()
            }
            server.destroy()
        }

        say("Waiting for the nodes to converge, load their partitions and switch to version 1…")
        for (index, node) in nodes.enumerated() {
            try await eventually("node \(index + 1) serves version 1", timeout: .seconds(120)) {
                (try? await get("http://127.0.0.1:\(node.port)/names/key-0"))?.headers["X-Sequins-Version"] == "1"
            }
        }

        say("\nLookups through different nodes (a node answers every key, proxying to a peer when it does not hold the partition):")
        for (offset, record) in [0, 1, 2, 3, 4, 12345].enumerated() where record < records {
            let node = nodes[offset % nodes.count]
            let url = "http://127.0.0.1:\(node.port)/names/\(SampleData.key(record))"
            let reply = try await get(url)
            say("\n$ curl -i \(url)")
            say("HTTP/1.1 \(reply.status)")
            for name in ["X-Sequins-Version", "X-Sequins-Proxied-To", "Last-Modified"] {
                if let value = reply.headers[name] { say("\(name): \(value)") }
            }
            say(String(reply.body.prefix(60)) + (reply.body.count > 60 ? "…" : ""))
        }
        let missing = try await get("http://127.0.0.1:\(nodes[0].port)/names/no-such-key")
        say("\n$ curl -i http://127.0.0.1:\(nodes[0].port)/names/no-such-key\nHTTP/1.1 \(missing.status)  (X-Sequins-Version: \(missing.headers["X-Sequins-Version"] ?? "-"))")

        let statusURL = "http://127.0.0.1:\(nodes[0].port)/"
        let status = try await get(statusURL, accept: "application/json")
        say("\n$ curl -H 'Accept: application/json' \(statusURL)")
        say(status.body)  // as sequins writes it (one line, its field order)

        if once {
            say("\nDone (--once): stopping the nodes and ZooKeeper.")
            return
        }
        say("\nThe cluster is running. Try: curl -i http://127.0.0.1:\(nodes[1].port)/names/key-42")
        say("Add a version: write \(root)/source/names/2/ (with _SUCCESS) and send SIGHUP to the kv processes. Ctrl-C stops everything.")
        let (signals, continuation) = AsyncStream<Void>.makeStream()
        let sources = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { continuation.yield() }
            source.resume()
            return source
        }
        for await _ in signals { break }
        _ = sources
        say("\nStopping the nodes and ZooKeeper…")
    }

    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    /// A GET of `http://host:port/path`, as `curl` would show it.
    func get(_ url: String, accept: String? = nil) async throws -> Reply {
        let target = url.dropFirst("http://".count)
        let slash = target.firstIndex(of: "/") ?? target.endIndex
        let answer = try await Self.client.send(
            peer: String(target[..<slash]), path: slash == target.endIndex ? "/" : String(target[slash...]),
            extraHeaders: accept.map { ["Accept": $0] } ?? [:], timeout: .seconds(5))
        var headers: [String: String] = [:]
        for header in answer.headers { headers[header.name] = header.value }
        return Reply(status: answer.status, headers: headers, body: String(buffer: answer.body))
    }

    static let client = PeerClient()

    func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
