import NIOCore

/// Reads the binary forms the demos' nodes exchange between themselves (search's requests and
/// results between a broker and its nodes, replicated's rounds and forwarded operations):
/// fixed-width big-endian integers, counts and length-prefixed UTF-8 strings, each checked against
/// the bytes left, so a damaged message is refused with a reason instead of read wrong.
///
/// Inlinable: the demos read every message of a round through it, and a call across the module
/// boundary would read each integer through `FixedWidthInteger`'s generic witnesses.
public struct WireReader {
    @usableFromInline var buffer: ByteBuffer
    /// What is read, for errors ("a node's result").
    public let what: String
    /// The error thrown for a message that is not what it should be, from the reason.
    @usableFromInline let failure: @Sendable (String) -> any Error

    /// A reader of `buffer`, after checking that it starts with layout `version`.
    /// - Parameter failure: makes the error thrown for a damaged message (the demo's own error
    ///   type, carrying the reason given).
    /// - Throws: `failure`'s error when it is in another layout.
    @inlinable
    public init(_ buffer: ByteBuffer, what: String, version: UInt8, failure: @escaping @Sendable (String) -> any Error) throws {
        self.buffer = buffer
        self.what = what
        self.failure = failure
        guard let found: UInt8 = self.buffer.readInteger(), found == version else {
            throw failure("\(what) is not in layout \(version) (a node of another version?)")
        }
    }

    @inlinable
    public mutating func integer<T: FixedWidthInteger>(_ type: T.Type = T.self) throws -> T {
        guard let value: T = buffer.readInteger() else { throw failure("\(what) ends early") }
        return value
    }

    /// A count of entries, each at least `entryBytes` long (so that a damaged count cannot make
    /// the reader allocate for more entries than the bytes left can hold).
    @inlinable
    public mutating func count(entryBytes: Int = 1) throws -> Int {
        let value = Int(try integer(UInt32.self))
        guard value <= buffer.readableBytes / max(entryBytes, 1) else {
            throw failure("\(what) claims \(value) entries in \(buffer.readableBytes) bytes")
        }
        return value
    }

    /// A count of things (hits, documents) sent as a 64-bit integer: never negative, and small
    /// enough that adding up the counts of many nodes cannot overflow.
    @inlinable
    public mutating func tally(_ name: String) throws -> Int {
        let value = try integer(Int64.self)
        guard value >= 0, value <= 1 << 48 else { throw failure("\(what) has \(value) \(name)") }
        return Int(value)
    }

    @inlinable
    public mutating func string() throws -> String {
        let length = Int(try integer(UInt32.self))
        guard let text = buffer.readString(length: length) else { throw failure("\(what) ends inside a string") }
        return text
    }

    @inlinable
    public mutating func flag() throws -> Bool {
        switch try integer(UInt8.self) {
        case 0: return false
        case 1: return true
        case let other: throw failure("\(what) has \(other) where a flag (0 or 1) belongs")
        }
    }

    /// Checks that nothing follows the message.
    @inlinable
    public func end() throws {
        guard buffer.readableBytes == 0 else { throw failure("\(what) has \(buffer.readableBytes) bytes too many") }
    }
}

extension ByteBuffer {
    /// A string as ``WireReader/string()`` reads it: its UTF-8 length, then its bytes.
    @inlinable
    public mutating func writeWireString(_ text: String) {
        let length = writerIndex
        writeInteger(UInt32(0))
        let written = writeString(text)
        setInteger(UInt32(written), at: length)
    }

    /// A flag as ``WireReader/flag()`` reads it.
    @inlinable
    public mutating func writeWireFlag(_ flag: Bool) {
        writeInteger(UInt8(flag ? 1 : 0))
    }
}
