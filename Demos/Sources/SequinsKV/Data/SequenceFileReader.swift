import CompressNIO
import Foundation
import NIOCore

/// Reads Hadoop SequenceFiles as Hadoop writes them (versions 4 to 6): uncompressed,
/// record-compressed and block-compressed, with `DefaultCodec` (zlib), `GzipCodec` or `SnappyCodec`.
///
/// `BytesWritable` and `Text` keys and values are unwrapped to their raw bytes (sequins'
/// `unwrapKeyValue`); any other `Writable` is passed on as its serialised bytes.
///
/// The file is read in chunks; records are handed to a closure as buffers that are valid only
/// during the call, so reading does not allocate per record.
public struct SequenceFileReader {
    public let path: String
    public let header: Header
    private let input: ChunkedFileInput
    private var decompressor: SequenceFileDecompressor?

    /// The header fields that matter to a reader.
    public struct Header: Sendable, Hashable {
        public var version: UInt8
        public var keyClass: String
        public var valueClass: String
        public var compression: Compression
        public var codecClass: String?
        public var metadata: [String: String]
        public var sync: [UInt8]
    }

    public enum Compression: Sendable, Hashable {
        case none, record, block
    }

    /// Opens `path` and reads its header.
    /// - Throws: ``SequenceFileError`` for a file that is not a SequenceFile, a version this
    ///   reader does not know, or a codec other than zlib (`DefaultCodec`), gzip (`GzipCodec`) or
    ///   Snappy (`SnappyCodec`).
    public init(path: String) throws(SequenceFileError) {
        self.path = path
        let input = try ChunkedFileInput(path: path)
        header = try Self.readHeader(input, path: path)
        self.input = input
        if header.compression != .none {
            decompressor = try SequenceFileDecompressor(codecClass: header.codecClass ?? Self.defaultCodec, path: path)
        }
    }

    static let defaultCodec = "org.apache.hadoop.io.compress.DefaultCodec"

    /// Calls `body` with every record's key and value (unwrapped), in file order. Return `false`
    /// from `body` to stop early.
    /// - Throws: ``SequenceFileError`` for a corrupt or truncated file.
    public mutating func forEachRecord(
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        let keyUnwrap = Unwrap(className: header.keyClass)
        let valueUnwrap = Unwrap(className: header.valueClass)
        switch header.compression {
        case .none, .record:
            try forEachRecordUnblocked(keyUnwrap: keyUnwrap, valueUnwrap: valueUnwrap, body)
        case .block:
            try forEachRecordInBlocks(keyUnwrap: keyUnwrap, valueUnwrap: valueUnwrap, body)
        }
    }

    private mutating func forEachRecordUnblocked(
        keyUnwrap: Unwrap, valueUnwrap: Unwrap, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        let recordCompressed = header.compression == .record
        while try input.hasMoreBytes() {
            let recordLength = try input.readInt32()
            if recordLength == -1 {
                try checkSync()
                continue
            }
            let keyLength = try input.readInt32()
            guard recordLength >= 0, keyLength >= 0, keyLength <= recordLength else {
                throw SequenceFileError(.corrupt, path: path, "record length \(recordLength), key length \(keyLength)")
            }
            let record = try input.read(Int(recordLength))
            let key = UnsafeRawBufferPointer(rebasing: record[..<Int(keyLength)])
            let rawValue = UnsafeRawBufferPointer(rebasing: record[Int(keyLength)...])
            let keep: Bool
            if recordCompressed {
                let value = try decompressor!.decompress(rawValue, path: path)
                keep = try value.withUnsafeReadableBytes { value in
                    try body(try keyUnwrap.apply(key, path: path), try valueUnwrap.apply(value, path: path))
                }
            } else {
                keep = try body(try keyUnwrap.apply(key, path: path), try valueUnwrap.apply(rawValue, path: path))
            }
            if !keep { return }
        }
    }

    private mutating func forEachRecordInBlocks(
        keyUnwrap: Unwrap, valueUnwrap: Unwrap, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        while try input.hasMoreBytes() {
            guard try input.readInt32() == -1 else {
                throw SequenceFileError(.corrupt, path: path, "a block does not start with a sync marker")
            }
            try checkSync()
            let count = try input.readVInt()
            guard count >= 0 else { throw SequenceFileError(.corrupt, path: path, "negative record count \(count)") }
            var keyLengths = try readCompressedBuffer()
            var keys = try readCompressedBuffer()
            var valueLengths = try readCompressedBuffer()
            var values = try readCompressedBuffer()
            for _ in 0..<count {
                guard let keyLength = keyLengths.readHadoopVInt(), let valueLength = valueLengths.readHadoopVInt(),
                    keyLength >= 0, valueLength >= 0,
                    keys.readableBytes >= keyLength, values.readableBytes >= valueLength
                else { throw SequenceFileError(.corrupt, path: path, "a block's lengths do not match its data") }
                let keep = try keys.withUnsafeReadableBytes { keyBytes in
                    try values.withUnsafeReadableBytes { valueBytes in
                        try body(
                            try keyUnwrap.apply(UnsafeRawBufferPointer(rebasing: keyBytes[..<keyLength]), path: path),
                            try valueUnwrap.apply(UnsafeRawBufferPointer(rebasing: valueBytes[..<valueLength]), path: path))
                    }
                }
                keys.moveReaderIndex(forwardBy: keyLength)
                values.moveReaderIndex(forwardBy: valueLength)
                if !keep { return }
            }
        }
    }

    private mutating func readCompressedBuffer() throws -> ByteBuffer {
        let length = try input.readVInt()
        guard length >= 0 else { throw SequenceFileError(.corrupt, path: path, "negative buffer length \(length)") }
        let compressed = try input.read(length)
        return try decompressor!.decompress(compressed, path: path)
    }

    private mutating func checkSync() throws {
        let marker = try input.read(16)
        guard marker.elementsEqual(header.sync) else {
            throw SequenceFileError(.corrupt, path: path, "sync marker does not match the header's")
        }
    }

    private static func readHeader(_ input: ChunkedFileInput, path: String) throws(SequenceFileError) -> Header {
        do {
            let magic = try input.read(3)
            guard magic.elementsEqual("SEQ".utf8) else {
                throw SequenceFileError(.notASequenceFile, path: path, "the file does not start with SEQ")
            }
            let version = try input.read(1)[0]
            guard (4...6).contains(version) else {
                throw SequenceFileError(.unsupportedVersion, path: path, "SequenceFile version \(version) (supported: 4 to 6)")
            }
            let keyClass = try input.readText()
            let valueClass = try input.readText()
            let compressed = try input.read(1)[0] != 0
            let blockCompressed = try input.read(1)[0] != 0
            var codecClass: String?
            if compressed {
                codecClass = version >= 5 ? try input.readText() : defaultCodec
            }
            var metadata: [String: String] = [:]
            if version >= 6 {
                let count = try input.readInt32()
                guard count >= 0 else { throw SequenceFileError(.corrupt, path: path, "negative metadata count") }
                for _ in 0..<count {
                    let key = try input.readText()
                    metadata[key] = try input.readText()
                }
            }
            let sync = Array(try input.read(16))
            let compression: Compression = !compressed ? .none : (blockCompressed ? .block : .record)
            return Header(
                version: version, keyClass: keyClass, valueClass: valueClass, compression: compression, codecClass: codecClass,
                metadata: metadata, sync: sync)
        } catch let error as SequenceFileError {
            throw error
        } catch {
            throw SequenceFileError(.corrupt, path: path, "\(error)")
        }
    }

    /// How a Writable's serialised bytes become the stored bytes.
    enum Unwrap {
        case bytesWritable, text, raw

        init(className: String) {
            switch className {
            case "org.apache.hadoop.io.BytesWritable": self = .bytesWritable
            case "org.apache.hadoop.io.Text": self = .text
            default: self = .raw
            }
        }

        func apply(_ bytes: UnsafeRawBufferPointer, path: String) throws -> UnsafeRawBufferPointer {
            switch self {
            case .raw:
                return bytes
            case .bytesWritable:
                guard bytes.count >= 4 else { throw SequenceFileError(.corrupt, path: path, "a BytesWritable shorter than its length") }
                let length = Int(UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3]))
                guard length <= bytes.count - 4 else { throw SequenceFileError(.corrupt, path: path, "a BytesWritable longer than its record") }
                return UnsafeRawBufferPointer(rebasing: bytes[4..<(4 + length)])
            case .text:
                var cursor = 0
                guard let length = HadoopVInt.decode(bytes, at: &cursor), length >= 0, length <= bytes.count - cursor else {
                    throw SequenceFileError(.corrupt, path: path, "a Text with a bad length")
                }
                return UnsafeRawBufferPointer(rebasing: bytes[cursor..<(cursor + length)])
            }
        }
    }
}

/// Why a SequenceFile cannot be read.
public struct SequenceFileError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case cannotOpen, notASequenceFile, unsupportedVersion, unsupportedCodec, corrupt, truncated
    }
    public var code: Code
    public var path: String
    public var detail: String

    public init(_ code: Code, path: String, _ detail: String) {
        self.code = code
        self.path = path
        self.detail = detail
    }

    public var description: String { "\(path): \(code.rawValue): \(detail)" }
}

/// The decompressor of a compressed SequenceFile: zlib (`DefaultCodec`), gzip (`GzipCodec`) or
/// Snappy (`SnappyCodec`, in Hadoop's block framing).
struct SequenceFileDecompressor {
    /// nil for Snappy.
    let decompressor: NIODecompressor?
    let allocator = ByteBufferAllocator()

    static let supported = [
        "org.apache.hadoop.io.compress.DefaultCodec", "org.apache.hadoop.io.compress.GzipCodec", "org.apache.hadoop.io.compress.SnappyCodec",
    ]

    init(codecClass: String, path: String) throws(SequenceFileError) {
        switch codecClass {
        case "org.apache.hadoop.io.compress.DefaultCodec", "org.apache.hadoop.io.compress.DeflateCodec":
            decompressor = CompressionAlgorithm.zlib().decompressor
        case "org.apache.hadoop.io.compress.GzipCodec":
            decompressor = CompressionAlgorithm.gzip().decompressor
        case "org.apache.hadoop.io.compress.SnappyCodec":
            decompressor = nil
        default:
            throw SequenceFileError(
                .unsupportedCodec, path: path,
                "compression codec \(codecClass) is not supported (supported: \(Self.supported.joined(separator: ", ")))")
        }
    }

    static let maxDecompressedBlock = 1 << 30

    func decompress(_ bytes: UnsafeRawBufferPointer, path: String) throws -> ByteBuffer {
        guard let decompressor else {
            do {
                return ByteBuffer(bytes: try Snappy.decompressHadoopBlocks(bytes))
            } catch {
                throw SequenceFileError(.corrupt, path: path, "cannot decompress Snappy: \(error)")
            }
        }
        var input = allocator.buffer(bytes: bytes)
        do {
            try decompressor.startStream()
            defer { try? decompressor.finishStream() }
            // Hadoop writes blocks of about a megabyte; a block inflating past a gigabyte is
            // refused rather than allowed to take the machine's memory.
            return try input.decompressStream(with: decompressor, maxSize: Self.maxDecompressedBlock, allocator: allocator)
        } catch {
            throw SequenceFileError(.corrupt, path: path, "cannot decompress: \(error)")
        }
    }
}

/// Hadoop's variable-length integers (`WritableUtils.readVLong`).
enum HadoopVInt {
    static func decode(_ bytes: UnsafeRawBufferPointer, at cursor: inout Int) -> Int? {
        guard cursor < bytes.count else { return nil }
        let first = Int8(bitPattern: bytes[cursor])
        cursor += 1
        if first >= -112 { return Int(first) }
        let negative = first < -120
        let length = negative ? -119 - Int(first) : -111 - Int(first)
        let extra = length - 1
        guard extra <= 8, cursor + extra <= bytes.count else { return nil }
        var value: UInt64 = 0
        for _ in 0..<extra {
            value = value << 8 | UInt64(bytes[cursor])
            cursor += 1
        }
        let signed = Int64(bitPattern: value)
        return Int(negative ? ~signed : signed)
    }

    /// Appends `value` in Hadoop's encoding (`WritableUtils.writeVLong`).
    static func encode(_ value: Int, into out: inout [UInt8]) {
        var value = Int64(value)
        if value >= -112 && value <= 127 {
            out.append(UInt8(bitPattern: Int8(value)))
            return
        }
        var length: Int64 = -112
        if value < 0 {
            value = ~value
            length = -120
        }
        var temp = value
        while temp != 0 {
            temp >>= 8
            length -= 1
        }
        out.append(UInt8(bitPattern: Int8(length)))
        let byteCount = length < -120 ? -(length + 120) : -(length + 112)
        for index in stride(from: byteCount - 1, through: 0, by: -1) {
            out.append(UInt8(truncatingIfNeeded: value >> (index * 8)))
        }
    }
}

extension ByteBuffer {
    mutating func readHadoopVInt() -> Int? {
        let (value, consumed): (Int?, Int) = withUnsafeReadableBytes { bytes in
            var cursor = 0
            let value = HadoopVInt.decode(bytes, at: &cursor)
            return (value, cursor)
        }
        if value != nil { moveReaderIndex(forwardBy: consumed) }
        return value
    }
}

/// A file read through a reusable buffer: `read(n)` returns the next `n` bytes, valid until the
/// next read.
final class ChunkedFileInput {
    let path: String
    private let descriptor: Int32
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    private var endOfFile = false
    /// The file offset of the buffer's first byte.
    private var offset = 0
    /// The file's size when opened: a length field asking for more than is left is refused
    /// before anything is allocated for it.
    private let fileSize: Int
    static let chunkSize = 1 << 20

    init(path: String) throws(SequenceFileError) {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw SequenceFileError(.cannotOpen, path: path, String(cString: strerror(errno)))
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw SequenceFileError(.cannotOpen, path: path, reason)
        }
        fileSize = Int(status.st_size)
        buffer = .allocate(byteCount: Self.chunkSize, alignment: 8)
    }

    deinit {
        close(descriptor)
        buffer.deallocate()
    }

    /// Makes `count` bytes available from `start`, or fewer at the end of the file.
    private func fill(_ count: Int) throws {
        if end - start >= count || endOfFile { return }
        if start > 0 {
            if end > start { buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: end - start) }
            end -= start
            offset += start
            start = 0
        }
        if count > buffer.count {
            let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, buffer.count * 2), alignment: 8)
            if end > 0 { bigger.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: end) }
            buffer.deallocate()
            buffer = bigger
        }
        while end < count {
            let got = Foundation.read(descriptor, buffer.baseAddress! + end, buffer.count - end)
            if got < 0 {
                if errno == EINTR { continue }
                throw SequenceFileError(.corrupt, path: path, "read failed: \(String(cString: strerror(errno)))")
            }
            if got == 0 {
                endOfFile = true
                return
            }
            end += got
        }
    }

    func hasMoreBytes() throws -> Bool {
        try fill(1)
        return end > start
    }

    func read(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= fileSize - (offset + start) else {
            throw SequenceFileError(.truncated, path: path, "a length of \(count) bytes runs past the end of the file (\(fileSize - (offset + start)) left)")
        }
        try fill(count)
        guard end - start >= count else {
            throw SequenceFileError(.truncated, path: path, "the file ends in the middle of a record")
        }
        defer { start += count }
        return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[start..<(start + count)])
    }

    func readInt32() throws -> Int32 {
        let bytes = try read(4)
        return Int32(bitPattern: UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3]))
    }

    func readVInt() throws -> Int {
        try fill(9)
        var cursor = 0
        let available = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[start..<end])
        guard let value = HadoopVInt.decode(available, at: &cursor) else {
            throw SequenceFileError(.truncated, path: path, "the file ends in the middle of a number")
        }
        start += cursor
        return value
    }

    func readText() throws -> String {
        let length = try readVInt()
        guard length >= 0 else { throw SequenceFileError(.corrupt, path: path, "negative string length") }
        return String(decoding: try read(length), as: UTF8.self)
    }
}
