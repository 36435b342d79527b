import DemoSupport
import Foundation

/// A segment on disk: its postings as flat little-endian arrays, and its documents (uid, column
/// values, numbers, source) and their lengths, so that a node reopens it by reading arrays back,
/// without parsing JSON or tokenizing. Pure encoding and decoding; a file that is cut short or
/// altered is an error naming the problem, never a crash.
///
/// ```
/// "SSEG" version:u32 base:i32 count:i32 columns:u32 schemaColumns:u32
/// per document: present:u8 [uid, per schema column: n:u32 values…, number?:u8 f64, source]
/// per full-text column: lengths:i32×count, terms:u32 [term, id:i32]…, starts, documents,
///   frequencies, positionStarts, positions (each n:u32 then i32×n)
/// checksum:u64 (``Checksum`` of everything before it)
/// ```
public enum SegmentFile {
    static let magic = Array("SSEG".utf8)
    static let version: UInt32 = 1

    public struct Corrupt: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The file's bytes for `segment` with its documents and lengths (as ``PartitionIndex/contents(of:)`` gives them).
    public static func encode(_ segment: Segment, documents: [SearchDocument?], lengths: [[Int32]], schemaColumns: Int) -> [UInt8] {
        var writer = Writer()
        writer.output.reserveCapacity(encodedSize(segment, documents: documents, schemaColumns: schemaColumns))
        writer.bytes(magic)
        writer.uint32(version)
        writer.int32(segment.base)
        writer.int32(segment.count)
        writer.uint32(UInt32(segment.columns.count))
        writer.uint32(UInt32(schemaColumns))
        for document in documents {
            guard let document else {
                writer.uint8(0)
                continue
            }
            writer.uint8(1)
            writer.string(document.uid)
            for column in 0..<schemaColumns {
                writer.uint32(UInt32(document.values[column].count))
                for value in document.values[column] { writer.string(value) }
                if let number = document.numbers[column] {
                    writer.uint8(1)
                    writer.uint64(number.bitPattern)
                } else {
                    writer.uint8(0)
                }
            }
            writer.string(document.source)
        }
        for (slot, column) in segment.columns.enumerated() {
            writer.int32s(lengths[slot])
            writer.uint32(UInt32(column.terms.count))
            for (term, id) in column.terms {
                writer.string(term)
                writer.int32(id)
            }
            for array in [column.starts, column.documents, column.frequencies, column.positionStarts, column.positions] { writer.int32s(array) }
        }
        writer.uint64(writer.output.withUnsafeBytes { Checksum.fnv1a($0) })
        return writer.output
    }

    /// The size of the file `encode` writes, computed first so that it is written into one
    /// allocation instead of growing copies.
    static func encodedSize(_ segment: Segment, documents: [SearchDocument?], schemaColumns: Int) -> Int {
        var size = 24 + 8  // the header, the checksum
        for document in documents {
            guard let document else {
                size += 1
                continue
            }
            size += 1 + 4 + document.uid.utf8.count + 4 + document.source.utf8.count + schemaColumns * (4 + 1)
            for values in document.values { size += values.reduce(0) { $0 + 4 + $1.utf8.count } }
            size += document.numbers.reduce(0) { $0 + ($1 == nil ? 0 : 8) }
        }
        for column in segment.columns {
            size += 4 + documents.count * 4 + 4 + column.terms.count * 8 + column.terms.keys.reduce(0) { $0 + $1.utf8.count }
            size += 5 * 4 + 4 * (column.starts.count + column.documents.count + column.frequencies.count + column.positionStarts.count + column.positions.count)
        }
        return size
    }

    /// Reads a segment file back.
    /// - Throws: ``Corrupt`` when it is cut short, altered, or not a segment file.
    public static func decode(_ bytes: [UInt8]) throws(Corrupt) -> (segment: Segment, documents: [SearchDocument?], lengths: [[Int32]]) {
        let decoded = bytes.withUnsafeBytes { raw in Result { () throws(Corrupt) in try decode(raw) } }
        return try decoded.get()
    }

    /// Reads a segment file back from its bytes (a mapped file: every array is copied out).
    /// - Throws: ``Corrupt`` when it is cut short, altered, or not a segment file.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(Corrupt) -> (segment: Segment, documents: [SearchDocument?], lengths: [[Int32]]) {
        guard bytes.count >= 8 + 24 else { throw Corrupt(description: "too short to be a segment file") }
        let body = UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - 8)])
        let stored = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt64.self))
        guard Checksum.fnv1a(body) == stored else { throw Corrupt(description: "the checksum does not match (a torn or altered file)") }
        var reader = Reader(bytes: body)
        guard try reader.bytes(4).elementsEqual(magic) else { throw Corrupt(description: "not a segment file") }
        guard try reader.uint32() == version else { throw Corrupt(description: "an unknown segment file version") }
        let base = try reader.int32()
        let count = try reader.int32()
        let columnCount = Int(try reader.uint32())
        let schemaColumns = Int(try reader.uint32())
        guard base >= 0, count >= 0, columnCount <= 1024, schemaColumns <= 1024 else { throw Corrupt(description: "a malformed header") }
        var documents: [SearchDocument?] = []
        documents.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard try reader.uint8() == 1 else {
                documents.append(nil)
                continue
            }
            let uid = try reader.string()
            var values: [[String]] = []
            var numbers: [Double?] = []
            values.reserveCapacity(schemaColumns)
            numbers.reserveCapacity(schemaColumns)
            for _ in 0..<schemaColumns {
                let valueCount = Int(try reader.uint32())
                var columnValues: [String] = []
                columnValues.reserveCapacity(min(valueCount, 64))
                for _ in 0..<valueCount { columnValues.append(try reader.string()) }
                values.append(columnValues)
                numbers.append(try reader.uint8() == 1 ? Double(bitPattern: try reader.uint64()) : nil)
            }
            documents.append(SearchDocument(uid: uid, values: values, numbers: numbers, source: try reader.string()))
        }
        var lengths: [[Int32]] = []
        var columns: [Segment.ColumnPostings] = []
        for _ in 0..<columnCount {
            let columnLengths = try reader.int32s()
            guard columnLengths.count == Int(count) else { throw Corrupt(description: "document lengths do not match the count") }
            lengths.append(columnLengths)
            var column = Segment.ColumnPostings()
            let termCount = Int(try reader.uint32())
            column.terms.reserveCapacity(termCount)
            for _ in 0..<termCount {
                let term = try reader.string()
                column.terms[term] = try reader.int32()
            }
            column.starts = try reader.int32s()
            column.documents = try reader.int32s()
            column.frequencies = try reader.int32s()
            column.positionStarts = try reader.int32s()
            column.positions = try reader.int32s()
            guard Self.isConsistent(column, termCount: termCount, base: base, count: count) else {
                throw Corrupt(description: "the postings are inconsistent")
            }
            columns.append(column)
        }
        guard reader.isAtEnd else { throw Corrupt(description: "bytes after the last column") }
        return (Segment(base: base, count: count, columns: columns), documents, lengths)
    }

    /// Whether every range and id in `column` stays inside its arrays and the segment.
    static func isConsistent(_ column: Segment.ColumnPostings, termCount: Int, base: Int32, count: Int32) -> Bool {
        let postings = column.documents.count
        guard column.starts.count == termCount + 1, Int(column.starts.last ?? -1) == postings else { return false }
        guard column.frequencies.count == postings, column.positionStarts.count == postings else { return false }
        for id in column.terms.values where id < 0 || Int(id) >= termCount { return false }
        for index in 0..<termCount where column.starts[index] < 0 || column.starts[index] > column.starts[index + 1] { return false }
        let positions = column.positions.count
        for index in 0..<postings {
            let start = Int(column.positionStarts[index])
            let frequency = Int(column.frequencies[index])
            if start < 0 || frequency < 0 || start + frequency > positions { return false }
            let document = column.documents[index]
            if document < base || document >= base + count { return false }
        }
        return true
    }

    struct Writer {
        var output: [UInt8] = []

        mutating func bytes(_ bytes: some Collection<UInt8>) { output.append(contentsOf: bytes) }
        mutating func uint8(_ value: UInt8) { output.append(value) }
        mutating func uint32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { output.append(contentsOf: $0) } }
        mutating func int32(_ value: Int32) { withUnsafeBytes(of: value.littleEndian) { output.append(contentsOf: $0) } }
        mutating func uint64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { output.append(contentsOf: $0) } }
        mutating func string(_ text: String) {
            var text = text
            text.withUTF8 { utf8 in
                uint32(UInt32(utf8.count))
                output.append(contentsOf: utf8)
            }
        }
        mutating func int32s(_ values: [Int32]) {
            uint32(UInt32(values.count))
            values.withUnsafeBytes { output.append(contentsOf: $0) }  // little-endian hosts only (x86-64, arm64)
        }

    }

    /// Reads little-endian values from raw bytes, each read checked against the end.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var cursor = 0

        var isAtEnd: Bool { cursor == bytes.count }

        mutating func bytes(_ count: Int) throws(Corrupt) -> UnsafeRawBufferPointer {
            guard count >= 0, count <= bytes.count - cursor else { throw Corrupt(description: "cut short") }
            defer { cursor += count }
            return UnsafeRawBufferPointer(rebasing: bytes[cursor..<(cursor + count)])
        }

        mutating func uint8() throws(Corrupt) -> UInt8 { try bytes(1)[0] }

        mutating func uint32() throws(Corrupt) -> UInt32 { UInt32(littleEndian: try bytes(4).loadUnaligned(as: UInt32.self)) }

        mutating func int32() throws(Corrupt) -> Int32 { Int32(bitPattern: try uint32()) }

        mutating func uint64() throws(Corrupt) -> UInt64 { UInt64(littleEndian: try bytes(8).loadUnaligned(as: UInt64.self)) }

        mutating func string() throws(Corrupt) -> String {
            let length = Int(try uint32())
            return String(decoding: try bytes(length), as: UTF8.self)
        }

        mutating func int32s() throws(Corrupt) -> [Int32] {
            let count = Int(try uint32())
            guard count <= (bytes.count - cursor) / 4 else { throw Corrupt(description: "cut short") }
            let raw = try bytes(count * 4)
            return [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
                if count > 0 { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw) }
                initialized = count
            }
        }
    }
}
