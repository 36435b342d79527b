import DemoSupport
import Foundation
import NIOCore

/// The rounds a node voted for since its databases' logs were last synced: the file `votes`,
/// with which a round costs a member one data sync.
///
/// - A prepare adds its round as a record (a header of its length, its running number and a
///   checksum of both and the body, then the round as ``ReplicationWire`` writes it) and syncs it.
///   The round's commit appends its transactions to the databases' logs without a sync: the
///   record keeps them until a checkpoint.
/// - An abort erases the last record (its length set to 0), synced.
/// - A checkpoint, once the records fill ``limit`` bytes and the logs are synced, erases the
///   first record, and the next one is written at the start again.
///
/// The file is filled with zeros up to ``limit`` when it is created, so that a record's sync
/// writes its data alone, without a journal commit of a new file length (which serialises with
/// every other fsync on the file system). Reading stops at the first record that is erased, torn
/// (its checksum does not match) or left from before a checkpoint (its number does not follow the
/// one before). When the file holds no record, numbering starts at a random number, so that a
/// record left from before cannot follow by chance.
struct VoteLog: Sendable {
    let path: String
    /// The bytes of records after which a commit checkpoints.
    let limit: Int
    /// Where the next record goes.
    private var end: Int
    /// Where the last record starts, while it can be erased (it has not been erased yet).
    private var lastStart: Int?
    private var nextNumber: UInt64
    /// The databases the records' transactions write to: the logs a checkpoint syncs.
    private(set) var databases: Set<String>

    static let headerSize = 24

    /// Opens (or creates) the vote log at `path` and reads its rounds, oldest first.
    /// - Throws: a storage error for a whole record this version cannot read (another layout).
    static func open(_ path: String, limit: Int) throws -> (VoteLog, [PreparedBatch]) {
        let data = FileManager.default.contents(atPath: path) ?? Data()
        var rounds: [PreparedBatch] = []
        var offset = 0
        var lastStart: Int?
        var lastNumber: UInt64?
        func word(at position: Int) -> UInt64 {
            data[position..<position + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        while offset + headerSize <= data.count {
            let length = word(at: offset)
            let number = word(at: offset + 8)
            let bodyStart = offset + headerSize
            guard length > 0, length <= UInt64(data.count - bodyStart), lastNumber.map({ number == $0 &+ 1 }) ?? true else { break }
            let body = data[bodyStart..<bodyStart + Int(length)]
            guard word(at: offset + 16) == body.withUnsafeBytes({ checksum(number: number, body: $0) }) else { break }
            do { rounds.append(try ReplicationWire.decodeBatch(ByteBuffer(bytes: body))) } catch {
                throw ReplicatedError(.storage, "\(path) holds a vote this version cannot read (\(error)); start the version that wrote it to decide it")
            }
            lastStart = offset
            lastNumber = number
            offset = bodyStart + Int(length)
        }
        if data.count < limit {
            try LocalStore.durably { try DurableFile.writeInPlace(path, at: data.count, [UInt8](repeating: 0, count: limit - data.count)) }
        }
        let log = VoteLog(
            path: path, limit: limit, end: offset, lastStart: lastStart,
            nextNumber: lastNumber.map { $0 &+ 1 } ?? UInt64.random(in: 1...UInt64.max / 2),
            databases: Set(rounds.flatMap(\.transactionDatabases)))
        return (log, rounds)
    }

    /// The bytes of the records.
    var size: Int { end }

    /// Whether the records fill ``limit``: time for a checkpoint.
    var isFull: Bool { end >= limit }

    /// Adds `round`, `encoded` as ``ReplicationWire`` writes it, and syncs it.
    mutating func append(_ round: PreparedBatch, encoded: ByteBuffer) throws {
        let number = nextNumber
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.headerSize + encoded.readableBytes)
        Self.appendWord(UInt64(encoded.readableBytes), to: &bytes)
        Self.appendWord(number, to: &bytes)
        Self.appendWord(encoded.withUnsafeReadableBytes { Self.checksum(number: number, body: $0) }, to: &bytes)
        bytes.append(contentsOf: encoded.readableBytesView)
        try LocalStore.durably { try DurableFile.writeInPlace(path, at: end, bytes) }
        lastStart = end
        end += bytes.count
        nextNumber &+= 1
        databases.formUnion(round.transactionDatabases)
    }

    /// Erases the last record (an aborted round), synced.
    mutating func eraseLast() throws {
        guard let start = lastStart else { return }
        try erase(at: start)
        end = start
        lastStart = nil
        nextNumber &-= 1
    }

    /// Forgets every record (the databases' logs hold their rounds durably now): the first is
    /// erased, synced, and the next is written at the start.
    mutating func checkpoint() throws {
        guard end > 0 else { return }
        try erase(at: 0)
        end = 0
        lastStart = nil
        databases = []
    }

    /// Sets the length of the record at `start` to 0, synced: reading stops there.
    private func erase(at start: Int) throws {
        try LocalStore.durably { try DurableFile.writeInPlace(path, at: start, [UInt8](repeating: 0, count: 8)) }
    }

    private static func appendWord(_ value: UInt64, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// The record's ``Checksum``, over its number (little-endian) and its body: tells a record
    /// written whole from a torn one.
    static func checksum(number: UInt64, body: UnsafeRawBufferPointer) -> UInt64 {
        Checksum.fnv1a(body, continuing: withUnsafeBytes(of: number.littleEndian) { Checksum.fnv1a($0) })
    }
}
