import Foundation

/// A node's indexes on disk under `sensei.index.directory`: per partition, the documents it
/// indexed (`partition-<n>/documents.jsonl`, appended in order; a later line with the same uid
/// replaces an earlier one), and the gateway position the node has consumed (`gateway.position`,
/// written after the documents, atomically). A restarted node loads its partitions from here and
/// resumes the gateway after the last line it consumed: nothing is read from the gateway twice.
public final class PartitionStore: @unchecked Sendable {
    public let directory: String
    private var writers: [Int: FileHandle] = [:]
    private let lock = NSLock()

    public init(directory: String, partitions: [Int]) throws {
        self.directory = directory
        for partition in partitions {
            let folder = directory + "/partition-\(partition)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let file = folder + "/documents.jsonl"
            if !FileManager.default.fileExists(atPath: file) { _ = FileManager.default.createFile(atPath: file, contents: nil) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
            try handle.seekToEnd()
            writers[partition] = handle
        }
    }

    deinit {
        for handle in writers.values { try? handle.close() }
    }

    public var positionFile: String { directory + "/gateway.position" }

    /// The gateway position consumed so far (the start for a new store).
    public func position() -> FileGateway.Position {
        guard let data = FileManager.default.contents(atPath: positionFile),
            let position = try? JSONDecoder().decode(FileGateway.Position.self, from: data)
        else { return FileGateway.Position() }
        return position
    }

    /// Appends a batch of accepted documents (partition → source lines), flushes them, then
    /// records `position` as consumed.
    public func append(_ documents: [Int: [String]], consumedUpTo position: FileGateway.Position) throws {
        try lock.withLock {
            for (partition, lines) in documents where !lines.isEmpty {
                guard let writer = writers[partition] else { continue }
                try writer.write(contentsOf: Data(lines.map { $0 + "\n" }.joined().utf8))
                try writer.synchronize()
            }
            let data = try JSONEncoder().encode(position)
            try data.write(to: URL(fileURLWithPath: positionFile), options: .atomic)
        }
    }

    /// Every stored document line of `partition`, in the order they were indexed.
    public func documents(partition: Int) throws -> [String] {
        let file = directory + "/partition-\(partition)/documents.jsonl"
        guard let data = FileManager.default.contents(atPath: file) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }
}
