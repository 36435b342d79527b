/// The checksums of a file's pages (``PartitionFile/pageSize`` bytes each, the last one shorter),
/// fed its bytes from `start` on in pieces of any size: what ``PartitionFileWriter`` stores after
/// the table.
struct PageChecksums {
    private(set) var checksums: [UInt64] = []
    private var page = FileChecksum()
    /// Where the stream is within its page (the first page's bytes before `start` are not fed).
    private var inPage: Int
    private var fedInPage = 0

    init(start: Int) { inPage = start % PartitionFile.pageSize }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        while !rest.isEmpty {
            let taken = min(PartitionFile.pageSize - inPage, rest.count)
            page.update(UnsafeRawBufferPointer(rebasing: rest[0..<taken]))
            inPage += taken
            fedInPage += taken
            rest = UnsafeRawBufferPointer(rebasing: rest[taken...])
            if inPage == PartitionFile.pageSize { closePage() }
        }
    }

    /// Every page's checksum, the unfinished last page's included.
    mutating func finish() -> [UInt64] {
        if fedInPage > 0 { closePage() }
        return checksums
    }

    private mutating func closePage() {
        checksums.append(page.value)
        page = FileChecksum()
        inPage = 0
        fedInPage = 0
    }
}
