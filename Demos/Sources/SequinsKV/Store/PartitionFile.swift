import NIOCore
import Synchronization

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
/// 0    "KVP4"  u32 0
/// 8    u64 distinct keys          16  u64 end of the records
/// 24   u64 offset of the table    32  u64 slots in the table (a power of two)
/// 40   u64 file size              48  u64 checksum of the page checksums
/// 56   u64 checksum of bytes 0 to 56
/// 64   records: [key length: varint][value length: varint][key][value] ...
///      (zero padding to a multiple of 8)
/// table: one u64 per slot: 0 when empty, else the key hash's top 24 bits << 40 | (record offset + 1)
/// page checksums: one u64 per 4 KiB page of the file up to the end of the table (the first
///      one from byte 64, the last one ending with the table)
/// ```
///
/// A lookup hashes the key, probes the table linearly and compares a record's key only when the
/// slot's 24 hash bits match: about one read of the table and one of the record per lookup.
///
/// Opening a file checks its header and its page checksums, not its pages: a page is checked
/// against its checksum the first time a lookup reads it (or by ``checkAllPages()``, which a
/// node runs in the background once it serves), so that a restart serves at once instead of
/// reading the whole version from disk first, and a damaged page is never served (the lookup
/// throws ``PartitionDamage`` instead). Pages are the kernel's: checking one reads no more of
/// the disk than the lookup does.
public final class PartitionFile: @unchecked Sendable {
    /// The file.
    public let path: String
    /// Distinct keys.
    public let count: Int
    /// The file's size in bytes.
    public let size: Int
    private let base: UnsafeRawPointer
    private let recordsEnd: Int
    private let tableOffset: Int
    private let slots: UnsafePointer<UInt64>
    private let mask: Int
    /// The end of the checked pages (the end of the table).
    private let checkedEnd: Int
    private let pageChecksums: UnsafePointer<UInt64>
    /// One bit per page, set once the page matched its checksum. Lookups on any thread set them,
    /// hence atomics; relaxed, as the pages themselves never change.
    private let checkedPages: UnsafeMutablePointer<Atomic<UInt64>>
    private let checkedWords: Int
    /// Pages with a checksum.
    let pageCount: Int

    static let magic: [UInt8] = Array("KVP4".utf8)
    static let headerSize = 64
    static let offsetBits: UInt64 = 40
    static let offsetMask: UInt64 = (1 << offsetBits) - 1
    /// The bytes each page checksum covers: a page of memory, the least a fault reads from disk.
    static let pageShift = 12
    static let pageSize = 1 << pageShift

    /// How many page checksums cover a file whose checked bytes end at `checkedEnd`.
    static func pageCount(checkedEnd: Int) -> Int { (checkedEnd + pageSize - 1) >> pageShift }
    /// The size of a file whose checked bytes end at `checkedEnd`: they, then their page checksums.
    static func fileSize(checkedEnd: Int) -> Int { checkedEnd + pageCount(checkedEnd: checkedEnd) * 8 }
    /// The most bytes a record's two lengths take (two varints of at most 10 bytes).
    static let lengthsMaxBytes = 20

    /// The header's fields.
    struct Header: Equatable {
        var count: Int
        var recordsEnd: Int
        var tableOffset: Int
        var slotCount: Int
        var fileSize: Int
        var pageChecksumsChecksum: UInt64

        /// The 64 bytes, with the header's own checksum.
        var encoded: [UInt8] {
            var bytes = PartitionFile.magic + [0, 0, 0, 0]
            for field in [UInt64(count), UInt64(recordsEnd), UInt64(tableOffset), UInt64(slotCount), UInt64(fileSize), pageChecksumsChecksum] {
                withUnsafeBytes(of: field.littleEndian) { bytes += $0 }
            }
            let checksum = bytes.withUnsafeBytes { FileChecksum.of($0) }
            withUnsafeBytes(of: checksum.littleEndian) { bytes += $0 }
            return bytes
        }

        /// The end of the table, where the page checksums begin.
        var checkedEnd: Int { tableOffset + slotCount * 8 }

        init(count: Int, recordsEnd: Int, tableOffset: Int, slotCount: Int, pageChecksumsChecksum: UInt64) {
            self.count = count
            self.recordsEnd = recordsEnd
            self.tableOffset = tableOffset
            self.slotCount = slotCount
            self.pageChecksumsChecksum = pageChecksumsChecksum
            fileSize = PartitionFile.fileSize(checkedEnd: tableOffset + slotCount * 8)
        }

        /// Reads and checks a header against the size of its file.
        /// - Throws: ``StoreError`` saying what is wrong, without the file's name.
        init(decoding bytes: [UInt8], fileSize actualSize: Int) throws(StoreError) {
            guard bytes.count >= PartitionFile.headerSize, Array(bytes[0..<4]) == PartitionFile.magic else {
                throw StoreError("not a partition file of this kv (it does not start with KVP4)")
            }
            func field(_ offset: Int) -> UInt64 {
                bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
            }
            guard bytes.withUnsafeBytes({ FileChecksum.of(UnsafeRawBufferPointer(rebasing: $0[0..<56])) }) == field(56) else {
                throw StoreError("corrupt: its header does not match the header's checksum")
            }
            let fields = [8, 16, 24, 32, 40].map { field($0) }
            guard fields.allSatisfy({ $0 < UInt64(1 << 50) }) else { throw StoreError("corrupt: its header holds impossible sizes") }
            count = Int(fields[0])
            recordsEnd = Int(fields[1])
            tableOffset = Int(fields[2])
            slotCount = Int(fields[3])
            fileSize = Int(fields[4])
            pageChecksumsChecksum = field(48)
            guard fileSize == actualSize else {
                throw StoreError(
                    fileSize > actualSize
                        ? "truncated: \(actualSize) bytes where its header says \(fileSize)"
                        : "corrupt: \(actualSize) bytes where its header says \(fileSize)")
            }
            guard recordsEnd >= PartitionFile.headerSize, recordsEnd <= tableOffset, tableOffset % 8 == 0,
                slotCount > 0, slotCount & (slotCount - 1) == 0, count < slotCount,
                fileSize == PartitionFile.fileSize(checkedEnd: checkedEnd),
                UInt64(recordsEnd) <= PartitionFile.offsetMask
            else { throw StoreError("corrupt: its header's sizes do not fit together") }
        }
    }

    /// Opens and maps a partition file, after checking its header and its page checksums (the
    /// pages themselves are checked as lookups first read them).
    /// - Parameter pagesChecked: the pages are known to match their checksums (a file just
    ///   written, whose checksums were computed from its bytes read back).
    /// - Throws: ``StoreError`` naming the file and what is wrong with it (missing, truncated,
    ///   corrupt); nothing of it is served then.
    public init(path: String, pagesChecked: Bool = false) throws(StoreError) {
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
        guard let address = mmap(nil, size, PROT_READ, MAP_SHARED, descriptor, 0), address != MAP_FAILED else {
            throw StoreError("cannot map partition file \(path): \(String(cString: strerror(errno)))")
        }
        let base = UnsafeRawPointer(address)
        let checkedEnd = header.checkedEnd
        let pageCount = Self.pageCount(checkedEnd: checkedEnd)
        guard FileChecksum.of(UnsafeRawBufferPointer(start: base + checkedEnd, count: pageCount * 8)) == header.pageChecksumsChecksum else {
            munmap(address, size)
            throw StoreError("partition file \(path) is corrupt: its page checksums do not match their checksum")
        }
        // Lookups land anywhere: read-ahead around a fault would only fill the cache with neighbours.
        _ = madvise(address, size, MADV_RANDOM)
        self.size = size
        self.base = base
        count = header.count
        recordsEnd = header.recordsEnd
        tableOffset = header.tableOffset
        slots = (base + header.tableOffset).assumingMemoryBound(to: UInt64.self)
        mask = header.slotCount - 1
        self.checkedEnd = checkedEnd
        pageChecksums = (base + checkedEnd).assumingMemoryBound(to: UInt64.self)
        self.pageCount = pageCount
        checkedWords = (pageCount + 63) / 64
        checkedPages = .allocate(capacity: checkedWords)
        for word in 0..<checkedWords {
            let pagesInWord = min(64, pageCount - word * 64)
            (checkedPages + word).initialize(to: Atomic(pagesChecked ? UInt64.max >> UInt64(64 - pagesInWord) : 0))
        }
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), size)
        checkedPages.deinitialize(count: checkedWords)
        checkedPages.deallocate()
    }

    /// Checks every page not checked yet, in order, asking the kernel to read each stretch ahead
    /// of the check (a sequential read brings a cold file into the page cache at disk speed,
    /// where lookups alone would fault it in page by page).
    /// - Throws: ``PartitionDamage`` for the first page that does not match its checksum.
    public func checkAllPages() throws(PartitionDamage) {
        let stretch = 256 << Self.pageShift  // 1 MiB
        var start = 0
        _ = madvise(UnsafeMutableRawPointer(mutating: base), min(stretch, checkedEnd), MADV_WILLNEED)
        while start < checkedEnd {
            let next = min(start + stretch, checkedEnd)
            if next < checkedEnd {
                _ = madvise(UnsafeMutableRawPointer(mutating: base + next), min(stretch, checkedEnd - next), MADV_WILLNEED)
            }
            try checkPages(from: max(start, Self.headerSize), to: next)
            start = next
        }
    }

    /// Pages checked so far.
    var checkedPageCount: Int {
        (0..<checkedWords).reduce(0) { $0 + checkedPages[$1].load(ordering: .relaxed).nonzeroBitCount }
    }

    // MARK: Pages

    /// Checks the pages holding bytes `[start, end)` of the file (each at most once while it matches).
    @inline(__always)
    private func checkPages(from start: Int, to end: Int) throws(PartitionDamage) {
        var page = start >> Self.pageShift
        let last = (end - 1) >> Self.pageShift
        while page <= last {
            if checkedPages[page >> 6].load(ordering: .relaxed) & (1 << UInt64(page & 63)) == 0 {
                try checkPage(page)
            }
            page += 1
        }
    }

    private func checkPage(_ page: Int) throws(PartitionDamage) {
        let start = max(Self.headerSize, page << Self.pageShift)
        let bytes = UnsafeRawBufferPointer(start: base + start, count: min((page + 1) << Self.pageShift, checkedEnd) - start)
        guard FileChecksum.of(bytes) == UInt64(littleEndian: pageChecksums[page]) else {
            throw PartitionDamage(path: path, page: page, bytes: start..<(start + bytes.count))
        }
        checkedPages[page >> 6].bitwiseOr(1 << UInt64(page & 63), ordering: .relaxed)
    }

    // MARK: Lookups

    /// A record's key and value within the mapping.
    private struct Record {
        var key: UnsafeRawBufferPointer
        var value: UnsafeRawBufferPointer
    }

    /// The record at `offset`, its pages checked; nil when it would reach past the records.
    @inline(__always)
    private func record(at offset: Int) throws(PartitionDamage) -> Record? {
        guard offset >= Self.headerSize, offset < recordsEnd else { return nil }
        // The two lengths first, then the key and value they span.
        let lengthsEnd = min(offset + Self.lengthsMaxBytes, recordsEnd)
        try checkPages(from: offset, to: lengthsEnd)
        let records = UnsafeRawBufferPointer(start: base, count: recordsEnd)
        var cursor = offset
        guard let keyLength = Self.readVarint(records, at: &cursor), let valueLength = Self.readVarint(records, at: &cursor),
            keyLength <= recordsEnd - cursor, valueLength <= recordsEnd - cursor - keyLength
        else { return nil }
        let end = cursor + keyLength + valueLength
        if end > lengthsEnd { try checkPages(from: lengthsEnd, to: end) }
        return Record(
            key: UnsafeRawBufferPointer(start: base + cursor, count: keyLength),
            value: UnsafeRawBufferPointer(start: base + cursor + keyLength, count: valueLength))
    }

    @inline(__always)
    private func find(_ key: UnsafeRawBufferPointer) throws(PartitionDamage) -> Record? {
        let hash = Self.hash(key)
        let tag = hash >> Self.offsetBits
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slotOffset = tableOffset + slot * 8
            try checkPages(from: slotOffset, to: slotOffset + 8)
            let entry = UInt64(littleEndian: slots[slot])
            if entry == 0 { return nil }
            if entry >> Self.offsetBits == tag, let record = try record(at: Int(entry & Self.offsetMask) - 1),
                Self.equal(record.key, key)
            {
                return record
            }
            slot = (slot + 1) & mask
        }
    }

    /// Calls `body` with the value of `key` (in the mapping) if it is stored, else returns nil.
    /// - Throws: ``PartitionDamage`` when a page the lookup reads does not match its checksum.
    public func withValue<R>(for key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) throws(PartitionDamage) -> R? {
        guard let record = try find(key) else { return nil }
        return body(record.value)
    }

    /// The value of `key` in a new buffer, or nil when it is not stored.
    /// - Throws: ``PartitionDamage`` when a page the lookup reads does not match its checksum.
    public func value(for key: UnsafeRawBufferPointer, allocator: ByteBufferAllocator) throws(PartitionDamage) -> ByteBuffer? {
        guard let record = try find(key) else { return nil }
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
