import Synchronization
import Testing
import ZooKeeper
import ZooKeeperTesting

/// A value shared between test tasks.
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
    var value: Value { mutex.withLock { $0 } }
}


/// Runs a recipe's fault test: `body` gets a ``FaultProxy`` (to cut, drop or delay traffic), a
/// client connected through it, an observer connected to the shared server directly, and a fresh
/// path. The clients and the proxy are closed afterwards, whether `body` returned or threw.
func withProxiedClient(
    sessionTimeout: Duration = .seconds(10), name: String = #function,
    _ body: (_ proxy: FaultProxy, _ client: ZooKeeperClient, _ observer: ZooKeeperClient, _ path: String) async throws -> Void
) async throws {
    let server = try await ZooKeeperServer.shared()
    let proxy = try await FaultProxy.start(targetPort: server.port)
    var opened: [ZooKeeperClient] = []
    func closeAll() async {
        for client in opened { await client.close() }
        await proxy.shutdown()
    }
    do {
        let client = try await connectedTestClient(proxy.connectString, sessionTimeout: sessionTimeout)
        opened.append(client)
        let observer = try await connectedTestClient(server.connectString)
        opened.append(observer)
        try await body(proxy, client, observer, uniqueTestPath(name))
    } catch {
        await closeAll()
        throw error
    }
    await closeAll()
}
