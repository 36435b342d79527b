import NIOCore

/// The records of one partition in one contiguous buffer, compact, with an open-addressing hash
/// index over it: lookups hash and compare the key in place, and decode only the value found.
///
/// Two formats:
/// - **build records** (``append(key:value:to:)``), what loading a version produces: repeated
///   `[key length: u32 BE][value length: u32 BE][key][value]`; a key stored twice keeps its last
///   value (as a Sparkey log does).
/// - **stored** (``stored``, the partition file in the local store): `"KVP2"`, a coding byte
///   (0: values as they are; 1: values Huffman-coded with the 256 code lengths that follow, used
///   when that saves a tenth or more), then repeated `[key length][value length][coded length,
///   Huffman only]` (LEB128 varints), the key, the value.
public final class PartitionIndex: Sendable {
    /// The stored format (what the partition file holds).
    public let stored: [UInt8]
    /// Where the records start in ``stored``.
    private let recordsStart: Int
    private let code: HuffmanCode?
    /// Record offset + 1 per slot (0 is empty); a power-of-two count.
    private let slots: Slots
    /// Distinct keys.
    public let count: Int

    private enum Slots: Sendable {
        case narrow([UInt32])
        case wide([Int])

        var count: Int {
            switch self {
            case .narrow(let slots): return slots.count
            case .wide(let slots): return slots.count
            }
        }

        @inline(__always)
        subscript(index: Int) -> Int {
            switch self {
            case .narrow(let slots): return Int(slots[index])
            case .wide(let slots): return slots[index]
            }
        }
    }

    static let magic = Array("KVP2".utf8)

    /// Encodes build records into the stored format and indexes them.
    /// - Throws: ``StoreError`` if the buffer is not a sequence of whole records.
    public convenience init(records: [UInt8]) throws(StoreError) {
        try self.init(stored: Self.encode(records))
    }

    /// Indexes a stored partition (a partition file).
    /// - Throws: ``StoreError`` naming what is wrong with it.
    public init(stored: [UInt8]) throws(StoreError) {
        guard stored.count >= 5, Array(stored[0..<4]) == Self.magic else {
            throw StoreError("a partition file does not start with KVP2 (written by an older kv: it is loaded again)")
        }
        var cursor = 5
        switch stored[4] {
        case 0:
            code = nil
        case 1:
            guard stored.count >= cursor + 256, let code = HuffmanCode(lengths: Array(stored[cursor..<(cursor + 256)])) else {
                throw StoreError("a partition file's value code is malformed")
            }
            self.code = code
            cursor += 256
        default:
            throw StoreError("a partition file names an unknown value coding \(stored[4])")
        }
        recordsStart = cursor
        self.stored = stored
        let coded = code != nil
        // Size the table from a count of the records, then insert in one pass.
        var offsets: [Int] = []
        let valid = stored.withUnsafeBytes { buffer -> Bool in
            while cursor < buffer.count {
                offsets.append(cursor)
                guard let record = Self.record(in: buffer, at: cursor, coded: coded) else { return false }
                cursor = record.end
            }
            return true
        }
        guard valid else { throw StoreError("a partition file ends inside a record") }
        var capacity = 16
        while capacity < offsets.count * 2 { capacity <<= 1 }
        let mask = capacity - 1
        var table = [Int](repeating: 0, count: capacity)
        var distinct = 0
        stored.withUnsafeBytes { buffer in
            for offset in offsets {
                let key = Self.record(in: buffer, at: offset, coded: coded)!.key
                var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
                while true {
                    let occupant = table[slot]
                    if occupant == 0 {
                        table[slot] = offset + 1
                        distinct += 1
                        break
                    }
                    if Self.equal(Self.record(in: buffer, at: occupant - 1, coded: coded)!.key, key) {
                        table[slot] = offset + 1
                        break
                    }
                    slot = (slot + 1) & mask
                }
            }
        }
        slots = stored.count < Int(UInt32.max) ? .narrow(table.map { UInt32(truncatingIfNeeded: $0) }) : .wide(table)
        count = distinct
    }

    /// One record's parts within the stored buffer.
    private struct Record {
        var key: UnsafeRawBufferPointer
        var valueLength: Int
        var value: UnsafeRawBufferPointer
        var end: Int
    }

    @inline(__always)
    private static func record(in buffer: UnsafeRawBufferPointer, at offset: Int, coded: Bool) -> Record? {
        var cursor = offset
        guard let keyLength = readVarint(buffer, at: &cursor), let valueLength = readVarint(buffer, at: &cursor) else { return nil }
        var storedValueLength = valueLength
        if coded {
            guard let codedLength = readVarint(buffer, at: &cursor) else { return nil }
            storedValueLength = codedLength
        }
        guard keyLength <= buffer.count - cursor, storedValueLength <= buffer.count - cursor - keyLength else { return nil }
        let key = UnsafeRawBufferPointer(rebasing: buffer[cursor..<(cursor + keyLength)])
        let value = UnsafeRawBufferPointer(rebasing: buffer[(cursor + keyLength)..<(cursor + keyLength + storedValueLength)])
        return Record(key: key, valueLength: valueLength, value: value, end: cursor + keyLength + storedValueLength)
    }

    /// The record of `key`, if stored.
    @inline(__always)
    private func find<R>(_ key: UnsafeRawBufferPointer, _ body: (Record) throws -> R) rethrows -> R? {
        try stored.withUnsafeBytes { buffer -> R? in
            let coded = code != nil
            let mask = slots.count - 1
            var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
            while true {
                let occupant = slots[slot]
                if occupant == 0 { return nil }
                let record = Self.record(in: buffer, at: occupant - 1, coded: coded)!
                if Self.equal(record.key, key) { return try body(record) }
                slot = (slot + 1) & mask
            }
        }
    }

    /// Calls `body` with the value of `key` if it is stored, else returns nil.
    public func withValue<R>(for key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        try find(key) { record -> R in
            guard let code else { return try body(record.value) }
            let decoded = [UInt8](unsafeUninitializedCapacity: record.valueLength) { output, initialized in
                _ = code.decode(record.value, count: record.valueLength, into: UnsafeMutableRawBufferPointer(output))
                initialized = record.valueLength
            }
            return try decoded.withUnsafeBytes(body)
        }
    }

    /// The value of `key` in a new buffer (decoded straight into it), or nil when it is not stored.
    public func value(for key: UnsafeRawBufferPointer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        find(key) { record -> ByteBuffer in
            var buffer = allocator.buffer(capacity: record.valueLength)
            if let code {
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: record.valueLength) { output in
                    _ = code.decode(record.value, count: record.valueLength, into: output)
                    return record.valueLength
                }
            } else {
                buffer.writeBytes(record.value)
            }
            return buffer
        }
    }

    /// Appends one record in the build format.
    public static func append(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, to records: inout [UInt8]) {
        appendUInt32(key.count, to: &records)
        appendUInt32(value.count, to: &records)
        records.append(contentsOf: key)
        records.append(contentsOf: value)
    }

    /// The stored format of build records: values Huffman-coded when that saves a tenth or more.
    static func encode(_ records: [UInt8]) throws(StoreError) -> [UInt8] {
        let encoded = records.withUnsafeBytes { (buffer) -> [UInt8]? in
            var frequencies = [Int](repeating: 0, count: 256)
            var valueBytes = 0
            var cursor = 0
            while cursor + 8 <= buffer.count {
                let keyLength = readUInt32(buffer, at: cursor)
                let valueLength = readUInt32(buffer, at: cursor + 4)
                let start = cursor + 8 + keyLength
                guard start + valueLength <= buffer.count else { break }
                for byte in UnsafeRawBufferPointer(rebasing: buffer[start..<(start + valueLength)]) { frequencies[Int(byte)] += 1 }
                valueBytes += valueLength
                cursor = start + valueLength
            }
            guard cursor == buffer.count else { return nil }
            let code = HuffmanCode(frequencies: frequencies)
            let worthIt = valueBytes > 0 && code.encodedSize(frequencies) * 10 <= valueBytes * 9
            var output = magic + [worthIt ? 1 : 0]
            output.reserveCapacity(records.count)
            if worthIt { output += code.lengths }
            var coded: [UInt8] = []
            cursor = 0
            while cursor < buffer.count {
                let keyLength = readUInt32(buffer, at: cursor)
                let valueLength = readUInt32(buffer, at: cursor + 4)
                let key = UnsafeRawBufferPointer(rebasing: buffer[(cursor + 8)..<(cursor + 8 + keyLength)])
                let value = UnsafeRawBufferPointer(rebasing: buffer[(cursor + 8 + keyLength)..<(cursor + 8 + keyLength + valueLength)])
                appendVarint(keyLength, to: &output)
                appendVarint(valueLength, to: &output)
                if worthIt {
                    coded.removeAll(keepingCapacity: true)
                    code.encode(value, appendingTo: &coded)
                    appendVarint(coded.count, to: &output)
                    output.append(contentsOf: key)
                    output += coded
                } else {
                    output.append(contentsOf: key)
                    output.append(contentsOf: value)
                }
                cursor += 8 + keyLength + valueLength
            }
            return output
        }
        guard let encoded else { throw StoreError("a partition's records end inside a record") }
        return encoded
    }

    @inline(__always)
    private static func equal(_ stored: UnsafeRawBufferPointer, _ key: UnsafeRawBufferPointer) -> Bool {
        stored.count == key.count && (key.count == 0 || memcmp(stored.baseAddress!, key.baseAddress!, key.count) == 0)
    }

    @inline(__always)
    private static func appendUInt32(_ value: Int, to records: inout [UInt8]) {
        withUnsafeBytes(of: UInt32(truncatingIfNeeded: value).bigEndian) { records.append(contentsOf: $0) }
    }

    @inline(__always)
    private static func readUInt32(_ buffer: UnsafeRawBufferPointer, at offset: Int) -> Int {
        Int(buffer[offset]) << 24 | Int(buffer[offset + 1]) << 16 | Int(buffer[offset + 2]) << 8 | Int(buffer[offset + 3])
    }

    static func appendVarint(_ value: Int, to output: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            output.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        output.append(UInt8(value))
    }

    @inline(__always)
    private static func readVarint(_ buffer: UnsafeRawBufferPointer, at cursor: inout Int) -> Int? {
        var value = 0
        var shift = 0
        while cursor < buffer.count, shift < 63 {
            let byte = buffer[cursor]
            cursor += 1
            value |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }

    /// FNV-1a, 64-bit, with a final mix so the low bits used for the slot are well spread.
    @inline(__always)
    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        hash ^= hash >> 32
        return hash &* 0x9e37_79b9_7f4a_7c15
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
