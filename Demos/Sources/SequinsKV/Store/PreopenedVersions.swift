import DemoSupport
import Synchronization

/// The versions of the local store, opened (checked against their checksums and mapped) in the
/// background as soon as the node starts, so that the reading overlaps the cluster join (its
/// `time_to_converge` wait) instead of following it. Each is taken at most once, by the first
/// look at that version; what nobody took is dropped after the first refresh.
final class PreopenedVersions: Sendable {
    private let opening: Mutex<[String: Task<[Int: PartitionFile], any Error>]>

    /// Starts opening every complete version of `store`.
    init(store: LocalStore) {
        var opening: [String: Task<[Int: PartitionFile], any Error>] = [:]
        for (database, version) in store.storedVersions() {
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
