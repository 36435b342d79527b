import Synchronization
import Testing
import ZooKeeper
import ZooKeeperTesting

func connectedClient(_ connectString: String, sessionTimeout: Duration = .seconds(4)) async throws -> ZooKeeperClient {
    var configuration = ZooKeeperClient.Configuration()
    configuration.sessionTimeout = sessionTimeout
    configuration.connectionTimeout = .seconds(20)
    let client = try ZooKeeperClient(connectString: connectString, configuration: configuration)
    try await client.connect()
    return client
}

/// A value shared between test tasks.
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
    var value: Value { mutex.withLock { $0 } }
}


/// Lists a node's children, or [] when it does not exist.
func children(_ client: ZooKeeperClient, _ path: String) async throws -> [String] {
    do { return try await client.getChildren(path).names } catch let error as ZooKeeperError where error.code == .noNode { return [] }
}
