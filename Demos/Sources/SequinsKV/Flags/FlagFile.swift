import Foundation
import Logging
import Synchronization

/// The flag file named by `goforit_flag_json_path`, kept loaded: read at start, read again when
/// it changes (its size, modification time or inode; looked at every ``pollInterval``) and when
/// asked (SIGHUP). A file that is missing or malformed is logged and the last good flags stay (all
/// off if it was never readable), as goforit does.
public final class FlagFile: Sendable {
    public let path: String
    let logger: Logger
    /// How often the file is looked at for a change.
    public static let pollInterval: Duration = .seconds(1)

    private struct State {
        var flags = FeatureFlags()
        /// What the file looked like when last read (nil: not read yet, or missing then).
        var identity: FileIdentity?
        var everRead = false
    }
    private let state = Mutex(State())

    struct FileIdentity: Hashable {
        var size: Int64
        var modified: timespec
        var inode: UInt64

        static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.size == rhs.size && lhs.inode == rhs.inode && lhs.modified.tv_sec == rhs.modified.tv_sec && lhs.modified.tv_nsec == rhs.modified.tv_nsec
        }
        func hash(into hasher: inout Hasher) {
            hasher.combine(size)
            hasher.combine(inode)
        }
    }

    public init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    /// The flags in force.
    public var flags: FeatureFlags { state.withLock { $0.flags } }

    /// Reads the file now (even if it looks unchanged).
    public func reload() {
        load(identity: Self.identity(of: path))
    }

    /// Reloads whenever the file changes, until cancelled.
    public func watch() async throws {
        while true {
            try await Task.sleep(for: Self.pollInterval)
            let identity = Self.identity(of: path)
            if identity != state.withLock({ $0.identity }) { load(identity: identity) }
        }
    }

    private func load(identity: FileIdentity?) {
        do {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw FlagFileError("cannot read \(path)")
            }
            let flags = try FeatureFlags(json: data)
            let changed = state.withLock { state -> Bool in
                defer {
                    state.flags = flags
                    state.identity = identity
                    state.everRead = true
                }
                return state.flags != flags || !state.everRead
            }
            if changed {
                logger.info("read the feature flags", metadata: ["kv.flags": "\(flags.rates.sorted { $0.key < $1.key })", "kv.flag_file": "\(path)"])
            }
        } catch {
            state.withLock { $0.identity = identity }
            logger.warning("[goforit] Error refreshing flags; keeping the last ones", metadata: ["kv.flag_file": "\(path)", "kv.error": "\(error)"])
        }
    }

    static func identity(of path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(size: Int64(info.st_size), modified: info.st_mtim, inode: UInt64(info.st_ino))
    }
}
