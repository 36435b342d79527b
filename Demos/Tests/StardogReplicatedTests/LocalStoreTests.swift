import Foundation
import Testing
import ZooKeeperTesting

@testable import StardogReplicated

@Suite struct LocalStoreTests {
    static func home() -> String {
        let path = NSTemporaryDirectory() + "replicated-store-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func t(_ value: String) -> Triple { Triple(.iri("urn:s:\(value)"), .iri("urn:p"), .literal(value)) }

    /// Prepares and commits one operation, as a member does in a round.
    static func run(_ store: LocalStore, _ operation: ClusterOperation) throws -> DatabaseVersion? {
        let previous = store.version(of: operation.database)
        let next: DatabaseVersion? =
            switch operation.kind {
            case .createDatabase: DatabaseVersion(seq: 0, txId: UUID().uuidString)
            case .transaction: DatabaseVersion(seq: previous!.seq + 1, txId: UUID().uuidString)
            case .dropDatabase: nil
            }
        let round = PreparedBatch(PreparedOperation(operation: operation, previous: previous, next: next))
        try store.prepare(round)
        try store.commitPrepared(round: round.round)
        return next
    }

    /// A log is folded into a snapshot once it is longer than the threshold and than its
    /// database, so a large database is not rewritten every few thousand transactions.
    @Test func aLogIsFoldedIntoASnapshotOnceLongerThanItsDatabase() throws {
        let home = Self.home()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let store = try LocalStore(home: home, compactionThreshold: 10)
        let log = home + "/databases/db/tx.log"
        func logLines() throws -> Int { try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").count }
        _ = try Self.run(store, ClusterOperation(kind: .createDatabase, database: "db"))
        // 30 transactions adding a triple each: as many log entries as triples, never folded.
        for value in 0..<30 {
            _ = try Self.run(store, ClusterOperation(kind: .transaction, database: "db", add: NTriples.serialize([Self.t("v\(value)")])))
        }
        #expect(try logLines() == 30)
        // Removing and re-adding one triple: the 31st entry is one more than the database's 29
        // triples and folds the log; the next ones start a new log.
        var lines: [Int] = []
        for step in 0..<4 {
            let triple = NTriples.serialize([Self.t("v0")])
            _ = try Self.run(store, ClusterOperation(kind: .transaction, database: "db", add: step % 2 == 1 ? triple : "", remove: step % 2 == 0 ? triple : ""))
            lines.append(try logLines())
        }
        #expect(lines == [0, 1, 2, 3])
        let reopened = try LocalStore(home: home, compactionThreshold: 10)
        #expect(reopened.version(of: "db") == store.version(of: "db"))
        #expect(try reopened.size(of: "db") == 30)
    }

    @Test func randomTransactionsMatchAModelAndSurviveAReopen() throws {
        var random = SeededRandomNumberGenerator(seed: 0x57a4d06)
        let home = Self.home()
        defer { try? FileManager.default.removeItem(atPath: home) }
        var store = try LocalStore(home: home)
        var model: [String: Set<Triple>] = [:]
        for step in 0..<400 {
            let database = ["one", "two"].randomElement(using: &random)!
            if model[database] == nil {
                _ = try Self.run(store, ClusterOperation(kind: .createDatabase, database: database))
                model[database] = []
                continue
            }
            if Int.random(in: 0..<60, using: &random) == 0 {
                _ = try Self.run(store, ClusterOperation(kind: .dropDatabase, database: database))
                model[database] = nil
                continue
            }
            var buffer = TransactionBuffer(database: database)
            var expected = model[database]!
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let triples = (0..<Int.random(in: 1...5, using: &random)).map { _ in Self.t("v\(Int.random(in: 0..<40, using: &random))") }
                if Bool.random(using: &random) {
                    buffer.add(triples, bytes: 1)
                    expected.formUnion(triples)
                } else {
                    buffer.remove(triples, bytes: 1)
                    expected.subtract(triples)
                }
            }
            let (add, remove) = buffer.netEffect
            _ = try Self.run(store, ClusterOperation(kind: .transaction, database: database, add: NTriples.serialize(add), remove: NTriples.serialize(remove)))
            model[database] = expected
            #expect(try Set(store.triples(in: database, subject: nil, predicate: nil, object: nil)) == expected, "step \(step)")
            if step % 97 == 0 { store = try LocalStore(home: home) }  // reopen: snapshot + log replay
        }
        let catalog = store.catalog
        store = try LocalStore(home: home)
        #expect(store.catalog == catalog)
        #expect(Set(catalog.keys) == Set(model.keys))
        for (database, triples) in model {
            #expect(try Set(store.triples(in: database, subject: nil, predicate: nil, object: nil)) == triples)
            #expect(try store.size(of: database) == triples.count)
        }
    }

    /// (A vote log of one byte checkpoints at every commit: the log alone holds the rounds.)
    @Test func aTornLastLogLineIsCutOffAndTheRestIsKept() throws {
        let home = Self.home()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let store = try LocalStore(home: home, voteLogLimit: 1)
        _ = try Self.run(store, ClusterOperation(kind: .createDatabase, database: "db"))
        let first = try Self.run(store, ClusterOperation(kind: .transaction, database: "db", add: NTriples.serialize([Self.t("a")])))
        _ = try Self.run(store, ClusterOperation(kind: .transaction, database: "db", add: NTriples.serialize([Self.t("b")])))
        let log = home + "/databases/db/tx.log"
        var data = try Data(contentsOf: URL(fileURLWithPath: log))
        data.removeLast(9)  // a crash in the middle of the last append
        try data.write(to: URL(fileURLWithPath: log))
        let reopened = try LocalStore(home: home, voteLogLimit: 1)
        #expect(reopened.version(of: "db") == first)
        #expect(try reopened.triples(in: "db", subject: nil, predicate: nil, object: nil) == [Self.t("a")])
        // The log goes on cleanly after the cut.
        _ = try Self.run(reopened, ClusterOperation(kind: .transaction, database: "db", add: NTriples.serialize([Self.t("c")])))
        #expect(try LocalStore(home: home, voteLogLimit: 1).size(of: "db") == 2)
    }

    /// An unreadable line with entries after it, where no round of the vote log can apply them
    /// again, is not a torn append: the store refuses to open, naming the log, instead of cutting
    /// off the acknowledged entries that follow.
    @Test func anUnreadableLogLineFollowedByEntriesIsRefused() throws {
        let home = Self.home()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let store = try LocalStore(home: home, voteLogLimit: 1)
        _ = try Self.run(store, ClusterOperation(kind: .createDatabase, database: "db"))
        _ = try Self.run(store, ClusterOperation(kind: .transaction, database: "db", add: NTriples.serialize([Self.t("a")])))
        _ = try Self.run(store, ClusterOperation(kind: .transaction, database: "db", add: NTriples.serialize([Self.t("b")])))
        let log = home + "/databases/db/tx.log"
        var data = try Data(contentsOf: URL(fileURLWithPath: log))
        let firstLineEnd = try #require(data.firstIndex(of: UInt8(ascii: "\n")))
        data.replaceSubrange(0..<firstLineEnd, with: Data("{\"seq\":".utf8))  // the first entry damaged
        try data.write(to: URL(fileURLWithPath: log))
        #expect {
            _ = try LocalStore(home: home, voteLogLimit: 1)
        } throws: { error in
            (error as? ReplicatedError)?.code == .storage && "\(error)".contains(log) && "\(error)".contains("entries follow it")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: log)) == data, "nothing was cut off")
    }

    /// A power loss in the middle of a round's append can leave its first entry zeroed and a
    /// later one whole. The store cuts the log where the vote log's rounds start, applies the
    /// committed ones again and keeps the last as the undecided vote, applied when it is decided.
    @Test func aRoundsAppendDamagedAtItsStartIsCutAndAppliedAgainFromTheVote() throws {
        let home = Self.home()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let store = try LocalStore(home: home)
        _ = try Self.run(store, ClusterOperation(kind: .createDatabase, database: "db"))
        let first = try #require(try Self.run(store, ClusterOperation(kind: .transaction, database: "db", add: NTriples.serialize([Self.t("a")]))))
        let (second, third) = (DatabaseVersion(seq: 2, txId: "t2"), DatabaseVersion(seq: 3, txId: "t3"))
        let round = PreparedBatch(operations: [
            PreparedOperation(operation: .init(kind: .transaction, database: "db", add: NTriples.serialize([Self.t("b")])), previous: first, next: second),
            PreparedOperation(operation: .init(kind: .transaction, database: "db", add: NTriples.serialize([Self.t("c")])), previous: second, next: third),
        ])
        try store.prepare(round)
        let log = home + "/databases/db/tx.log"
        let before = try Data(contentsOf: URL(fileURLWithPath: log))
        // The round's two entries as its commit appends them, the first of them zeroed on disk.
        var appended = Data(repeating: 0, count: 40)
        appended.append(UInt8(ascii: "\n"))
        appended.append(try JSONEncoder().encode(LocalStore.LogEntry(seq: 3, txId: "t3", add: NTriples.serialize([Self.t("c")]), remove: "")))
        appended.append(UInt8(ascii: "\n"))
        try (before + appended).write(to: URL(fileURLWithPath: log))
        let reopened = try LocalStore(home: home)
        #expect(reopened.version(of: "db") == first && reopened.prepared == round)
        #expect(try Data(contentsOf: URL(fileURLWithPath: log)) == before, "cut where the round's entries start")
        #expect(try reopened.resolvePrepared { _ in third } == true)
        #expect(reopened.version(of: "db") == third)
        #expect(try Set(LocalStore(home: home).triples(in: "db", subject: nil, predicate: nil, object: nil)) == [Self.t("a"), Self.t("b"), Self.t("c")])
    }

    @Test func aVoteSurvivesARestartAndIsDecidedFromTheRecord() throws {
        let home = Self.home()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let store = try LocalStore(home: home)
        let created = try Self.run(store, ClusterOperation(kind: .createDatabase, database: "db"))!
        let next = DatabaseVersion(seq: 1, txId: "t1")
        let operation = PreparedOperation(operation: .init(kind: .transaction, database: "db", add: NTriples.serialize([Self.t("a")])), previous: created, next: next)
        let vote = PreparedBatch(operation)
        try store.prepare(vote)
        // Another prepare cannot be taken while this one is undecided.
        #expect(throws: ReplicatedError.self) {
            try store.prepare(PreparedBatch(PreparedOperation(operation: operation.operation, previous: created, next: DatabaseVersion(seq: 1, txId: "t2"))))
        }

        let committed = try LocalStore(home: home)
        #expect(committed.prepared == vote)
        #expect(try committed.resolvePrepared { _ in next } == true)
        #expect(try committed.size(of: "db") == 1 && committed.version(of: "db") == next)

        try committed.prepare(
            PreparedBatch(PreparedOperation(operation: .init(kind: .transaction, database: "db", add: NTriples.serialize([Self.t("b")])), previous: next, next: DatabaseVersion(seq: 2, txId: "t2"))))
        let aborted = try LocalStore(home: home)
        #expect(try aborted.resolvePrepared { _ in next } == false)
        #expect(aborted.prepared == nil && aborted.version(of: "db") == next)
        #expect(try aborted.size(of: "db") == 1)
        #expect(try LocalStore(home: home).prepared == nil)
    }

    /// A commit appends its log lines without a sync; the vote log keeps its round until a
    /// checkpoint has synced the log. A power loss that keeps any part of the unsynced lines,
    /// some of it zeroed, loses nothing committed: the store opens with every committed round
    /// (the last one, when its lines are gone, as the undecided vote that the record decides).
    @Test func committedRoundsSurviveAPowerLossThatTakesTheUnsyncedLogLines() throws {
        var random = SeededRandomNumberGenerator(seed: 0x10551)
        let home = Self.home()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let limit = 2048
        var store = try LocalStore(home: home, voteLogLimit: limit)
        var last = try #require(try Self.run(store, ClusterOperation(kind: .createDatabase, database: "db")))
        let log = URL(fileURLWithPath: home + "/databases/db/tx.log")
        func logLength() -> Int { (try? Data(contentsOf: log).count) ?? 0 }
        var model: Set<Triple> = []
        var synced = 0  // what a power loss keeps of the log: its length at the last sync
        var (checkpoints, losses, undecided) = (0, 0, 0)
        for step in 0..<400 {
            let triple = Self.t("v\(Int.random(in: 0..<50, using: &random))")
            let adding = !model.contains(triple) || Bool.random(using: &random)
            let lines = NTriples.serialize([triple])
            last = try #require(try Self.run(store, ClusterOperation(kind: .transaction, database: "db", add: adding ? lines : "", remove: adding ? "" : lines)))
            if adding { model.insert(triple) } else { model.remove(triple) }
            if store.voteLogBytes == 0 {
                synced = logLength()
                checkpoints += 1
            }
            guard Int.random(in: 0..<8, using: &random) == 0 else { continue }
            losses += 1
            let data = try Data(contentsOf: log)
            var kept = data.prefix(Int.random(in: synced...data.count, using: &random))
            if kept.count > synced && Bool.random(using: &random) {  // pages written out of order
                let from = Int.random(in: synced..<kept.count, using: &random)
                let to = Int.random(in: from...kept.count, using: &random)
                kept.replaceSubrange(from..<to, with: Data(count: to - from))
            }
            try kept.write(to: log)
            store = try LocalStore(home: home, voteLogLimit: limit)
            synced = logLength()  // the log as opening left it: read, cut and replayed, synced
            if store.prepared != nil {
                undecided += 1
                #expect(try store.resolvePrepared { _ in last } == true, "step \(step)")
            }
            #expect(store.version(of: "db") == last, "step \(step)")
            #expect(Set(try store.triples(in: "db", subject: nil, predicate: nil, object: nil)) == model, "step \(step)")
        }
        #expect(checkpoints > 10 && losses > 20 && undecided > 0)
        let reopened = try LocalStore(home: home, voteLogLimit: limit)
        #expect(reopened.prepared == nil && reopened.version(of: "db") == last)
        #expect(Set(try reopened.triples(in: "db", subject: nil, predicate: nil, object: nil)) == model)
    }

    /// Rounds of many operations (transactions on two databases, creations and removals among
    /// them) planned by ``RoundPlan`` against the store's catalog, applied in one commit each:
    /// the store matches a model after every round and after a reopen.
    @Test func roundsOfManyOperationsMatchAModelAndSurviveAReopen() throws {
        var random = SeededRandomNumberGenerator(seed: 0xba7c4)
        let home = Self.home()
        defer { try? FileManager.default.removeItem(atPath: home) }
        var store = try LocalStore(home: home)
        var model: [String: Set<Triple>] = [:]
        for round in 0..<60 {
            var operations: [ClusterOperation] = []
            var expected = model
            for _ in 0..<Int.random(in: 1...40, using: &random) {
                let database = ["one", "two"].randomElement(using: &random)!
                switch Int.random(in: 0..<40, using: &random) {
                case 0:
                    operations.append(ClusterOperation(kind: .dropDatabase, database: database))
                    if expected[database] != nil { expected[database] = nil }
                case 1...3:
                    operations.append(ClusterOperation(kind: .createDatabase, database: database))
                    if expected[database] == nil { expected[database] = [] }
                default:
                    let add = (0..<Int.random(in: 0...3, using: &random)).map { _ in Self.t("\(Int.random(in: 0..<30, using: &random))") }
                    let remove = (0..<Int.random(in: 0...2, using: &random)).map { _ in Self.t("\(Int.random(in: 0..<30, using: &random))") }.filter { !add.contains($0) }
                    operations.append(ClusterOperation(kind: .transaction, database: database, add: NTriples.serialize(add), remove: NTriples.serialize(remove)))
                    if var triples = expected[database] {
                        triples.subtract(remove)
                        triples.formUnion(add)
                        expected[database] = triples
                    }
                }
            }
            var counter = 0
            let plan = RoundPlan.plan(operations, recorded: store.catalog) {
                counter += 1
                return "r\(round)-\(counter)"
            }
            let batch = PreparedBatch(operations: plan.prepared)
            try store.prepare(batch)
            try store.commitPrepared(round: batch.round)
            model = expected
            for (database, triples) in model {
                #expect(Set(try store.triples(in: database, subject: nil, predicate: nil, object: nil)) == triples, "round \(round), \(database)")
            }
            #expect(Set(store.catalog.keys) == Set(model.keys))
            #expect(batch.isCommitted { store.catalog[$0] })
            if round % 15 == 14 { store = try LocalStore(home: home) }
        }
        let reopened = try LocalStore(home: home)
        #expect(reopened.catalog == store.catalog)
        for (database, triples) in model {
            #expect(Set(try reopened.triples(in: database, subject: nil, predicate: nil, object: nil)) == triples)
        }
    }

    @Test func aPrepareAtTheWrongVersionOrWithBadTriplesIsRefused() throws {
        let home = Self.home()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let store = try LocalStore(home: home)
        let created = try Self.run(store, ClusterOperation(kind: .createDatabase, database: "db"))!
        let stale = DatabaseVersion(seq: 7, txId: "elsewhere")
        #expect {
            try store.prepare(PreparedBatch(PreparedOperation(operation: .init(kind: .transaction, database: "db"), previous: stale, next: DatabaseVersion(seq: 8, txId: "n"))))
        } throws: { ($0 as? ReplicatedError)?.code == .outOfSync }
        #expect {
            try store.prepare(
                PreparedBatch(PreparedOperation(operation: .init(kind: .transaction, database: "db", add: "not n-triples"), previous: created, next: DatabaseVersion(seq: 1, txId: "n"))))
        } throws: { ($0 as? ReplicatedError)?.code == .malformedRDF }
        #expect(store.prepared == nil)
        #expect(throws: ReplicatedError.self) { try store.size(of: "missing") }
    }

    @Test func installAndDropReplaceWholeDatabases() throws {
        let home = Self.home()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let store = try LocalStore(home: home)
        _ = try Self.run(store, ClusterOperation(kind: .createDatabase, database: "db"))
        _ = try Self.run(store, ClusterOperation(kind: .transaction, database: "db", add: NTriples.serialize([Self.t("old")])))
        let copied = DatabaseVersion(seq: 9, txId: "copied")
        try store.install("db", version: copied, ntriples: NTriples.serialize([Self.t("x"), Self.t("y")]))
        try store.install("other", version: DatabaseVersion(seq: 0, txId: "o"), ntriples: "")
        var reopened = try LocalStore(home: home)
        #expect(reopened.version(of: "db") == copied)
        #expect(reopened.prepared == nil, "the rounds from before the copy are not a vote")
        #expect(Set(try reopened.triples(in: "db", subject: nil, predicate: nil, object: nil)) == [Self.t("x"), Self.t("y")])
        try reopened.drop("db")
        reopened = try LocalStore(home: home)
        #expect(reopened.catalog.keys.sorted() == ["other"])
        #expect(throws: ReplicatedError.self) { try store.install("bad", version: copied, ntriples: "<a> <b> ") }
        #expect(try LocalStore(home: home).catalog.keys.sorted() == ["other"])
    }
}
