import Foundation
import Testing
import ZooKeeperTesting

/// A set of demo node processes for one test: a temporary directory named after the test, the
/// nodes, and their logs when the test fails.
open class DemoTestCluster<Node: DemoTestNode>: @unchecked Sendable {
    /// The cluster's directory; each node has one below it.
    public let directory: String
    /// A name no other test uses (`<prefix>-<test>-<random>`): the cluster's name in ZooKeeper.
    public let clusterName: String
    /// The demo executable the nodes run.
    public let executable: String
    /// The nodes added so far.
    public var nodes: [Node] = []

    /// A cluster for the test `name`, whose nodes run the executable `product` of this package.
    public init(product: String, name: String) throws {
        clusterName = product + "-" + name.filter { $0.isLetter || $0.isNumber }.prefix(60) + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        directory = NSTemporaryDirectory() + clusterName
        executable = ChildProcess.builtExecutable(named: product)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ZooKeeperTestingError("build the \(product) executable first (swift build --package-path Demos)")
        }
    }

    /// Kills every process (paused ones too) and deletes the files.
    open func tearDown() async {
        for node in nodes where node.isRunning { await node.kill9() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The end of every node's log.
    public func logs(lastCharacters: Int = 3000) -> String {
        nodes.map { "--- \($0.label) ---\n" + $0.log.suffix(lastCharacters) }.joined(separator: "\n")
    }

    /// Runs `body` on the cluster, records the nodes' logs if it fails, and always tears down.
    public func run(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            Issue.record("logs:\n\(logs())")
            await tearDown()
            throw error
        }
        await tearDown()
    }
}
