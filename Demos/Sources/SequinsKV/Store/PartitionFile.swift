import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One partition of a version, served from its file in the local store through a read-only
/// mapping: the kernel keeps in its page cache what fits and reads the rest from disk, so a node
/// can hold more data than it has memory, and its private memory does not grow with the data.
///
/// The file (written by ``PartitionFileWriter``), little-endian:
///
/// ```
/// 0    "KVP3"  u32 0
/// 8    u64 distinct keys          16  u64 end of the records
/// 24   u64 offset of the table    32  u64 slots in the table (a power of two)
/// 40   u64 file size              48  u64 checksum of bytes 64 to the end
/// 56   u64 checksum of bytes 0 to 56
/// 64   records: [key length: varint][value length: varint][key][value] ...
///      (zero padding to a multiple of 8)
/// table: one u64 per slot: 0 when empty, else the key hash's top 24 bits << 40 | (record offset + 1)
/// ```
///
/// A lookup hashes the key, probes the table linearly and compares a record's key only when the
/// slot's 24 hash bits match: about one read of the table and one of the record per lookup.
public final class PartitionFile: @unchecked Sendable {
    /// The file.
    public let path: String
    /// Distinct keys.
    public let count: Int
    /// The file's size in bytes.
    public let size: Int
    private let base: UnsafeRawPointer
    private let recordsEnd: Int
    private let slots: UnsafePointer<UInt64>
    private let mask: Int

    static let magic: [UInt8] = Array("KVP3".utf8)
    static let headerSize = 64
    static let offsetBits: UInt64 = 40
    static let offsetMask: UInt64 = (1 << offsetBits) - 1

    /// The header's fields.
    struct Header: Equatable {
        var count: Int
        var recordsEnd: Int
        var tableOffset: Int
        var slotCount: Int
        var fileSize: Int
        var bodyChecksum: UInt64

        /// The 64 bytes, with the header's own checksum.
        var encoded: [UInt8] {
            var bytes = PartitionFile.magic + [0, 0, 0, 0]
            for field in [UInt64(count), UInt64(recordsEnd), UInt64(tableOffset), UInt64(slotCount), UInt64(fileSize), bodyChecksum] {
                withUnsafeBytes(of: field.littleEndian) { bytes += $0 }
            }
            let checksum = bytes.withUnsafeBytes { FileChecksum.of($0) }
            withUnsafeBytes(of: checksum.littleEndian) { bytes += $0 }
            return bytes
        }

        init(count: Int, recordsEnd: Int, tableOffset: Int, slotCount: Int, fileSize: Int, bodyChecksum: UInt64) {
            self.count = count
            self.recordsEnd = recordsEnd
            self.tableOffset = tableOffset
            self.slotCount = slotCount
            self.fileSize = fileSize
            self.bodyChecksum = bodyChecksum
        }

        /// Reads and checks a header against the size of its file.
        /// - Throws: ``StoreError`` saying what is wrong, without the file's name.
        init(decoding bytes: [UInt8], fileSize actualSize: Int) throws(StoreError) {
            guard bytes.count >= PartitionFile.headerSize, Array(bytes[0..<4]) == PartitionFile.magic else {
                throw StoreError("not a partition file of this kv (it does not start with KVP3)")
            }
            func field(_ offset: Int) -> UInt64 {
                bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
            }
            guard bytes.withUnsafeBytes({ FileChecksum.of(UnsafeRawBufferPointer(rebasing: $0[0..<56])) }) == field(56) else {
                throw StoreError("corrupt: its header does not match the header's checksum")
            }
            let fields = [8, 16, 24, 32, 40].map { field($0) }
            guard fields.allSatisfy({ $0 < UInt64(Int.max) }) else { throw StoreError("corrupt: its header holds impossible sizes") }
            count = Int(fields[0])
            recordsEnd = Int(fields[1])
            tableOffset = Int(fields[2])
            slotCount = Int(fields[3])
            fileSize = Int(fields[4])
            bodyChecksum = field(48)
            guard fileSize == actualSize else {
                throw StoreError(
                    fileSize > actualSize
                        ? "truncated: \(actualSize) bytes where its header says \(fileSize)"
                        : "corrupt: \(actualSize) bytes where its header says \(fileSize)")
            }
            let (tableBytes, overflow) = slotCount.multipliedReportingOverflow(by: 8)
            guard recordsEnd >= PartitionFile.headerSize, recordsEnd <= tableOffset, tableOffset % 8 == 0,
                slotCount > 0, slotCount & (slotCount - 1) == 0, count < slotCount, !overflow,
                tableOffset <= fileSize, fileSize - tableOffset == tableBytes,
                UInt64(recordsEnd) <= PartitionFile.offsetMask
            else { throw StoreError("corrupt: its header's sizes do not fit together") }
        }
    }

    /// Opens and maps a partition file.
    /// - Parameter verify: read the whole file once and check it against its checksum (a file
    ///   found in the store; one just written needs no check).
    /// - Throws: ``StoreError`` naming the file and what is wrong with it (missing, truncated,
    ///   corrupt); nothing of it is served then.
    public init(path: String, verify: Bool) throws(StoreError) {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StoreError("cannot open partition file \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw StoreError("cannot read partition file \(path): \(String(cString: strerror(errno)))") }
        let size = Int(info.st_size)
        var headerBytes = [UInt8](repeating: 0, count: Self.headerSize)
        let read = headerBytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, Self.headerSize, 0) }
        guard read == Self.headerSize || (read >= 4 && Array(headerBytes[0..<4]) != Self.magic) else {
            throw StoreError("partition file \(path) is truncated: \(size) bytes, shorter than its header")
        }
        let header: Header
        do { header = try Header(decoding: headerBytes, fileSize: size) } catch {
            throw StoreError("partition file \(path) is \(error.description)")
        }
        if verify {
            var checksum = FileChecksum()
            try Self.forEachChunk(of: descriptor, from: Self.headerSize, to: size, path: path) { checksum.update($0) }
            guard checksum.value == header.bodyChecksum else {
                throw StoreError("partition file \(path) is corrupt: its contents do not match their checksum")
            }
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_SHARED, descriptor, 0), address != MAP_FAILED else {
            throw StoreError("cannot map partition file \(path): \(String(cString: strerror(errno)))")
        }
        // Lookups land anywhere: read-ahead around a fault would only fill the cache with neighbours.
        _ = madvise(address, size, MADV_RANDOM)
        self.size = size
        base = UnsafeRawPointer(address)
        count = header.count
        recordsEnd = header.recordsEnd
        slots = (base + header.tableOffset).assumingMemoryBound(to: UInt64.self)
        mask = header.slotCount - 1
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), size)
    }

    /// Reads `[start, end)` of the file in chunks (the page cache, not this process, keeps them).
    static func forEachChunk(
        of descriptor: Int32, from start: Int, to end: Int, path: String, _ body: (UnsafeRawBufferPointer) throws(StoreError) -> Void
    ) throws(StoreError) {
        let chunkSize = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var offset = start
        while offset < end {
            let count = pread(descriptor, buffer.baseAddress, min(chunkSize, end - offset), off_t(offset))
            guard count > 0 else {
                throw StoreError("partition file \(path) is truncated: cannot read at byte \(offset): \(count < 0 ? String(cString: strerror(errno)) : "end of file")")
            }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            offset += count
        }
    }

    // MARK: Lookups

    /// A record's key and value within the mapping.
    private struct Record {
        var key: UnsafeRawBufferPointer
        var value: UnsafeRawBufferPointer
    }

    /// The record at `offset`; nil when it would reach past the records (a file changed under the mapping).
    @inline(__always)
    private func record(at offset: Int) -> Record? {
        let records = UnsafeRawBufferPointer(start: base, count: recordsEnd)
        var cursor = offset
        guard let keyLength = Self.readVarint(records, at: &cursor), let valueLength = Self.readVarint(records, at: &cursor),
            keyLength <= recordsEnd - cursor, valueLength <= recordsEnd - cursor - keyLength
        else { return nil }
        return Record(
            key: UnsafeRawBufferPointer(start: base + cursor, count: keyLength),
            value: UnsafeRawBufferPointer(start: base + cursor + keyLength, count: valueLength))
    }

    @inline(__always)
    private func find(_ key: UnsafeRawBufferPointer) -> Record? {
        let hash = Self.hash(key)
        let tag = hash >> Self.offsetBits
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = UInt64(littleEndian: slots[slot])
            if entry == 0 { return nil }
            if entry >> Self.offsetBits == tag, let record = record(at: Int(entry & Self.offsetMask) - 1),
                Self.equal(record.key, key)
            {
                return record
            }
            slot = (slot + 1) & mask
        }
    }

    /// Calls `body` with the value of `key` (in the mapping) if it is stored, else returns nil.
    public func withValue<R>(for key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        guard let record = find(key) else { return nil }
        return try body(record.value)
    }

    /// The value of `key` in a new buffer, or nil when it is not stored.
    public func value(for key: UnsafeRawBufferPointer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard let record = find(key) else { return nil }
        var buffer = allocator.buffer(capacity: record.value.count)
        buffer.writeBytes(record.value)
        return buffer
    }

    // MARK: Encoding

    /// Appends one record as the file stores it.
    @inline(__always)
    public static func appendRecord(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, to records: inout [UInt8]) {
        appendVarint(key.count, to: &records)
        appendVarint(value.count, to: &records)
        records.append(contentsOf: key)
        records.append(contentsOf: value)
    }

    @inline(__always)
    static func appendVarint(_ value: Int, to output: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            output.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        output.append(UInt8(value))
    }

    @inline(__always)
    static func readVarint(_ buffer: UnsafeRawBufferPointer, at cursor: inout Int) -> Int? {
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

    @inline(__always)
    static func equal(_ stored: UnsafeRawBufferPointer, _ key: UnsafeRawBufferPointer) -> Bool {
        stored.count == key.count && (key.count == 0 || memcmp(stored.baseAddress!, key.baseAddress!, key.count) == 0)
    }

    /// FNV-1a, 64-bit, with a final mix so that both the low bits (the slot) and the top bits
    /// (the tag) are well spread.
    @inline(__always)
    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        hash ^= hash >> 32
        hash &*= 0x9e37_79b9_7f4a_7c15
        return hash ^ (hash >> 29)
    }
}
