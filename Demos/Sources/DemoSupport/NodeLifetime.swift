import Logging
import ServiceLifecycle

/// How every demo node runs: its parts side by side until the first one ends (a graceful
/// shutdown: SIGTERM, or ``requestStop()``; or a part that failed: a port that cannot be bound),
/// then every part is cancelled, the node cleans up whatever happened, logs that it stopped, and
/// throws what failed.
public final class NodeLifetime: Sendable {
    private let logger: Logger
    private let stopRequests: AsyncStream<Void>
    private let stopRequested: AsyncStream<Void>.Continuation

    public init(logger: Logger) {
        self.logger = logger
        (stopRequests, stopRequested) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Stops the node as a graceful shutdown does (for an administrative "shut down" request).
    public func requestStop() {
        stopRequested.yield()
    }

    /// Runs the node: `start` adds its parts to the group (and may await its start-up steps,
    /// which end the node if they throw); the node runs until the first part ends, then
    /// `cleanUp` runs whatever ended it.
    /// - Throws: the error of the part (or start-up step) that ended the node; nothing after a
    ///   graceful shutdown.
    public func run(
        _ start: (inout ThrowingTaskGroup<Void, any Error>) async throws -> Void,
        cleanUp: () async -> Void
    ) async throws {
        var failure: (any Error)?
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                let stopRequests = self.stopRequests
                group.addTask { try await gracefulShutdown() }
                group.addTask { for await _ in stopRequests { return } }
                try await start(&group)
                _ = try await group.next()
                group.cancelAll()
            }
        } catch is CancellationError {
        } catch {
            failure = error
        }
        await cleanUp()
        logger.info("stopped")
        if let failure { throw failure }
    }
}
