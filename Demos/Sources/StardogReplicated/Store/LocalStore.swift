import DemoSupport
import Foundation
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A node's databases on disk, and in memory for reads.
///
/// Layout under the home directory:
/// - `databases/<db>/snapshot.nt`: a header line `# replicated-snapshot {"seq":…,"txId":…}`, then
///   the triples as N-Triples (written when the database is created, installed by a sync, or compacted);
/// - `databases/<db>/tx.log`: one JSON line per transaction committed since the snapshot,
///   appended at the commit without a sync;
/// - `votes` (``VoteLog``): the rounds this node voted yes to since the logs were last synced,
///   each added and synced before its vote is answered. They keep the logs' unsynced lines: once
///   they fill the vote log, a commit syncs the logs and starts the vote log again.
///
/// A round of transactions costs one data sync, however many it carries and however many
/// databases they change (creating or dropping a database syncs its directory too).
///
/// Opening replays each log over its snapshot up to the first entry that a round in the vote log
/// holds, and applies the committed rounds from there: every round but the last (a prepare follows
/// only a decided round, and an abort erases its round), and the last when the logs showed it
/// whole (a crash came after its commit); otherwise the last is the undecided vote. Damage where
/// the rounds' entries are (a power loss can leave unsynced pages out of order) or in a last line
/// cut short is cut off; an unreadable line elsewhere refuses the start.
/// Changes are serialised; reads see a database between changes.
public final class LocalStore: Sendable {
    public let home: URL
    let databasesDirectory: URL
    /// ``databasesDirectory`` as a path (built once: every commit uses it).
    private let databasesPath: String
    /// A log longer than this, and longer than its database has triples, is folded into a new
    /// snapshot (so that writing snapshots costs a bounded amount per transaction however large
    /// the database grows).
    let compactionThreshold: Int

    struct Database: Sendable {
        var version: DatabaseVersion
        var triples: TripleSet
        var logEntries: Int
    }
    struct State: Sendable {
        var databases: [String: Database] = [:]
        var prepared: PreparedBatch? {
            didSet { preparedAt = prepared == nil ? nil : (oldValue == prepared ? preparedAt : .now) }
        }
        /// The triples of ``prepared``'s transactions, parsed when it was voted for (by position).
        var preparedTriples: [Int: ParsedChange] = [:]
        /// When this process took (or found) the vote.
        var preparedAt: ContinuousClock.Instant?
    }
    private let state = Mutex(State())
    /// Held across a change's disk writes and its memory update; the vote log is written under it.
    private let changing: Mutex<VoteLog>

    /// A transaction's triples, parsed.
    struct ParsedChange: Sendable {
        var add: [Triple]
        var remove: [Triple]
    }

    /// Opens (or creates) the store under `home`.
    /// - Parameters:
    ///   - compactionThreshold: the fewest log entries that are folded into a snapshot.
    ///   - voteLogLimit: the bytes of rounds in the vote log after which a commit syncs the logs
    ///     and starts the vote log again (the size of the vote log, which opening replays at most).
    public init(home: String, compactionThreshold: Int = 5000, voteLogLimit: Int = 4 << 20) throws {
        self.home = URL(fileURLWithPath: home)
        databasesDirectory = self.home.appendingPathComponent("databases")
        databasesPath = databasesDirectory.path
        self.compactionThreshold = compactionThreshold
        try FileManager.default.createDirectory(at: databasesDirectory, withIntermediateDirectories: true)
        let (votes, rounds) = try VoteLog.open(self.home.path + "/votes", limit: voteLogLimit)
        // What the rounds' transactions make of each database: its log is read up to the first of
        // them, and the rounds apply them again.
        var roundVersions: [String: Set<DatabaseVersion>] = [:]
        for round in rounds {
            for prepared in round.operations where prepared.operation.kind == .transaction {
                if let next = prepared.next { roundVersions[prepared.operation.database, default: []].insert(next) }
            }
        }
        var loaded = State()
        var shown: Catalog = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: databasesDirectory.path).sorted() {
            if name.hasPrefix(".") {  // an unfinished install or removal
                try? FileManager.default.removeItem(at: databasesDirectory.appendingPathComponent(name))
                continue
            }
            do { try DatabaseName.validate(name) } catch {
                throw ReplicatedError(.storage, "\(databasesDirectory.path)/\(name) is not a database: \(error)")
            }
            let opened = try Self.open(databasesDirectory.appendingPathComponent(name), roundVersions: roundVersions[name] ?? [])
            loaded.databases[name] = opened.database
            shown[name] = opened.shown
        }
        var committed = rounds.dropLast()
        if let last = rounds.last {
            if last.isCommitted(recorded: { shown[$0] }) { committed.append(last) } else { loaded.prepared = last }
        }
        try Self.replay(committed, into: &loaded.databases, databasesPath: databasesPath)
        changing = Mutex(votes)
        state.withLock { $0 = loaded }
    }

    // MARK: Reads

    /// Every database and its version.
    public var catalog: Catalog { state.withLock { $0.databases.mapValues(\.version) } }

    /// The round voted for and not yet decided.
    public var prepared: PreparedBatch? { state.withLock { $0.prepared } }

    /// The bytes of rounds in the vote log (0 right after a checkpoint).
    var voteLogBytes: Int { changing.withLock { $0.size } }

    /// Since when the vote has waited for its decision (in this process).
    public var preparedAt: ContinuousClock.Instant? { state.withLock { $0.preparedAt } }

    public func version(of database: String) -> DatabaseVersion? { state.withLock { $0.databases[database]?.version } }

    public func size(of database: String) throws -> Int {
        try state.withLock { state in
            guard let db = state.databases[database] else { throw Self.unknown(database) }
            return db.triples.count
        }
    }

    public func triples(in database: String, subject: RDFTerm?, predicate: RDFTerm?, object: RDFTerm?) throws -> [Triple] {
        let triples = try state.withLock { state -> TripleSet in
            guard let db = state.databases[database] else { throw Self.unknown(database) }
            return db.triples
        }
        return triples.matching(subject: subject, predicate: predicate, object: object)
    }

    /// The database as one consistent copy: its version and its triples as N-Triples.
    public func snapshot(of database: String) throws -> (DatabaseVersion, String) {
        let (version, triples) = try state.withLock { state -> (DatabaseVersion, TripleSet) in
            guard let db = state.databases[database] else { throw Self.unknown(database) }
            return (db.version, db.triples)
        }
        return (version, NTriples.serialize(triples.allTriples))
    }

    // MARK: Two-phase commit

    /// Votes yes to the round `prepared` after checking that this node can apply every operation
    /// of it in order, and records the vote on disk (one write). An undecided earlier vote must be
    /// resolved first.
    /// - Parameter encoded: `prepared` as ``ReplicationWire`` encodes it, when the caller has it
    ///   already (a coordinator's prepare request is that): the vote is written as it is instead of
    ///   encoded again.
    public func prepare(_ prepared: PreparedBatch, encoded: ByteBuffer? = nil) throws {
        try changing.withLock { votes in
            let (catalog, pending) = state.withLock { ($0.databases.mapValues(\.version), $0.prepared) }
            if let pending {
                if pending == prepared { return }  // the same prepare again
                throw ReplicatedError(.outOfSync, "an earlier round (\(pending.round)) is still undecided here")
            }
            var current = catalog
            var parsed: [Int: ParsedChange] = [:]
            for (position, operation) in prepared.operations.enumerated() {
                let database = operation.operation.database
                guard current[database] == operation.previous else {
                    throw ReplicatedError(
                        .outOfSync,
                        "database \(database) is at \(current[database].map(\.description) ?? "nothing") here, the coordinator expects \(operation.previous.map(\.description) ?? "nothing")")
                }
                if operation.operation.kind == .transaction {  // it must parse here too (and is applied as parsed now)
                    parsed[position] = ParsedChange(add: try Self.parse(operation.operation.add), remove: try Self.parse(operation.operation.remove))
                }
                current[database] = operation.next
            }
            try votes.append(prepared, encoded: encoded ?? ReplicationWire.encode(prepared))
            state.withLock {
                $0.prepared = prepared
                $0.preparedTriples = parsed
            }
        }
    }

    /// Applies the prepared round `round` (the coordinator's decision). Its log lines are not
    /// synced: its record in the vote log keeps them. Once the vote log is full, the logs are
    /// synced and the vote log starts again (a checkpoint).
    /// - Returns: why folding a log into a snapshot or the checkpoint failed, when one did after
    ///   the round was applied (the round stands; the next commit tries again).
    @discardableResult
    public func commitPrepared(round: String) throws -> (any Error)? {
        try changing.withLock { votes in
            guard let (prepared, parsed) = state.withLock({ state in state.prepared.map { ($0, state.preparedTriples) } }), prepared.round == round else {
                throw ReplicatedError(.outOfSync, "no prepared operation for round \(round)")
            }
            let folding = try apply(prepared, parsed: parsed)
            state.withLock {
                $0.prepared = nil
                $0.preparedTriples = [:]
            }
            do {
                try compact(folding)
                if votes.isFull { try checkpoint(&votes) }
                return nil
            } catch {
                return error
            }
        }
    }

    /// Forgets the prepared round `round` (the coordinator aborted it); a vote of another round is
    /// left alone.
    public func abortPrepared(round: String) throws {
        try changing.withLock { votes in
            guard state.withLock({ $0.prepared?.round == round }) else { return }
            // Its record is erased: left in the vote log, it would be decided again at the next
            // start, and a round that only drops databases looks committed against a record
            // that has none of them.
            try votes.eraseLast()
            state.withLock {
                $0.prepared = nil
                $0.preparedTriples = [:]
            }
        }
    }

    /// Decides an undecided vote from what ZooKeeper records for its databases (the record is the
    /// commit point). Returns whether it was committed, `nil` when there was nothing to decide.
    @discardableResult
    public func resolvePrepared(recorded: (String) -> DatabaseVersion?) throws -> Bool? {
        guard let prepared else { return nil }
        if prepared.isCommitted(recorded: recorded) {
            try commitPrepared(round: prepared.round)
            return true
        }
        try abortPrepared(round: prepared.round)
        return false
    }

    // MARK: Sync

    /// Replaces (or creates) `database` with a copy taken from another member.
    public func install(_ database: String, version: DatabaseVersion, ntriples: String) throws {
        let triples = TripleSet(try Self.parse(ntriples))
        try changing.withLock { votes in
            let staging = databasesDirectory.appendingPathComponent(".install-\(database)")
            try? FileManager.default.removeItem(at: staging)
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
            try Self.writeSnapshot(version: version, triples: ntriples, in: staging)
            try replaceDirectory(of: database, with: staging)
            state.withLock { $0.databases[database] = Database(version: version, triples: triples, logEntries: 0) }
            try checkpointAfterACopy(&votes)
        }
    }

    /// Removes a database this node has and the cluster does not.
    public func drop(_ database: String) throws {
        try changing.withLock { votes in
            try replaceDirectory(of: database, with: nil)
            state.withLock { $0.databases[database] = nil }
            try checkpointAfterACopy(&votes)
        }
    }

    /// Checkpoints once a sync changed a database: the vote log's rounds are older than the copy,
    /// and its last would no longer show as committed at the next start. An undecided vote stays
    /// (it is decided from ZooKeeper's record first). Call holding `changing`.
    private func checkpointAfterACopy(_ votes: inout VoteLog) throws {
        guard state.withLock({ $0.prepared == nil }) else { return }
        try checkpoint(&votes)
    }

    // MARK: Applying

    /// Applies a round's operations in order. Creations and removals of databases are made on disk
    /// as they come, synced; the transactions' log lines are gathered per database and appended
    /// without a sync (the round's record in the vote log keeps them). Only then does the round
    /// show in memory, where each database's triples are changed in place (a copy of a whole
    /// database per transaction would make a commit cost grow with the database).
    /// - Returns: the databases whose logs are now long enough to fold into a snapshot.
    /// - Parameter parsed: the transactions' triples parsed already, by position (the others are
    ///   parsed here).
    private func apply(_ batch: PreparedBatch, parsed: [Int: ParsedChange] = [:]) throws -> [String] {
        enum Change {
            case create(DatabaseVersion)
            case drop
            case transaction(DatabaseVersion, add: [Triple], remove: [Triple])
        }
        var changes: [(database: String, change: Change)] = []
        var lines: [String: [UInt8]] = [:]
        for (position, prepared) in batch.operations.enumerated() {
            let operation = prepared.operation
            let database = operation.database
            switch operation.kind {
            case .createDatabase:
                guard let next = prepared.next else { continue }
                let staging = databasesDirectory.appendingPathComponent(".create-\(database)")
                try? FileManager.default.removeItem(at: staging)
                try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
                try Self.writeSnapshot(version: next, triples: "", in: staging)
                try replaceDirectory(of: database, with: staging)
                lines[database] = nil  // a new log
                changes.append((database, .create(next)))
            case .dropDatabase:
                try replaceDirectory(of: database, with: nil)
                lines[database] = nil  // the log they were for is gone
                changes.append((database, .drop))
            case .transaction:
                guard let next = prepared.next else { throw Self.unknown(database) }
                LogEntry(seq: next.seq, txId: next.txId, add: operation.add, remove: operation.remove).appendLine(to: &lines[database, default: []])
                let change = try parsed[position] ?? ParsedChange(add: Self.parse(operation.add), remove: Self.parse(operation.remove))
                changes.append((database, .transaction(next, add: change.add, remove: change.remove)))
            }
        }
        for (database, data) in lines.sorted(by: { $0.key < $1.key }) {
            try Self.durably { try DurableFile.append(data, to: databasesPath + "/" + database + "/tx.log", sync: false) }
        }
        return try state.withLock { state -> [String] in
            for (database, change) in changes {
                switch change {
                case .create(let version): state.databases[database] = Database(version: version, triples: TripleSet(), logEntries: 0)
                case .drop: state.databases[database] = nil
                case .transaction(let version, let add, let remove):
                    guard state.databases[database] != nil else { throw Self.unknown(database) }
                    state.databases[database]!.triples.apply(add: add, remove: remove)
                    state.databases[database]!.version = version
                    state.databases[database]!.logEntries += 1
                }
            }
            return state.databases.filter { $0.value.logEntries > max(compactionThreshold, $0.value.triples.count) }.keys.sorted()
        }
    }

    /// Syncs the logs the vote log's rounds wrote to, then starts the vote log again: its rounds
    /// are durable in the logs now. Call holding `changing`.
    private func checkpoint(_ votes: inout VoteLog) throws {
        for database in votes.databases.sorted() {
            let log = databasesPath + "/" + database + "/tx.log"
            guard FileManager.default.fileExists(atPath: log) else { continue }  // dropped since
            try Self.durably { try DurableFile.sync(log) }
        }
        try votes.checkpoint()
    }

    /// Applies the transactions of committed rounds that the databases, read up to the rounds'
    /// first entries, do not show yet (those whose previous version is the database's), and
    /// appends them to the logs, synced. A creation or removal of a database was synced at its
    /// commit and is on disk already.
    private static func replay(_ rounds: some Sequence<PreparedBatch>, into databases: inout [String: Database], databasesPath: String) throws {
        var lines: [String: [UInt8]] = [:]
        for round in rounds {
            for prepared in round.operations where prepared.operation.kind == .transaction {
                let operation = prepared.operation
                guard let next = prepared.next, databases[operation.database]?.version == prepared.previous else { continue }
                databases[operation.database]!.triples.apply(add: try parse(operation.add), remove: try parse(operation.remove))
                databases[operation.database]!.version = next
                databases[operation.database]!.logEntries += 1
                LogEntry(seq: next.seq, txId: next.txId, add: operation.add, remove: operation.remove).appendLine(to: &lines[operation.database, default: []])
            }
        }
        for (database, data) in lines.sorted(by: { $0.key < $1.key }) {
            try durably { try DurableFile.append(data, to: databasesPath + "/" + database + "/tx.log") }
        }
    }

    /// Folds each database's log into a new snapshot (the log starts again empty). Call holding
    /// `changing`.
    private func compact(_ databases: [String]) throws {
        for database in databases {
            guard let db = state.withLock({ $0.databases[database] }) else { continue }
            let directory = databasesDirectory.appendingPathComponent(database)
            try Self.writeSnapshot(version: db.version, triples: NTriples.serialize(db.triples.allTriples), in: directory)
            try Self.durably { try DurableFile.replace(directory.appendingPathComponent("tx.log").path, with: Data()) }
            state.withLock { $0.databases[database]?.logEntries = 0 }
        }
    }

    /// Moves `staging` (or nothing) into the database's place, durably.
    private func replaceDirectory(of database: String, with staging: URL?) throws {
        let target = databasesDirectory.appendingPathComponent(database)
        let trash = databasesDirectory.appendingPathComponent(".removed-\(database)-\(UUID().uuidString)")
        if FileManager.default.fileExists(atPath: target.path) { try FileManager.default.moveItem(at: target, to: trash) }
        if let staging { try FileManager.default.moveItem(at: staging, to: target) }
        try Self.durably { try DurableFile.syncDirectory(databasesDirectory.path) }
        try? FileManager.default.removeItem(at: trash)
    }

    // MARK: Files

    static func unknown(_ database: String) -> ReplicatedError {
        ReplicatedError(.unknownDatabase, "unknown database '\(database)'")
    }

    static func parse(_ ntriples: String) throws -> [Triple] {
        do { return try NTriples.parse(ntriples) } catch { throw ReplicatedError(.malformedRDF, "\(error)") }
    }

    static let snapshotHeader = "# replicated-snapshot "

    static func writeSnapshot(version: DatabaseVersion, triples: String, in directory: URL) throws {
        var data = Data(snapshotHeader.utf8)
        data.append(try JSONEncoder().encode(version))
        data.append(UInt8(ascii: "\n"))
        data.append(Data(triples.utf8))
        try durably { try DurableFile.replace(directory.appendingPathComponent("snapshot.nt").path, with: data) }
    }

    /// Reads a database directory: its snapshot, then its log up to the first entry that makes
    /// one of `roundVersions` (the rest is applied again from the vote log's rounds) and cuts the
    /// log there. Damage is cut off too, where it may be a torn append: a last line cut short, or
    /// an unreadable line where the rounds' entries are (unsynced, a power loss can leave their
    /// pages on disk out of order). Any other unreadable line refuses the start.
    /// - Returns: the database as read, and the version the whole readable log shows (whether
    ///   the last round's entries were all there).
    static func open(_ directory: URL, roundVersions: Set<DatabaseVersion> = []) throws -> (database: Database, shown: DatabaseVersion) {
        let snapshotPath = directory.appendingPathComponent("snapshot.nt").path
        guard let snapshot = FileManager.default.contents(atPath: snapshotPath), let text = String(data: snapshot, encoding: .utf8),
            let headerEnd = text.firstIndex(of: "\n"), text.hasPrefix(snapshotHeader),
            var version = try? JSONDecoder().decode(DatabaseVersion.self, from: Data(text[text.index(text.startIndex, offsetBy: snapshotHeader.count)..<headerEnd].utf8))
        else {
            throw ReplicatedError(.storage, "\(snapshotPath) is missing or has no snapshot header")
        }
        var triples = TripleSet(try parse(String(text[text.index(after: headerEnd)...])))
        let logURL = directory.appendingPathComponent("tx.log")
        let log = FileManager.default.contents(atPath: logURL.path) ?? Data()
        var entries = 0
        var shown = version
        var cut: Int?
        var offset = 0
        while offset < log.count {
            let newline = log[offset...].firstIndex(of: UInt8(ascii: "\n"))
            guard let newline, let entry = try? JSONDecoder().decode(LogEntry.self, from: log[offset..<newline]) else {
                guard cut != nil || newline.map({ $0 + 1 == log.count }) ?? true || roundVersions.contains(where: { $0.seq == shown.seq + 1 }) else {
                    throw ReplicatedError(.storage, "\(logURL.path): the entry at byte \(offset) is unreadable and entries follow it")
                }
                cut = cut ?? offset
                break
            }
            if entry.seq > shown.seq {
                guard entry.seq == shown.seq + 1 else {
                    if cut != nil { break }  // the rounds' part, out of order on disk
                    throw ReplicatedError(.storage, "\(logURL.path): transaction \(entry.seq) follows \(shown.seq)")
                }
                shown = DatabaseVersion(seq: entry.seq, txId: entry.txId)
                if cut == nil && roundVersions.contains(shown) { cut = offset }
                if cut == nil {
                    triples.apply(add: try parse(entry.add), remove: try parse(entry.remove))
                    version = shown
                    entries += 1
                }
            }
            offset = newline + 1
        }
        if let cut, cut < log.count {
            let handle = try FileHandle(forWritingTo: logURL)
            defer { try? handle.close() }
            try handle.truncate(atOffset: UInt64(cut))
        }
        return (Database(version: version, triples: triples, logEntries: entries), shown)
    }

    /// Runs a ``DurableFile`` write, its failure a storage error.
    static func durably(_ body: () throws -> Void) throws {
        do { try body() } catch let failure as DurableFile.Failure { throw ReplicatedError(.storage, failure.description) }
    }
}
