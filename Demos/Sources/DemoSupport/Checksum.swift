/// The checksum a search segment file and a record of replicated's vote log carry: FNV-1a,
/// 64 bits, over 8-byte words and then the tail bytes. It tells a file written whole from one
/// torn by a crash or altered since: any one word changed changes it. Words are read in the
/// host's byte order (the demos run on little-endian hosts: x86-64, arm64).
public enum Checksum {
    /// The checksum of no bytes (FNV-1a's offset basis).
    public static let empty: UInt64 = 0xcbf2_9ce4_8422_2325

    /// The checksum of `bytes`, continuing `hash`, the checksum of the bytes before them.
    public static func fnv1a(_ bytes: UnsafeRawBufferPointer, continuing hash: UInt64 = empty) -> UInt64 {
        let prime: UInt64 = 0x0000_0100_0000_01b3
        var hash = hash
        let words = bytes.count / 8
        for index in 0..<words { hash = (hash ^ bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)) &* prime }
        for index in (words * 8)..<bytes.count { hash = (hash ^ UInt64(bytes[index])) &* prime }
        return hash
    }
}
