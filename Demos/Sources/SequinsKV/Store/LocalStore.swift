import DemoSupport
import Foundation

/// A node's on-disk store (`local_store`): the versions it has built, its self-assigned shard id,
/// and a lock file that keeps a second process off the same store.
///
/// ```
/// <local_store>/sequins.lock                               held with flock while the node runs
/// <local_store>/self_assigned_id                           when shard_id is not configured
/// <local_store>/data/<db>/<version>/partition-00003.records   a PartitionFile, mapped while served
/// <local_store>/data/<db>/<version>/.manifest              JSON, written last: a version without it is incomplete
/// ```
public final class LocalStore: Sendable {
    public let directory: String
    private let lockDescriptor: Int32

    /// Opens (creating if needed) the store and takes its lock.
    /// - Throws: ``StoreError`` when the directory cannot be created or another process holds the lock.
    public init(directory: String) throws(StoreError) {
        guard directory.hasPrefix("/") else { throw StoreError("local_store \(directory) must be an absolute path") }
        self.directory = directory
        do {
            try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        } catch {
            throw StoreError("cannot create local_store \(directory): \(error.localizedDescription)")
        }
        let lockPath = directory + "/sequins.lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StoreError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw StoreError("failed to acquire lock on \(lockPath): another kv process is using local_store \(directory)")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pid.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        lockDescriptor = descriptor
    }

    deinit {
        flock(lockDescriptor, LOCK_UN)
        close(lockDescriptor)
    }

    // MARK: Shard id

    /// The shard id this node chose earlier, if any.
    public func selfAssignedShardID() -> String? {
        guard let data = FileManager.default.contents(atPath: directory + "/self_assigned_id") else { return nil }
        let id = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? nil : id
    }

    public func saveSelfAssignedShardID(_ id: String) throws {
        let path = directory + "/self_assigned_id"
        try Data(id.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        _ = chmod(path, 0o600)
    }

    // MARK: Versions

    /// Where a version's partition files and manifest are.
    public func versionDirectory(database: String, version: String) -> String {
        directory + "/data/" + database + "/" + version
    }

    static func partitionFileName(_ partition: Int) -> String {
        let digits = String(partition)
        return "partition-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits + ".records"
    }

    /// Every complete version on disk, as (database, version).
    public func storedVersions() -> [(database: String, version: String)] {
        var result: [(String, String)] = []
        let data = directory + "/data"
        for database in (try? FileManager.default.contentsOfDirectory(atPath: data))?.sorted() ?? [] {
            for version in (try? FileManager.default.contentsOfDirectory(atPath: data + "/" + database))?.sorted() ?? []
            where FileManager.default.fileExists(atPath: data + "/" + database + "/" + version + "/.manifest") {
                result.append((database, version))
            }
        }
        return result
    }

    /// Every version directory on disk, complete or not (a build cut off by a crash leaves one
    /// without its manifest), as (database, version).
    public func versionDirectories() -> [(database: String, version: String)] {
        var result: [(String, String)] = []
        let data = directory + "/data"
        for database in (try? FileManager.default.contentsOfDirectory(atPath: data))?.sorted() ?? [] where !database.hasPrefix(".") {
            for version in (try? FileManager.default.contentsOfDirectory(atPath: data + "/" + database))?.sorted() ?? [] where !version.hasPrefix(".") {
                result.append((database, version))
            }
        }
        return result
    }

    /// The manifest of a complete version, or nil if the version was never completed here.
    public func manifest(database: String, version: String) -> StoredVersionManifest? {
        let path = versionDirectory(database: database, version: version) + "/.manifest"
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(StoredVersionManifest.self, from: data)
    }

    /// Completes a version on disk.
    public func saveManifest(_ manifest: StoredVersionManifest, database: String, version: String) throws {
        let target = versionDirectory(database: database, version: version)
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(manifest).write(to: URL(fileURLWithPath: target + "/.manifest"), options: .atomic)
    }

    /// Maps the partitions of a complete version, each file's header and page checksums checked
    /// first (its pages are checked as lookups first read them).
    /// - Throws: ``StoreError`` naming the first partition file that is missing, truncated or
    ///   corrupt; the caller deletes the version and builds it again from the source.
    public func openPartitions(database: String, version: String, manifest: StoredVersionManifest) throws -> [Int: PartitionFile] {
        guard manifest.format == StoredVersionManifest.currentFormat else {
            throw StoreError("the stored version has format \(manifest.format), this kv writes \(StoredVersionManifest.currentFormat)")
        }
        let target = versionDirectory(database: database, version: version)
        let partitions = manifest.selectedPartitions
        guard partitions.allSatisfy({ (0..<manifest.numPartitions).contains($0) }), Set(partitions).count == partitions.count else {
            throw StoreError("\(target)/.manifest names partitions outside 0..<\(manifest.numPartitions) or twice")
        }
        let results = ResultSlots<PartitionFile>(count: partitions.count)
        DispatchQueue.concurrentPerform(iterations: partitions.count) { index in
            results.set(index) { try PartitionFile(path: target + "/" + Self.partitionFileName(partitions[index])) }
        }
        var result: [Int: PartitionFile] = [:]
        for (index, partition) in partitions.enumerated() { result[partition] = try results.get(index) }
        return result
    }

    /// Deletes a version's files.
    public func remove(database: String, version: String) {
        try? FileManager.default.removeItem(atPath: versionDirectory(database: database, version: version))
        let databaseDirectory = directory + "/data/" + database
        if (try? FileManager.default.contentsOfDirectory(atPath: databaseDirectory))?.isEmpty == true {
            try? FileManager.default.removeItem(atPath: databaseDirectory)
        }
    }
}

/// What a stored version holds: written last, so its presence means the version is complete.
public struct StoredVersionManifest: Codable, Sendable, Hashable {
    /// 4: ``PartitionFile``s with page checksums, served mapped (versions of earlier formats are
    /// built again from the source).
    public static let currentFormat = 4
    public var format: Int = currentFormat
    public var numPartitions: Int
    public var selectedPartitions: [Int]
    /// When the version was first built here (sequins' `Last-Modified`), seconds since 1970.
    public var createdAt: Double
    public var sourcePath: String

    public init(numPartitions: Int, selectedPartitions: [Int], createdAt: Double, sourcePath: String) {
        self.numPartitions = numPartitions
        self.selectedPartitions = selectedPartitions
        self.createdAt = createdAt
        self.sourcePath = sourcePath
    }

    enum CodingKeys: String, CodingKey {
        case format
        case numPartitions = "num_partitions"
        case selectedPartitions = "selected_partitions"
        case createdAt = "created_at"
        case sourcePath = "source_path"
    }
}

/// A local store that cannot be used.
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
