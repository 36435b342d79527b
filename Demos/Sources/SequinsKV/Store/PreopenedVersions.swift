import DemoSupport
import Synchronization

/// The newest version of each database in the local store, opened (its files' headers and page
/// checksums checked, the files mapped) in the background as the node begins its cluster join's
/// `time_to_converge` wait (at start outside a cluster), so that the reading overlaps the wait
/// instead of following it. Each is taken
/// at most once, by the first look at that version; what nobody took is dropped after the first
/// refresh.
///
/// Only the newest: the source's newest version is the one a node serves, and a store can still
/// hold the version before it (kept until its removal timeout), whose checking would only compete
/// with the join for the disk and the cores. Any other stored version is opened when it is looked at.
final class PreopenedVersions: Sendable {
    private let opening: Mutex<[String: Task<[Int: PartitionFile], any Error>]>

    /// Starts opening the newest complete version of each database in `store` (versions compare
    /// as strings, as the source's do).
    init(store: LocalStore) {
        var newest: [String: String] = [:]
        for (database, version) in store.storedVersions() where newest[database].map({ version > $0 }) ?? true {
            newest[database] = version
        }
        var opening: [String: Task<[Int: PartitionFile], any Error>] = [:]
        for (database, version) in newest {
            guard let manifest = store.manifest(database: database, version: version) else { continue }
            opening[Self.key(database, version)] = Task {
                try await runOffPool { try store.openPartitions(database: database, version: version, manifest: manifest) }
            }
        }
        self.opening = Mutex(opening)
    }

    /// The opening of `version` of `database` started at start-up, if there was one and it was not taken yet.
    func take(database: String, version: String) -> Task<[Int: PartitionFile], any Error>? {
        opening.withLock { $0.removeValue(forKey: Self.key(database, version)) }
    }

    /// Drops what was not taken (its files are unmapped once the opening ends).
    func dropRest() {
        let rest = opening.withLock { opening in
            defer { opening.removeAll() }
            return Array(opening.values)
        }
        for task in rest { task.cancel() }
    }

    private static func key(_ database: String, _ version: String) -> String { database + "/" + version }
}
