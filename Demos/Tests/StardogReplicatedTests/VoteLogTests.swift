import Foundation
import NIOCore
import Testing

@testable import StardogReplicated

@Suite struct VoteLogTests {
    static func path() -> String { NSTemporaryDirectory() + "replicated-votes-" + UUID().uuidString }

    /// A round of one transaction on `db`, its body `size` bytes of N-Triples or so.
    static func round(_ seq: Int, size: Int = 20) -> PreparedBatch {
        let add = "<urn:s> <urn:p> \"" + String(repeating: "x", count: size) + "\" .\n"
        return PreparedBatch(
            PreparedOperation(
                operation: .init(kind: .transaction, database: "db", add: add), previous: DatabaseVersion(seq: seq - 1, txId: "t\(seq - 1)"),
                next: DatabaseVersion(seq: seq, txId: "t\(seq)")), round: "r\(seq)")
    }

    static func rounds(_ path: String) throws -> [String] { try VoteLog.open(path, limit: 4096).1.map(\.round) }

    @Test func roundsAreReadBackInOrderAndAnErasedOneIsGone() throws {
        let path = Self.path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var (log, read) = try VoteLog.open(path, limit: 4096)
        #expect(read.isEmpty)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(count: 4096), "filled with zeros up to the limit")
        for seq in 1...3 { try log.append(Self.round(seq)) }
        #expect(try VoteLog.open(path, limit: 4096).1 == (1...3).map { Self.round($0) })
        #expect(log.databases == ["db"], "the logs a checkpoint syncs")
        #expect(try VoteLog.open(path, limit: 4096).0.databases == ["db"])
        try log.eraseLast()
        #expect(try Self.rounds(path) == ["r1", "r2"])
        try log.append(Self.round(3, size: 200))  // longer than the one erased
        // A reopened log goes on after its last record.
        var reopened = try VoteLog.open(path, limit: 4096).0
        try reopened.append(Self.round(4))
        #expect(try Self.rounds(path) == ["r1", "r2", "r3", "r4"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count == 4096, "written in place")
    }

    /// A record torn by a crash while it was written (its vote never answered) ends the log:
    /// every damage to it leaves the records before it.
    @Test func aTornRecordEndsTheLog() throws {
        let path = Self.path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var log = try VoteLog.open(path, limit: 4096).0
        try log.append(Self.round(1))
        let start = log.size
        try log.append(Self.round(2))
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        for position in [start, start + 8, start + 16, start + 30, log.size - 1] {
            var damaged = whole
            damaged[position] ^= 0x5a
            try damaged.write(to: URL(fileURLWithPath: path))
            #expect(try Self.rounds(path) == ["r1"], "byte \(position) damaged")
        }
        try whole.prefix(log.size - 5).write(to: URL(fileURLWithPath: path))
        #expect(try Self.rounds(path) == ["r1"], "cut short")
    }

    /// After a checkpoint the log is read as empty, and the records written from its start again
    /// are read without the older ones after them, which are whole but do not follow. Records of
    /// one size, written again after a reopen (numbering starts afresh), do not pick them up either.
    @Test func aCheckpointForgetsEveryRecordAndOldRecordsAreNotReadAgain() throws {
        let path = Self.path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var log = try VoteLog.open(path, limit: 4096).0
        for seq in 1...5 { try log.append(Self.round(seq)) }
        try log.checkpoint()
        #expect(log.size == 0 && log.databases.isEmpty)
        #expect(try Self.rounds(path).isEmpty)
        try log.append(Self.round(6))
        #expect(try Self.rounds(path) == ["r6"])
        try log.checkpoint()
        var reopened = try VoteLog.open(path, limit: 4096).0
        for seq in 7...8 { try reopened.append(Self.round(seq)) }
        #expect(try Self.rounds(path) == ["r7", "r8"])
    }

    /// The records fill the limit: a checkpoint is due. A round larger than the space left is
    /// written whole, past the limit.
    @Test func theLogIsFullOnceItsRecordsReachTheLimit() throws {
        let path = Self.path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var log = try VoteLog.open(path, limit: 512).0
        try log.append(Self.round(1))
        #expect(!log.isFull)
        try log.append(Self.round(2, size: 600))
        #expect(log.isFull)
        #expect(try Self.rounds(path) == ["r1", "r2"])
    }

    /// A whole record (its checksum matches) that this version cannot read refuses the start:
    /// an undecided round must not be dropped unseen.
    @Test func aWholeRecordThisVersionCannotReadRefusesTheStart() throws {
        let path = Self.path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var log = try VoteLog.open(path, limit: 4096).0
        var unreadable = ReplicationWire.encode(Self.round(1))
        unreadable.setInteger(UInt8(9), at: 0)  // another layout
        try log.append(Self.round(1), encoded: unreadable)
        #expect {
            try VoteLog.open(path, limit: 4096)
        } throws: { error in
            (error as? ReplicatedError)?.code == .storage && "\(error)".contains("cannot read") && "\(error)".contains("not in layout 1")
        }
    }
}

extension VoteLog {
    /// Adds `round` in its wire form.
    fileprivate mutating func append(_ round: PreparedBatch) throws {
        try append(round, encoded: ReplicationWire.encode(round))
    }
}
