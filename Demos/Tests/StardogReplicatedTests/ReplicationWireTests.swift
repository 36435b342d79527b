import Foundation
import NIOCore
import Testing
import ZooKeeperTesting

@testable import StardogReplicated

/// What members send each other on every round (``ReplicationWire``) and the log lines they
/// write (``LocalStore/LogEntry``), as pure functions over many random values.
@Suite struct ReplicationWireTests {
    static func text(_ random: inout SeededRandomNumberGenerator) -> String {
        String((0..<Int.random(in: 0..<12, using: &random)).map { _ in "ab Z\"\\<>.\n\r\t\u{0}\u{1}\u{1f}\u{7f}é😀\u{2028}".randomElement(using: &random)! })
    }

    static func version(_ random: inout SeededRandomNumberGenerator) -> DatabaseVersion? {
        Bool.random(using: &random) ? DatabaseVersion(seq: Int.random(in: 0...(1 << 40), using: &random), txId: text(&random)) : nil
    }

    static func operation(_ random: inout SeededRandomNumberGenerator) -> ClusterOperation {
        ClusterOperation(
            kind: [.transaction, .createDatabase, .dropDatabase].randomElement(using: &random)!, database: text(&random), add: text(&random),
            remove: text(&random))
    }

    static func batch(_ random: inout SeededRandomNumberGenerator) -> PreparedBatch {
        PreparedBatch(
            operations: (0..<Int.random(in: 0...6, using: &random)).map { _ in
                PreparedOperation(operation: operation(&random), previous: version(&random), next: version(&random))
            },
            round: text(&random), fencingToken: Int64.random(in: .min ... .max, using: &random))
    }

    @Test func randomRoundsDecisionsOperationsAndOutcomesSurviveTheWire() throws {
        var random = SeededRandomNumberGenerator(seed: 0x3e91)
        for _ in 0..<500 {
            let batch = Self.batch(&random)
            #expect(try ReplicationWire.decodeBatch(ReplicationWire.encode(batch)) == batch)
            let decision = RoundDecision(round: batch.round)
            #expect(try ReplicationWire.decodeDecision(ReplicationWire.encode(decision)) == decision)
            let operations = (0..<Int.random(in: 0...5, using: &random)).map { _ in Self.operation(&random) }
            #expect(try ReplicationWire.decodeOperations(ReplicationWire.encode(operations)) == operations)
            let outcomes = (0..<Int.random(in: 0...5, using: &random)).map { _ in
                Bool.random(using: &random)
                    ? OperationOutcome(next: Self.version(&random)) : OperationOutcome(error: ErrorBody(code: Self.text(&random), message: Self.text(&random)))
            }
            #expect(try ReplicationWire.decodeOutcomes(ReplicationWire.encode(outcomes)) == outcomes)
        }
    }

    /// A round's framing stays within what ``ReplicationWire/weight(of:)`` counts for it, so a
    /// round of at most ``StardogHTTP/maxBody`` by weight fits in what members accept.
    @Test func aRoundsBytesStayWithinItsWeight() {
        var random = SeededRandomNumberGenerator(seed: 0x77e1)
        for _ in 0..<200 {
            let operations = (0..<Int.random(in: 1...20, using: &random)).map { _ in
                let name = "db" + String(repeating: "x", count: Int.random(in: 0...62, using: &random))
                let uuid = UUID().uuidString.lowercased()
                return PreparedOperation(
                    operation: ClusterOperation(kind: .transaction, database: name, add: Self.text(&random), remove: Self.text(&random)),
                    previous: DatabaseVersion(seq: Int.random(in: 0...(1 << 50), using: &random), txId: uuid),
                    next: DatabaseVersion(seq: Int.random(in: 0...(1 << 50), using: &random), txId: uuid))
            }
            let batch = PreparedBatch(operations: operations, round: UUID().uuidString, fencingToken: .max)
            #expect(ReplicationWire.encode(batch).readableBytes <= 64 + operations.reduce(0) { $0 + ReplicationWire.weight(of: $1.operation) })
        }
    }

    /// Every cut-short copy of a round or a decision, one with a byte too many, another layout
    /// and an unknown operation kind are refused as a malformed request that says what is wrong.
    @Test func aDamagedMessageIsRefusedWithAReason() throws {
        var random = SeededRandomNumberGenerator(seed: 0xdead)
        var batch = Self.batch(&random)
        batch.operations.append(PreparedOperation(operation: Self.operation(&random), previous: nil, next: nil))
        let whole = ReplicationWire.encode(batch)
        func refused(_ bytes: ByteBuffer, saying words: String, by decode: (ByteBuffer) throws -> Void = { _ = try ReplicationWire.decodeBatch($0) }) -> Bool {
            do {
                try decode(bytes)
                return false
            } catch let error as ReplicatedError {
                return error.code == .malformedRequest && error.message.contains(words)
            } catch {
                return false
            }
        }
        for length in 0..<whole.readableBytes {
            #expect(refused(whole.getSlice(at: 0, length: length)!, saying: "a round's prepare"), "cut at \(length)")
        }
        var longer = whole
        longer.writeInteger(UInt8(0))
        #expect(refused(longer, saying: "1 bytes too many"))
        var otherLayout = whole
        otherLayout.setInteger(UInt8(9), at: 0)
        #expect(refused(otherLayout, saying: "not in layout 1"))
        var unknownKind = ReplicationWire.encode(PreparedBatch(operations: [PreparedOperation(operation: .init(kind: .transaction, database: "db"), previous: nil, next: nil)], round: "r"))
        unknownKind.setInteger(UInt8(7), at: 1 + 8 + 4 + 1 + 4)  // layout, token, round, count
        #expect(refused(unknownKind, saying: "operation kind 7"))

        let decision = ReplicationWire.encode(RoundDecision(round: batch.round))
        let decodeDecision: (ByteBuffer) throws -> Void = { _ = try ReplicationWire.decodeDecision($0) }
        for length in 0..<decision.readableBytes {
            #expect(refused(decision.getSlice(at: 0, length: length)!, saying: "a round's decision", by: decodeDecision), "cut at \(length)")
        }
        var longerDecision = decision
        longerDecision.writeInteger(UInt8(0))
        #expect(refused(longerDecision, saying: "1 bytes too many", by: decodeDecision))
    }

    /// Log lines written by hand read back as the same entries with `JSONDecoder`, one line each.
    @Test func logLinesReadBackAsTheirEntries() throws {
        var random = SeededRandomNumberGenerator(seed: 0x10e)
        for _ in 0..<500 {
            let entry = LocalStore.LogEntry(
                seq: Int.random(in: 0...(1 << 53), using: &random), txId: Self.text(&random), add: Self.text(&random), remove: Self.text(&random))
            var line: [UInt8] = []
            entry.appendLine(to: &line)
            #expect(line.last == UInt8(ascii: "\n") && line.filter { $0 == UInt8(ascii: "\n") }.count == 1)
            #expect(try JSONDecoder().decode(LocalStore.LogEntry.self, from: Data(line.dropLast())) == entry)
        }
    }
}
