import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Writing files so that what a call returned from survives kill -9 and power loss: every write
/// is synced before the call returns, a replaced file is either wholly old or wholly new, and a
/// directory whose entries changed is synced too. What the demos' stores (search's segments and
/// manifest, replicated's snapshots, logs and votes) are written with.
public enum DurableFile {
    /// A system call failed: what was being done to which file, and the system's reason.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String

        /// `what` (an operation and its file) with the reason in `errno`.
        public init(_ what: String) { description = "\(what): \(String(cString: strerror(errno)))" }
    }

    /// Where ``replace(_:with:)`` writes before renaming: `.<name>.tmp` beside the file (a store
    /// removes such leftovers of a crash when it opens).
    public static func temporaryPath(for path: String) -> String {
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        return folder + "." + name + ".tmp"
    }

    /// Replaces the file at `path` with `bytes`: written to ``temporaryPath(for:)``, synced,
    /// renamed over `path`, and the directory synced.
    public static func replace(_ path: String, with bytes: some ContiguousBytes) throws {
        let temporary = temporaryPath(for: path)
        try write(bytes, to: temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
        guard rename(temporary, path) == 0 else { throw Failure("rename \(temporary)") }
        try syncDirectory(folder(of: path))
    }

    /// Writes `bytes` into the file at `path` at `offset`, in place, and syncs them: one
    /// `fdatasync` where ``replace(_:with:)`` takes two fsyncs (a file it creates has its
    /// directory synced too). Written over blocks the file already has, the sync writes the data
    /// alone, without a journal commit of the file's metadata (which serialises with every other
    /// fsync on the file system). A crash part-way leaves the bytes torn: only for content that
    /// carries its own length and checksum.
    public static func writeInPlace(_ path: String, at offset: Int, _ bytes: some ContiguousBytes) throws {
        var created = false
        var descriptor = open(path, O_WRONLY | O_CLOEXEC)
        if descriptor < 0 && errno == ENOENT {
            descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            created = descriptor >= 0
        }
        guard descriptor >= 0 else { throw Failure("open \(path)") }
        defer { close(descriptor) }
        try writeAll(bytes, to: descriptor, at: offset, path: path)
        guard fdatasync(descriptor) == 0 else { throw Failure("fdatasync \(path)") }
        if created { try syncDirectory(folder(of: path)) }
    }

    /// Appends `bytes` to the file at `path` and, unless `sync` is `false`, syncs it. A file it
    /// creates has its directory synced too. An append that fails part-way is cut off again, so
    /// that the file ends where it ended before (what follows a failed append would otherwise
    /// follow a torn record).
    /// - Parameter sync: `false` for an append that something else keeps until the file is synced
    ///   with ``sync(_:)``.
    public static func append(_ bytes: some ContiguousBytes, to path: String, sync: Bool = true) throws {
        var created = false
        var descriptor = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        if descriptor < 0 && errno == ENOENT {
            descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if descriptor >= 0 { created = true } else if errno == EEXIST { descriptor = open(path, O_WRONLY | O_APPEND | O_CLOEXEC) }
        }
        guard descriptor >= 0 else { throw Failure("open \(path)") }
        defer { close(descriptor) }
        let end = lseek(descriptor, 0, SEEK_END)
        guard end >= 0 else { throw Failure("seek \(path)") }
        do {
            try writeAll(bytes, to: descriptor, path: path)
            guard !sync || fsync(descriptor) == 0 else { throw Failure("fsync \(path)") }
        } catch {
            _ = ftruncate(descriptor, end)
            throw error
        }
        if created { try syncDirectory(folder(of: path)) }
    }

    /// Deletes the file at `path` (nothing to do if it is missing) and syncs the directory.
    public static func remove(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else { throw Failure("unlink \(path)") }
        try syncDirectory(folder(of: path))
    }

    /// Syncs a directory, so that the files created, renamed or deleted in it stay so.
    public static func syncDirectory(_ path: String) throws {
        try sync(path, flags: O_DIRECTORY)
    }

    /// Syncs the file at `path`: what was written to it without a sync stays.
    public static func sync(_ path: String) throws {
        try sync(path, flags: 0)
    }

    private static func sync(_ path: String, flags: Int32) throws {
        let descriptor = open(path, O_RDONLY | flags | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure("open \(path)") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw Failure("fsync \(path)") }
    }

    private static func write(_ bytes: some ContiguousBytes, to path: String, flags: Int32) throws {
        let descriptor = open(path, flags | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Failure("open \(path)") }
        defer { close(descriptor) }
        try writeAll(bytes, to: descriptor, path: path)
        guard fsync(descriptor) == 0 else { throw Failure("fsync \(path)") }
    }

    /// Writes all of `bytes` to an open file, at its position or at `offset` (retrying short and
    /// interrupted writes).
    static func writeAll(_ bytes: some ContiguousBytes, to descriptor: Int32, at offset: Int? = nil, path: String) throws {
        try bytes.withUnsafeBytes { buffer in
            var written = 0
            while written < buffer.count {
                let rest = buffer.baseAddress! + written
                let count =
                    if let offset { pwrite(descriptor, rest, buffer.count - written, off_t(offset + written)) } else { Glibc.write(descriptor, rest, buffer.count - written) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { throw Failure("write \(path)") }
                written += count
            }
        }
    }

    private static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
