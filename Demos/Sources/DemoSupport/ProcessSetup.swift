import Logging
import NIOCore
import NIOPosix

/// What a demo server process (`kv`, `search`) does before anything else.
public enum ProcessSetup {
    /// Runs Swift concurrency's global executor on NIO's event loops, so that an HTTP request, the
    /// proxy request it makes and the answer stay on one thread instead of hopping between NIO's
    /// threads and the cooperative pool (the hops dominated proxied requests). Call once, from the
    /// main thread, before the first `await`.
    ///
    /// From then on a task that blocks holds up network I/O: blocking work (loading, indexing,
    /// file listings and deletions, a search) goes through ``runOffPool(_:)``, and the ZooKeeper C
    /// client calls back on its own threads. One exception is deliberate: a search broker searches
    /// the partitions of its own node on the request's task, once the other nodes' requests have
    /// been sent, because the hop to a search thread cost more than a typical search; a long
    /// search holds up its event loop's other connections for as long as it runs.
    public static func runConcurrencyOnEventLoops() {
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    /// Sends every log to standard error at `levelName` (trace … critical) and returns the
    /// process's logger; nil for an unknown level name.
    public static func bootstrapLogging(levelName: String, label: String) -> Logger? {
        guard let level = Logger.Level(rawValue: levelName) else { return nil }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}
