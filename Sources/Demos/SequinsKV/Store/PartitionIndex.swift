/// The records of one partition in one contiguous buffer, with an open-addressing hash index
/// over it: lookups hash and compare the key in place, without allocating.
///
/// The buffer is the on-disk format too: repeated `[key length: u32 BE][value length: u32 BE]
/// [key][value]`. A key stored twice keeps its last value (as a Sparkey log does).
public final class PartitionIndex: Sendable {
    public let records: [UInt8]
    /// Record offset + 1 per slot; 0 is empty. Capacity is a power of two.
    private let slots: [Int]
    public let count: Int

    /// Indexes `records`.
    /// - Throws: ``StoreError`` if the buffer is not a sequence of whole records.
    public init(records: [UInt8]) throws(StoreError) {
        self.records = records
        // Size the table from a quick count of the records, then insert in one pass.
        var recordCount = 0
        var cursor = 0
        while cursor + 8 <= records.count {
            recordCount += 1
            cursor += 8 + Self.readUInt32(records, at: cursor) + Self.readUInt32(records, at: cursor + 4)
        }
        guard cursor == records.count else { throw StoreError("a partition file ends inside a record") }
        var capacity = 16
        while capacity < recordCount * 2 { capacity <<= 1 }
        var slots = [Int](repeating: 0, count: capacity)
        var distinct = 0
        records.withUnsafeBytes { buffer in
            let mask = capacity - 1
            var offset = 0
            while offset < buffer.count {
                let key = Self.key(in: buffer, at: offset)
                let next = offset + 8 + key.count + Self.readUInt32(buffer, at: offset + 4)
                var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
                while true {
                    let occupant = slots[slot]
                    if occupant == 0 {
                        slots[slot] = offset + 1
                        distinct += 1
                        break
                    }
                    let stored = Self.key(in: buffer, at: occupant - 1)
                    if stored.count == key.count && (key.count == 0 || memcmp(stored.baseAddress!, key.baseAddress!, key.count) == 0) {
                        slots[slot] = offset + 1
                        break
                    }
                    slot = (slot + 1) & mask
                }
                offset = next
            }
        }
        self.slots = slots
        count = distinct
    }

    /// Calls `body` with the value of `key` if it is stored, else returns nil.
    public func withValue<R>(for key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        try records.withUnsafeBytes { buffer -> R? in
            let mask = slots.count - 1
            var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
            while true {
                let occupant = slots[slot]
                if occupant == 0 { return nil }
                let offset = occupant - 1
                let storedKey = Self.key(in: buffer, at: offset)
                if storedKey.count == key.count && (key.count == 0 || memcmp(storedKey.baseAddress!, key.baseAddress!, key.count) == 0) {
                    let keyLength = storedKey.count
                    let valueLength = Self.readUInt32(buffer, at: offset + 4)
                    let start = offset + 8 + keyLength
                    return try body(UnsafeRawBufferPointer(rebasing: buffer[start..<(start + valueLength)]))
                }
                slot = (slot + 1) & mask
            }
        }
    }

    /// Appends one record in the buffer format.
    public static func append(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, to records: inout [UInt8]) {
        appendUInt32(key.count, to: &records)
        appendUInt32(value.count, to: &records)
        records.append(contentsOf: key)
        records.append(contentsOf: value)
    }

    @inline(__always)
    private static func appendUInt32(_ value: Int, to records: inout [UInt8]) {
        withUnsafeBytes(of: UInt32(truncatingIfNeeded: value).bigEndian) { records.append(contentsOf: $0) }
    }

    @inline(__always)
    private static func readUInt32(_ bytes: some RandomAccessCollection<UInt8>, at offset: Int) -> Int {
        let start = bytes.index(bytes.startIndex, offsetBy: offset)
        var value = 0
        for index in 0..<4 { value = value << 8 | Int(bytes[bytes.index(start, offsetBy: index)]) }
        return value
    }

    @inline(__always)
    private static func key(in buffer: UnsafeRawBufferPointer, at offset: Int) -> UnsafeRawBufferPointer {
        let length = readUInt32(buffer, at: offset)
        return UnsafeRawBufferPointer(rebasing: buffer[(offset + 8)..<(offset + 8 + length)])
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
