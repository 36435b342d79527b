import Foundation

/// Runs blocking work (file I/O, decompression, indexing, a CPU-heavy search, a test's hang) on a
/// Dispatch thread. In the demo servers Swift concurrency runs on NIO's event loops
/// (``ProcessSetup``), so anything that blocks must go through here.
public func runOffPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try work() })
        }
    }
}

/// ``runOffPool(_:)`` for work the caller may stop waiting for: returns the work's result, or nil
/// as soon as the calling task is cancelled (the work itself runs to its end on its thread and
/// its result is dropped).
public func runOffPoolUnlessCancelled<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T? {
    let box = OnceContinuation<T?>()
    return await withTaskCancellationHandler {
        await withCheckedContinuation { continuation in
            box.set(continuation)
            DispatchQueue.global().async { box.resume(work()) }
        }
    } onCancel: {
        box.resume(nil)
    }
}

/// A continuation resumed at most once, by whichever comes first (a value set before the
/// continuation arrives is delivered when it does).
final class OnceContinuation<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, Never>?
    private var early: T?
    private var resumed = false

    func set(_ continuation: CheckedContinuation<T, Never>) {
        lock.lock()
        if let early, !resumed {
            resumed = true
            lock.unlock()
            continuation.resume(returning: early)
            return
        }
        self.continuation = continuation
        lock.unlock()
    }

    func resume(_ value: T) {
        lock.lock()
        guard !resumed else { return lock.unlock() }
        guard let continuation else {
            early = value
            return lock.unlock()
        }
        resumed = true
        self.continuation = nil
        lock.unlock()
        continuation.resume(returning: value)
    }
}
