/// A 64-bit checksum of a byte stream fed in pieces of any size: four lanes of multiply-rotate
/// rounds over 32-byte stripes (the construction of xxHash64), so that checking a page on a
/// lookup's path costs about a microsecond. It detects damage (a torn write, a flipped bit), not tampering.
struct FileChecksum {
    private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5
    private static let stripe = 32

    private var lane0: UInt64 = prime1 &+ prime2
    private var lane1: UInt64 = prime2
    private var lane2: UInt64 = 0
    private var lane3: UInt64 = 0 &- prime1
    private var total = 0
    /// Bytes of an unfinished stripe (fewer than 32).
    private var pending: [UInt8] = []

    init() {}

    /// The checksum of `bytes` alone.
    static func of(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var checksum = FileChecksum()
        checksum.update(bytes)
        return checksum.value
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        total += bytes.count
        var start = 0
        if !pending.isEmpty {
            let taken = min(Self.stripe - pending.count, bytes.count)
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<taken]))
            start = taken
            guard pending.count == Self.stripe else { return }
            pending.withUnsafeBytes { consumeStripes($0) }
            pending.removeAll(keepingCapacity: true)
        }
        let whole = (bytes.count - start) / Self.stripe * Self.stripe
        if whole > 0 { consumeStripes(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + whole)])) }
        if start + whole < bytes.count { pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[(start + whole)...])) }
    }

    /// The checksum of everything fed so far.
    var value: UInt64 {
        var hash: UInt64
        if total >= Self.stripe {
            hash = rotate(lane0, 1) &+ rotate(lane1, 7) &+ rotate(lane2, 12) &+ rotate(lane3, 18)
            hash = Self.merge(hash, lane0)
            hash = Self.merge(hash, lane1)
            hash = Self.merge(hash, lane2)
            hash = Self.merge(hash, lane3)
        } else {
            hash = Self.prime5
        }
        hash &+= UInt64(total)
        pending.withUnsafeBytes { tail in
            var cursor = 0
            while cursor + 8 <= tail.count {
                hash ^= Self.round(0, UInt64(littleEndian: tail.loadUnaligned(fromByteOffset: cursor, as: UInt64.self)))
                hash = rotate(hash, 27) &* Self.prime1 &+ Self.prime4
                cursor += 8
            }
            while cursor < tail.count {
                hash ^= UInt64(tail[cursor]) &* Self.prime5
                hash = rotate(hash, 11) &* Self.prime1
                cursor += 1
            }
        }
        hash ^= hash >> 33
        hash &*= Self.prime2
        hash ^= hash >> 29
        hash &*= Self.prime3
        hash ^= hash >> 32
        return hash
    }

    @inline(__always)
    private mutating func consumeStripes(_ bytes: UnsafeRawBufferPointer) {
        var (a, b, c, d) = (lane0, lane1, lane2, lane3)
        var cursor = 0
        while cursor + Self.stripe <= bytes.count {
            a = Self.round(a, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: cursor, as: UInt64.self)))
            b = Self.round(b, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: cursor + 8, as: UInt64.self)))
            c = Self.round(c, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: cursor + 16, as: UInt64.self)))
            d = Self.round(d, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: cursor + 24, as: UInt64.self)))
            cursor += Self.stripe
        }
        (lane0, lane1, lane2, lane3) = (a, b, c, d)
    }

    @inline(__always)
    private static func merge(_ hash: UInt64, _ lane: UInt64) -> UInt64 {
        (hash ^ round(0, lane)) &* prime1 &+ prime4
    }

    @inline(__always)
    private static func round(_ accumulator: UInt64, _ input: UInt64) -> UInt64 {
        rotate(accumulator &+ input &* prime2, 31) &* prime1
    }
}

@inline(__always)
private func rotate(_ value: UInt64, _ count: UInt64) -> UInt64 {
    (value << count) | (value >> (64 - count))
}
