import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A whole file at once: read into one array (no intermediate copy), mapped read-only for the
/// time of a closure (no copy at all, for files read once, such as index segments at start), or
/// written from one buffer.
public enum WholeFile {
    /// The file's bytes, or nil when it cannot be opened or read to the end.
    public static func read(_ path: String) -> [UInt8]? {
        withOpened(path) { descriptor, size -> [UInt8]? in
            var complete = true
            let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
                var done = 0
                while done < size {
                    let count = Glibc.read(descriptor, buffer.baseAddress! + done, size - done)
                    if count <= 0 {
                        complete = false
                        break
                    }
                    done += count
                }
                initialized = done
            }
            return complete ? bytes : nil
        } ?? nil
    }

    /// Maps the file read-only and gives `body` its bytes (valid only inside `body`); nil when
    /// the file cannot be opened or mapped.
    public static func withMapped<T>(_ path: String, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T? {
        try withOpened(path) { descriptor, size -> T? in
            if size == 0 { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
            guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else { return nil }
            defer { munmap(address, size) }
            _ = madvise(address, size, MADV_SEQUENTIAL)
            return try body(UnsafeRawBufferPointer(start: address, count: size))
        } ?? nil
    }

    /// Creates (or truncates) the file at `path` with `bytes`, unsynced: for files that can be
    /// rebuilt (``DurableFile`` is for those that must survive a crash).
    /// - Throws: ``DurableFile/Failure`` naming the file and the system's reason.
    public static func write(_ bytes: some ContiguousBytes, to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw DurableFile.Failure("create \(path)") }
        defer { close(descriptor) }
        try DurableFile.writeAll(bytes, to: descriptor, path: path)
    }

    /// `body` with the file open for reading and its size; nil when it cannot be opened.
    private static func withOpened<T>(_ path: String, _ body: (Int32, Int) throws -> T) rethrows -> T? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        return try body(descriptor, Int(info.st_size))
    }
}
