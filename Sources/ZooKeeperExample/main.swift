// A short tour of the client against a real ZooKeeper: the embedded server from ZooKeeperTesting,
// or the one named by ZOOKEEPER_CONNECT.
import Foundation
import Logging
import ZooKeeper
import ZooKeeperTesting

LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
var logger = Logger(label: "zk-example")
logger.logLevel = .info

let embedded: ZooKeeperServer?
let connect: String
if let given = ProcessInfo.processInfo.environment["ZOOKEEPER_CONNECT"] {
    embedded = nil
    connect = given
} else {
    logger.info("starting an embedded ZooKeeper server (Debian's zookeeper package)")
    let server = try await ZooKeeperServer.start()
    embedded = server
    connect = server.connectString
}
defer { embedded?.destroy() }

var configuration = ZooKeeperClient.Configuration()
configuration.logger = logger
let client = try ZooKeeperClient(connectString: connect, configuration: configuration)
let session = try await client.connect()
print("connected to \(connect): \(session)")

// Watch a node's data as a stream of snapshots while we change it.
let base = "/zk-example-\(UInt32.random(in: 0...UInt32.max))"
let watcher = Task {
    var seen: [String] = []
    for try await update in client.dataUpdates("\(base)/config") {
        switch update {
        case .data(let node): seen.append("data \"\(node.string)\" (version \(node.stat.version))")
        case .noNode: seen.append("no node")
        }
        print("  watch saw: \(seen.last!)")
        if seen.count == 4 { break }
    }
}

try await Task.sleep(for: .milliseconds(200))
try await client.create("\(base)/config", data: Array("v1".utf8), parents: .persistent)
try await Task.sleep(for: .milliseconds(100))
try await client.setData("\(base)/config", data: Array("v2".utf8), version: 0)
try await Task.sleep(for: .milliseconds(100))
try await client.delete("\(base)/config")
try await watcher.value

// An atomic transaction, with a check that makes it fail as a whole.
do {
    _ = try await client.multi([
        .create(path: "\(base)/a", data: Array("a".utf8)),
        .check(path: "\(base)/missing"),
    ])
} catch let error as ZooKeeperError {
    print("multi failed as expected: \(error)")
}
let member = try await client.create("\(base)/member-", mode: .ephemeralSequential)
print("ephemeral sequential node: \(member.path), owner 0x\(String(UInt64(bitPattern: member.stat.ephemeralOwner), radix: 16))")
print("children of \(base): \(try await client.getChildren(base).names)")
try await client.delete(member.path)
try await client.delete(base)
await client.close()
print("closed; done")
