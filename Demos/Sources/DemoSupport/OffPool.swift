@_spi(Concurrency) import Coordination
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

/// ``runOffPool(_:)`` for work whose cost grows with its input: run on the caller's thread when
/// the input is `small` (the hop to a Dispatch thread and back would cost more than the work).
public func runOffPool<T: Sendable>(unless small: Bool, _ work: @escaping @Sendable () throws -> T) async throws -> T {
    if small { return try work() }
    return try await runOffPool(work)
}

/// ``runOffPool(_:)`` for work the caller may stop waiting for: returns the work's result, or nil
/// as soon as the calling task is cancelled (the work itself runs to its end on its thread and
/// its result is dropped).
public func runOffPoolUnlessCancelled<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T? {
    let result = Latch<T>()
    DispatchQueue.global().async { result.set(work()) }
    return await result.wait()
}
