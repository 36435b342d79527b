import Foundation

/// Generated sample versions (for the demo, the tests and the benchmarks): `files` Hadoop
/// SequenceFiles of `BytesWritable` records `key-<n>` → `<value prefix><n>@<version>`, padded to
/// `valueSize` bytes, plus `_SUCCESS`. Block-compressed with `GzipCodec` by default, which
/// sequins reads too (it refuses zlib's `DefaultCodec`), so the same files serve on both.
public enum SampleData {
    /// Writes `<root>/<database>/<version>/part-0000N` and `_SUCCESS`.
    /// - Returns: the version's directory.
    @discardableResult
    public static func writeVersion(
        root: String, database: String, version: String, files: Int = 5, records: Int = 1000, valueSize: Int = 0,
        compression: SequenceFileWriter.Compression = .block(.gzip)
    ) throws -> String {
        let directory = root + "/" + database + "/" + version
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let writers = try (0..<files).map { index in
            try SequenceFileWriter(path: directory + "/" + String(format: "part-%05d", index), compression: compression)
        }
        for record in 0..<records {
            try writers[record % files].append(key: Array(key(record).utf8), value: Array(value(record, version: version, size: valueSize).utf8))
        }
        for writer in writers { try writer.finish() }
        _ = FileManager.default.createFile(atPath: directory + "/_SUCCESS", contents: Data())
        return directory
    }

    public static func key(_ record: Int) -> String { "key-\(record)" }

    /// The value of `record`, padded to `size` bytes with letters that depend on the record (so
    /// the files compress like real data, not like a run of one byte).
    public static func value(_ record: Int, version: String, size: Int = 0) -> String {
        let value = "value-\(record)@\(version)"
        guard value.utf8.count < size else { return value }
        var state = UInt64(truncatingIfNeeded: record) &* 0x9e37_79b9_7f4a_7c15 | 1
        var padding = [UInt8](repeating: 0, count: size - value.utf8.count)
        for index in padding.indices {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            padding[index] = UInt8(ascii: "a") + UInt8(state % 26)
        }
        return value + "-" + String(decoding: padding.dropFirst(), as: UTF8.self)
    }
}
