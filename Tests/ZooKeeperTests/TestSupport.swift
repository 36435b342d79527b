import Foundation
import Logging
import Testing
import ZooKeeper
import ZooKeeperTesting

/// The process-wide shared server (see ``ZooKeeperServer/shared()``).
enum SharedServer {
    static func get() async throws -> ZooKeeperServer { try await ZooKeeperServer.shared() }
}

/// A fresh node path no other test uses.
func uniquePath(_ name: String = #function) -> String { uniqueTestPath(name) }

func configuration(sessionTimeout: Duration = .seconds(4), _ adjust: (inout ZooKeeperClient.Configuration) -> Void = { _ in })
    -> ZooKeeperClient.Configuration
{
    var configuration = ZooKeeperClient.Configuration()
    configuration.sessionTimeout = sessionTimeout
    configuration.connectionTimeout = .seconds(20)
    adjust(&configuration)
    return configuration
}

/// Connects a client, runs `body`, closes the client and checks that nothing it handed to the C
/// client was left behind.
@discardableResult
func withClient<R>(
    _ connectString: String, configuration: ZooKeeperClient.Configuration = configuration(),
    _ body: (ZooKeeperClient) async throws -> R
) async throws -> R {
    let client = try ZooKeeperClient(connectString: connectString, configuration: configuration)
    try await client.connect()
    do {
        let result = try await body(client)
        await client.close()
        #expect(client.outstandingCallbackContexts == 0)
        return result
    } catch {
        await client.close()
        throw error
    }
}

/// Records a client's session states with the time each arrived.
final class StateRecorder: Sendable {
    private final class Log: Sendable {
        let states = Mutex<[(SessionState, ContinuousClock.Instant)]>([])
    }
    private let log = Log()
    private let task: Task<Void, Never>

    init(_ client: ZooKeeperClient) {
        let log = self.log
        task = Task {
            for await state in client.sessionEvents {
                log.states.withLock { $0.append((state, .now)) }
            }
        }
    }

    deinit { task.cancel() }

    var recorded: [(state: SessionState, at: ContinuousClock.Instant)] { log.states.withLock { $0.map { ($0.0, $0.1) } } }

    /// Waits until a recorded state satisfies `predicate`; returns it and when it came.
    @discardableResult
    func wait(
        for description: String, timeout: Duration = .seconds(30), _ predicate: (SessionState) -> Bool
    ) async throws -> (state: SessionState, at: ContinuousClock.Instant) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let match = recorded.first(where: { predicate($0.state) }) { return match }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting for \(description); states: \(recorded.map(\.state))")
        throw ZooKeeperTestingError("timed out waiting for \(description)")
    }
}

extension StateRecorder {
    /// Waits for a `connected` state that follows a `suspended` one (a reconnect to the same session
    /// or a later one).
    func waitForReconnect(timeout: Duration = .seconds(30)) async throws {
        try await wait(for: "a reconnect after suspension", timeout: timeout) { state in
            guard case .connected = state else { return false }
            return recorded.contains { SessionStateKind($0.state) == .suspended }
        }
    }

    /// Waits for the first state of the given kind, for example `.suspended`.
    @discardableResult
    func wait(for kind: SessionStateKind, timeout: Duration = .seconds(30)) async throws -> (state: SessionState, at: ContinuousClock.Instant) {
        try await wait(for: "\(kind)", timeout: timeout) { SessionStateKind($0) == kind }
    }
}

/// The case of a ``SessionState`` without its payload, for matching in tests.
enum SessionStateKind: String {
    case connecting, connected, suspended, presumedExpired, expired, newSession, readOnly, authFailed, closed

    init(_ state: SessionState) {
        switch state {
        case .connecting: self = .connecting
        case .connected: self = .connected
        case .suspended: self = .suspended
        case .presumedExpired: self = .presumedExpired
        case .expired: self = .expired
        case .newSession: self = .newSession
        case .readOnly: self = .readOnly
        case .authFailed: self = .authFailed
        case .closed: self = .closed
        }
    }
}

/// Runs `body`, retrying while it fails with `.connectionLoss` (for set-up steps on a cluster
/// that is still settling; a create retried this way must tolerate `.nodeExists`).
@discardableResult
func retryingConnectionLoss<R>(attempts: Int = 60, _ body: () async throws -> R) async throws -> R {
    for _ in 1..<attempts {
        do {
            return try await body()
        } catch let error as ZooKeeperError where error.code == .connectionLoss {
            try await Task.sleep(for: .milliseconds(250))
        }
    }
    return try await body()
}


/// Runs `operation`, failing (instead of hanging) if it takes longer than `timeout`. The operation
/// is left running unstructured when it hangs, so the test can report and end.
func within<R: Sendable>(_ timeout: Duration, _ what: String, _ operation: @escaping @Sendable () async throws -> R) async throws -> R {
    let result = Locked<Result<R, any Error>?>(nil)
    let task = Task {
        let outcome: Result<R, any Error>
        do { outcome = .success(try await operation()) } catch { outcome = .failure(error) }
        result.withLock { $0 = outcome }
    }
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let outcome = result.withLock({ $0 }) { return try outcome.get() }
        try await Task.sleep(for: .milliseconds(10))
    }
    task.cancel()
    Issue.record("\(what) did not finish within \(timeout)")
    throw ZooKeeperTestingError("\(what) hung")
}

extension ZooKeeperError.Code {
    static func ~= (pattern: ZooKeeperError.Code, error: any Error) -> Bool {
        (error as? ZooKeeperError)?.code == pattern
    }
}

/// Expects `body` to throw a ``ZooKeeperError`` with `code`; returns it.
@discardableResult
func expectError<R>(
    _ code: ZooKeeperError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> R
) async -> ZooKeeperError? {
    do {
        _ = try await body()
        Issue.record("expected ZooKeeperError.\(code), got success", sourceLocation: sourceLocation)
    } catch let error as ZooKeeperError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected ZooKeeperError.\(code), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

import Synchronization

/// A value shared between test tasks.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}
