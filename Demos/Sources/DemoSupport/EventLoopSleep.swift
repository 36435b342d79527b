import NIOCore
import NIOPosix

/// Waits `duration` on a timer of the current event loop (NIO's singleton group): far cheaper per
/// call than `Task.sleep`, whose timers go through Dispatch's manager thread. Throws
/// `CancellationError` when the task is cancelled.
public func eventLoopSleep(for duration: Duration) async throws {
    let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(duration)) {}
    try await withTaskCancellationHandler {
        do { try await timer.futureResult.get() } catch { throw CancellationError() }
    } onCancel: {
        timer.cancel()
    }
}
