import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes one ``PartitionFile`` while a version is built: the loaders append batches of records
/// as they decode them (from several threads), and ``finish()`` reads the records back once to
/// index them, then writes the table and the header. Memory stays bounded by the batches and one
/// partition's table, whatever the size of the data.
final class PartitionFileWriter: @unchecked Sendable {
    let path: String
    private let descriptor: Int32
    private let lock = NSLock()
    /// Where the next batch goes (under `lock`).
    private var recordsEnd = PartitionFile.headerSize
    /// Records appended, a key stored twice counted twice (under `lock`).
    private var appended = 0
    private var closed = false

    /// Creates the file (replacing one of that name), with room for its header.
    /// - Throws: ``StoreError`` naming the file.
    init(path: String) throws(StoreError) {
        self.path = path
        // A new file, never the old one truncated: a mapping of the old one must not lose its pages.
        unlink(path)
        descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StoreError("cannot create partition file \(path): \(String(cString: strerror(errno)))") }
    }

    deinit {
        if !closed { close(descriptor) }
    }

    /// Appends `records` (``PartitionFile/appendRecord(key:value:to:)``'s encoding) holding `count` records.
    func append(_ records: [UInt8], count: Int) throws(StoreError) {
        guard !records.isEmpty else { return }
        lock.lock()
        defer { lock.unlock() }
        try write(records, at: recordsEnd)
        recordsEnd += records.count
        appended += count
    }

    /// Indexes the records, writes the table and the header, and maps the finished file.
    /// - Throws: ``StoreError`` naming the file when it cannot be read back or written.
    func finish() throws(StoreError) -> PartitionFile {
        let (recordsEnd, appended) = lock.withLock { (self.recordsEnd, self.appended) }
        guard UInt64(recordsEnd) <= PartitionFile.offsetMask else {
            throw StoreError("partition file \(path) would hold \(recordsEnd) bytes of records, more than the format's 1 TiB")
        }
        var slotCount = 16
        while slotCount * 2 < appended * 3 { slotCount <<= 1 }  // at most two thirds full
        var table = [UInt64](repeating: 0, count: slotCount)
        var checksums = PageChecksums(start: PartitionFile.headerSize)
        var distinct = 0
        try forEachRecord(upTo: recordsEnd, checksums: &checksums) { offset, key throws(StoreError) in
            if try insert(offset: offset, key: key, into: &table) { distinct += 1 }
        }
        let tableOffset = (recordsEnd + 7) / 8 * 8
        let padding = [UInt8](repeating: 0, count: tableOffset - recordsEnd)
        padding.withUnsafeBytes { checksums.update($0) }
        try write(padding, at: recordsEnd)
        for index in table.indices { table[index] = table[index].littleEndian }
        table.withUnsafeBytes { checksums.update($0) }
        try write(table, at: tableOffset)
        let pageChecksums = checksums.finish().map(\.littleEndian)
        try write(pageChecksums, at: tableOffset + slotCount * 8)
        let header = PartitionFile.Header(
            count: distinct, recordsEnd: recordsEnd, tableOffset: tableOffset, slotCount: slotCount,
            pageChecksumsChecksum: pageChecksums.withUnsafeBytes { FileChecksum.of($0) })
        try write(header.encoded, at: 0)
        // On disk before it is mapped and served: the kernel writing back pages that a serving
        // process maps must clean them in its page tables (a TLB flush each time), which made
        // lookups two to three times dearer for minutes after a large build. Also, the version's
        // manifest, written next, then never describes files still in the page cache only.
        guard fdatasync(descriptor) == 0 else {
            throw StoreError("cannot write partition file \(path) to disk: \(String(cString: strerror(errno)))")
        }
        lock.withLock {
            closed = true
            close(descriptor)
        }
        return try PartitionFile(path: path, pagesChecked: true)
    }

    /// Closes and deletes the unfinished file.
    func abandon() {
        lock.withLock {
            if !closed { close(descriptor) }
            closed = true
        }
        unlink(path)
    }

    /// Puts the record at `offset` in the table; a key already there points to the later record
    /// (the last appended wins, as in a Sparkey log). Returns whether the key is new. Records of
    /// one source file are appended in file order; which of two files holding the same key is
    /// appended last depends on the loaders' timing, so which value a duplicate key has is not
    /// specified, as in sequins (whose lookup returns the first block that holds the key).
    private func insert(offset: Int, key: UnsafeRawBufferPointer, into table: inout [UInt64]) throws(StoreError) -> Bool {
        let hash = PartitionFile.hash(key)
        let entry = (hash >> PartitionFile.offsetBits) << PartitionFile.offsetBits | UInt64(offset + 1)
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let occupant = table[slot]
            if occupant == 0 {
                table[slot] = entry
                return true
            }
            if occupant >> PartitionFile.offsetBits == entry >> PartitionFile.offsetBits,
                try key.elementsEqual(keyOfRecord(at: Int(occupant & PartitionFile.offsetMask) - 1))
            {
                table[slot] = entry
                return false
            }
            slot = (slot + 1) & mask
        }
    }

    /// The key of an earlier record, read back from the file (only when two keys' tags match).
    private func keyOfRecord(at offset: Int) throws(StoreError) -> [UInt8] {
        let prefix = try read(20, at: offset, exactly: false)
        var cursor = 0
        let lengths = prefix.withUnsafeBytes { bytes -> Int? in
            guard let keyLength = PartitionFile.readVarint(bytes, at: &cursor), PartitionFile.readVarint(bytes, at: &cursor) != nil else { return nil }
            return keyLength
        }
        guard let keyLength = lengths else { throw StoreError("partition file \(path) cannot be read back at byte \(offset)") }
        return try read(keyLength, at: offset + cursor, exactly: true)
    }

    /// `count` bytes at `offset` (fewer at the end of the file, unless `exactly`).
    private func read(_ count: Int, at offset: Int, exactly: Bool) throws(StoreError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let read = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, count, off_t(offset)) }
        guard read >= 0, !exactly || read == count, read > 0 || count == 0 else {
            throw StoreError("partition file \(path) cannot be read back at byte \(offset)")
        }
        bytes.removeLast(count - read)
        return bytes
    }

    /// Reads the records back in order, feeding every byte to `checksums`, and calls `body` with
    /// each record's offset and key.
    private func forEachRecord(
        upTo end: Int, checksums: inout PageChecksums, _ body: (Int, UnsafeRawBufferPointer) throws(StoreError) -> Void
    ) throws(StoreError) {
        var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var filled = 0  // bytes in buffer
        var bufferStart = PartitionFile.headerSize  // file offset of buffer[0]
        while bufferStart + filled < end {
            if filled == buffer.count {  // a record larger than the buffer
                let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 16)
                larger.copyMemory(from: UnsafeRawBufferPointer(buffer))
                buffer.deallocate()
                buffer = larger
            }
            let want = min(buffer.count - filled, end - bufferStart - filled)
            let read = pread(descriptor, buffer.baseAddress! + filled, want, off_t(bufferStart + filled))
            guard read > 0 else { throw StoreError("partition file \(path) cannot be read back at byte \(bufferStart + filled)") }
            checksums.update(UnsafeRawBufferPointer(rebasing: buffer[filled..<(filled + read)]))
            filled += read
            let available = UnsafeRawBufferPointer(rebasing: buffer[0..<filled])
            var consumed = 0
            while consumed < filled {
                var next = consumed
                guard let keyLength = PartitionFile.readVarint(available, at: &next), let valueLength = PartitionFile.readVarint(available, at: &next),
                    keyLength <= filled - next, valueLength <= filled - next - keyLength
                else { break }  // the rest of this record comes with the next read
                try body(bufferStart + consumed, UnsafeRawBufferPointer(rebasing: available[next..<(next + keyLength)]))
                consumed = next + keyLength + valueLength
            }
            if bufferStart + filled == end && consumed < filled {
                throw StoreError("partition file \(path) ends inside a record at byte \(bufferStart + consumed)")
            }
            if consumed > 0 && consumed < filled {
                buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + consumed, byteCount: filled - consumed)
            }
            bufferStart += consumed
            filled -= consumed
        }
    }

    private func write(_ array: [some BitwiseCopyable], at offset: Int) throws(StoreError) {
        if let failure = array.withUnsafeBytes({ write($0, at: offset) }) { throw failure }
    }

    private func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> StoreError? {
        var done = 0
        while done < bytes.count {
            let count = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return StoreError("cannot write partition file \(path): \(String(cString: strerror(errno)))") }
            done += count
        }
        return nil
    }
}
