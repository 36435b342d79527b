import ZooKeeper

/// A fixed-width two's complement integer, big-endian, as Java's `ByteBuffer` writes it: the
/// encoding of Curator's `SharedCount` (4 bytes) and `DistributedAtomicLong` (8 bytes).
public struct BigEndianCodec<Value: FixedWidthInteger & Sendable>: NodeCodec {
    /// Whether an empty node reads as 0 (Curator's `DistributedAtomicLong` does; `SharedCount` does not).
    public var emptyIsZero: Bool

    /// A codec of `Value`s.
    public init(emptyIsZero: Bool = false) {
        self.emptyIsZero = emptyIsZero
    }

    /// The value's bytes, most significant first.
    public func encode(_ value: Value) throws -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    /// The value of exactly `Value.bitWidth / 8` bytes.
    /// - Throws: ``WrongLength`` for any other length.
    public func decode(_ bytes: [UInt8]) throws -> Value {
        if bytes.isEmpty && emptyIsZero { return 0 }
        guard bytes.count == Value.bitWidth / 8 else { throw WrongLength(expected: Value.bitWidth / 8, found: bytes.count) }
        return bytes.reduce(Value.zero) { ($0 << 8) | Value(truncatingIfNeeded: $1) }
    }

    /// Bytes that are not one value.
    public struct WrongLength: Error, Sendable, Hashable, CustomStringConvertible {
        /// The length a value has.
        public var expected: Int
        /// The length found.
        public var found: Int
        public var description: String { "a counter is \(expected) bytes, this node has \(found)" }
    }
}
