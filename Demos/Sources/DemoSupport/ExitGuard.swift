import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Runs a demo server's service and makes sure the process ends once the service has stopped.
///
/// The service group can hang after its services stopped: swift-async-algorithms' `merge` (which
/// `ServiceGroup` uses) may deadlock while a group is cancelled
/// (apple/swift-async-algorithms#430; the fix, #444, is not in a released version we can pin).
/// A process that no longer serves must not linger holding its port and its ZooKeeper session,
/// so once the service returns, throws, or begins a graceful shutdown, the process exits by
/// itself `grace` later if it has not exited by then (status 0 after a clean stop, 1 after a failure).
public struct ExitGuardedService<Base: Service>: Service {
    public let base: Base
    public let grace: Duration

    public init(_ base: Base, grace: Duration = .seconds(10)) {
        self.base = base
        self.grace = grace
    }

    public func run() async throws {
        do {
            try await withGracefulShutdownHandler {
                try await base.run()
            } onGracefulShutdown: {
                ExitGuard.exitUnlessDone(within: grace, status: 0)
            }
        } catch {
            ExitGuard.exitUnlessDone(within: grace, status: 1)
            throw error
        }
        ExitGuard.exitUnlessDone(within: grace, status: 0)
    }
}

enum ExitGuard {
    private static let armed = Atomic<Bool>(false)

    /// Exits with `status` after `grace` on a thread of its own, unless the process ended first.
    static func exitUnlessDone(within grace: Duration, status: Int32) {
        guard !armed.exchange(true, ordering: .relaxed) else { return }
        let seconds = Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: seconds)
            FileHandle.standardError.write(Data("the service stopped \(grace) ago but the process has not exited: exiting with status \(status)\n".utf8))
            exit(status)
        }
    }
}

extension ProcessSetup {
    /// Runs a demo server's service until SIGTERM or SIGINT (graceful shutdown) or until it ends,
    /// guarded by ``ExitGuardedService``; false, after logging why, when it failed.
    public static func serve(_ service: some Service, name: String, logger: Logger) async -> Bool {
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: ExitGuardedService(service), successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
            return true
        } catch {
            logger.critical("\(name) stopped: \(error)")
            return false
        }
    }
}
