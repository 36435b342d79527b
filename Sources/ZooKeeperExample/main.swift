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
try await watchWhileChanging(client, path: "\(base)/config")

func watchWhileChanging(_ client: ZooKeeperClient, path: String) async throws {
    var updates = client.dataUpdates(path).makeAsyncIterator()
    func show(_ update: DataUpdate?) {
        switch update {
        case .data(let node)?: print("  watch saw: data \"\(node.string)\" (version \(node.stat.version))")
        case .noNode?: print("  watch saw: no node")
        case nil: print("  watch ended")
        }
    }
    show(try await updates.next())
    try await client.create(path, data: Array("v1".utf8), parents: .persistent)
    show(try await updates.next())
    try await client.setData(path, data: Array("v2".utf8), version: 0)
    show(try await updates.next())
    try await client.delete(path)
    show(try await updates.next())
}

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
