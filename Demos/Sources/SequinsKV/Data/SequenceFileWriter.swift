import CompressNIO
import Foundation
import NIOCore

/// Writes Hadoop SequenceFiles (version 6) the way Hadoop's `SequenceFile.Writer` does, so the
/// demo and the tests can make data that Hadoop could have written: `BytesWritable` or `Text`
/// keys and values; uncompressed, record- or block-compressed with zlib (`DefaultCodec`), gzip
/// (`GzipCodec`) or Snappy (`SnappyCodec`); a sync marker every 2,000 bytes of records, or one per
/// block. sequins reads gzip and Snappy, not zlib.
public final class SequenceFileWriter {
    public enum WritableClass: String, Sendable {
        case bytesWritable = "org.apache.hadoop.io.BytesWritable"
        case text = "org.apache.hadoop.io.Text"
    }

    public enum Codec: String, Sendable {
        case zlib = "org.apache.hadoop.io.compress.DefaultCodec"
        case gzip = "org.apache.hadoop.io.compress.GzipCodec"
        case snappy = "org.apache.hadoop.io.compress.SnappyCodec"
    }

    public enum Compression: Sendable {
        case none
        case record(Codec)
        case block(Codec, blockSize: Int = 1_000_000)
    }

    private let handle: FileHandle
    private let keyClass: WritableClass
    private let valueClass: WritableClass
    private let compression: Compression
    private let sync: [UInt8]
    private var out: [UInt8] = []
    private var bytesWritten = 0
    private var lastSync = 0
    // Block compression: the four buffers of the block being filled.
    private var blockRecords = 0
    private var keyLengths: [UInt8] = []
    private var keys: [UInt8] = []
    private var valueLengths: [UInt8] = []
    private var values: [UInt8] = []
    static let syncInterval = 2000

    /// Creates (or truncates) `path` and writes the header.
    public init(
        path: String, keyClass: WritableClass = .bytesWritable, valueClass: WritableClass = .bytesWritable,
        compression: Compression = .none, metadata: [(String, String)] = []
    ) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw SequenceFileError(.cannotOpen, path: path, "cannot create the file")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        self.keyClass = keyClass
        self.valueClass = valueClass
        self.compression = compression
        var generator = SystemRandomNumberGenerator()
        sync = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        out.append(contentsOf: Array("SEQ".utf8) + [6])
        Self.appendText(keyClass.rawValue, to: &out)
        Self.appendText(valueClass.rawValue, to: &out)
        switch compression {
        case .none:
            out += [0, 0]
        case .record(let codec):
            out += [1, 0]
            Self.appendText(codec.rawValue, to: &out)
        case .block(let codec, _):
            out += [1, 1]
            Self.appendText(codec.rawValue, to: &out)
        }
        Self.appendInt32(Int32(metadata.count), to: &out)
        for (key, value) in metadata {
            Self.appendText(key, to: &out)
            Self.appendText(value, to: &out)
        }
        out += sync
        try flushOutput()
        lastSync = bytesWritten
    }

    /// Appends one record.
    public func append(key: some Collection<UInt8>, value: some Collection<UInt8>) throws {
        let keyBytes = Self.serialize(key, as: keyClass)
        let valueBytes = Self.serialize(value, as: valueClass)
        switch compression {
        case .none, .record:
            var storedValue = valueBytes
            if case .record(let codec) = compression { storedValue = try Self.compress(valueBytes, codec) }
            if bytesWritten + out.count >= lastSync + Self.syncInterval {
                Self.appendInt32(-1, to: &out)
                out += sync
                lastSync = bytesWritten + out.count
            }
            Self.appendInt32(Int32(keyBytes.count + storedValue.count), to: &out)
            Self.appendInt32(Int32(keyBytes.count), to: &out)
            out += keyBytes
            out += storedValue
            if out.count >= 1 << 16 { try flushOutput() }
        case .block(_, let blockSize):
            HadoopVInt.encode(keyBytes.count, into: &keyLengths)
            keys += keyBytes
            HadoopVInt.encode(valueBytes.count, into: &valueLengths)
            values += valueBytes
            blockRecords += 1
            if keys.count + values.count >= blockSize { try writeBlock() }
        }
    }

    /// Writes what is buffered and closes the file.
    public func finish() throws {
        if case .block = compression, blockRecords > 0 { try writeBlock() }
        try flushOutput()
        try handle.close()
    }

    private func writeBlock() throws {
        guard case .block(let codec, _) = compression else { return }
        Self.appendInt32(-1, to: &out)
        out += sync
        HadoopVInt.encode(blockRecords, into: &out)
        for buffer in [keyLengths, keys, valueLengths, values] {
            let compressed = try Self.compress(buffer, codec)
            HadoopVInt.encode(compressed.count, into: &out)
            out += compressed
        }
        blockRecords = 0
        keyLengths.removeAll(keepingCapacity: true)
        keys.removeAll(keepingCapacity: true)
        valueLengths.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        try flushOutput()
    }

    private func flushOutput() throws {
        guard !out.isEmpty else { return }
        try handle.write(contentsOf: out)
        bytesWritten += out.count
        out.removeAll(keepingCapacity: true)
    }

    static func compress(_ bytes: [UInt8], _ codec: Codec) throws -> [UInt8] {
        let algorithm: CompressionAlgorithm
        switch codec {
        case .zlib: algorithm = .zlib()
        case .gzip: algorithm = .gzip()
        case .snappy: return Snappy.compressHadoopBlock(bytes)
        }
        var input = ByteBufferAllocator().buffer(bytes: bytes)
        let compressed = try input.compress(with: algorithm)
        return Array(compressed.readableBytesView)
    }

    static func serialize(_ bytes: some Collection<UInt8>, as writable: WritableClass) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 5)
        switch writable {
        case .bytesWritable: appendInt32(Int32(bytes.count), to: &out)
        case .text: HadoopVInt.encode(bytes.count, into: &out)
        }
        out += bytes
        return out
    }

    static func appendText(_ string: String, to out: inout [UInt8]) {
        HadoopVInt.encode(string.utf8.count, into: &out)
        out += string.utf8
    }

    static func appendInt32(_ value: Int32, to out: inout [UInt8]) {
        let bits = UInt32(bitPattern: value)
        out += [UInt8(bits >> 24), UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 8), UInt8(truncatingIfNeeded: bits)]
    }
}
