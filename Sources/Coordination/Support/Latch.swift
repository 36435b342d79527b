import Synchronization

/// A value set once and awaited by any number of tasks (cancellable waits).
///
/// Not part of the library's API: the recipes use it, and the demos reach it through
/// `@_spi(Concurrency) import Coordination`.
@_spi(Concurrency) public final class Latch<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var waiters: [Int: CheckedContinuation<Value?, Never>] = [:]
        var next = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Sets the value; `false` if it was already set.
    @discardableResult
    public func set(_ value: Value) -> Bool {
        let waiters = state.withLock { state -> [CheckedContinuation<Value?, Never>]? in
            guard state.value == nil else { return nil }
            state.value = value
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        guard let waiters else { return false }
        for waiter in waiters { waiter.resume(returning: value) }
        return true
    }

    public var value: Value? { state.withLock { $0.value } }

    /// The value, once set; `nil` if the waiting task is cancelled first.
    public func wait() async -> Value? {
        let id = state.withLock { state -> Int in
            state.next += 1
            return state.next
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
                let immediate = state.withLock { state -> Value?? in
                    if let value = state.value { return .some(value) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(returning: nil)
        }
    }
}

extension Latch where Value == Void {
    /// A latch set once `task` has ended and `earlier` (if any) is set, right after `settled`
    /// runs with it (to forget it wherever it was recorded).
    static func set(
        after task: Task<Void, Never>, andAfter earlier: Latch<Void>? = nil, settled: @escaping @Sendable (Latch<Void>) -> Void = { _ in }
    ) -> Latch<Void> {
        let latch = Latch<Void>()
        Task.detached {
            await task.value
            if let earlier { _ = await earlier.wait() }
            settled(latch)
            latch.set(())
        }
        return latch
    }
}

/// Runs `body`, cancelling it when `loss` resolves first; then throws `lostError()`.
func run<R: Sendable>(
    _ body: @escaping @Sendable () async throws -> R, cancelledWhen loss: @escaping @Sendable () async -> Bool,
    lostError: @escaping @Sendable () -> any Error
) async throws -> R {
    return try await withThrowingTaskGroup(of: BodyOutcome<R>?.self) { group in
        group.addTask { .finished(try await body()) }
        group.addTask { await loss() ? .lost : nil }
        defer { group.cancelAll() }
        while let outcome = try await group.next() {
            switch outcome {
            case .finished(let value)?: return value
            case .lost?:
                group.cancelAll()
                // Let the body observe its cancellation and end before reporting the loss.
                while (try? await group.next()) != nil {}
                throw lostError()
            case nil: continue
            }
        }
        throw CancellationError()
    }
}

/// How a body run by ``run(_:cancelledWhen:lostError:)`` ended.
private enum BodyOutcome<R: Sendable>: Sendable {
    case finished(R)
    case lost
}
