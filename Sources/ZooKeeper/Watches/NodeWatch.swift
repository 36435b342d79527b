import Synchronization

/// A one-shot watch set by ``ZooKeeperClient/getDataAndWatch(_:)``,
/// ``ZooKeeperClient/existsAndWatch(_:)`` or ``ZooKeeperClient/getChildrenAndWatch(_:)``.
///
/// The event is kept until someone awaits it, so nothing is lost between setting the watch and
/// waiting. A watch survives disconnects within the same session (the C client re-registers it and
/// it fires if the node changed meanwhile). ``triggered()`` throws `.sessionExpired` when the
/// session expires and `.closed` when the client is closed before the watch fires.
public struct NodeWatch: Sendable {
    let signal: OneShotSignal<WatchedEvent>

    /// Waits for the watch to fire. Cancelling the waiting task throws `CancellationError` and
    /// leaves the watch registered (a later `triggered()` still sees the event).
    public func triggered() async throws -> WatchedEvent {
        try await signal.wait()
    }
}

/// A value delivered once, buffered until awaited, awaitable by several tasks.
final class OneShotSignal<Value: Sendable>: Sendable {
    private struct State {
        var result: Result<Value, ZooKeeperError>?
        var waiters: [Int: UnsafeContinuation<Value, any Error>] = [:]
        var nextWaiter = 0
    }
    private let state = Mutex(State())

    func deliver(_ result: Result<Value, ZooKeeperError>) {
        let waiters = state.withLock { state -> [UnsafeContinuation<Value, any Error>] in
            guard state.result == nil else { return [] }
            state.result = result
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(with: result.mapError { $0 as any Error }) }
    }

    func wait() async throws -> Value {
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Value, any Error>) in
                let immediate = state.withLock { state -> Result<Value, any Error>? in
                    if let result = state.result { return result.mapError { $0 as any Error } }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }
}
