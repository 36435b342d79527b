import DemoSupport
import Foundation
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
///   appended and fsynced before the commit is acknowledged;
/// - `prepared.json`: the operation this node voted yes to and has no decision for yet, fsynced
///   before the vote.
///
/// Opening replays each log over its snapshot; a torn last line (a crash mid-append, never
/// acknowledged) is cut off. Changes are serialised; reads see a database between changes.
public final class LocalStore: Sendable {
    public let home: URL
    var databasesDirectory: URL { home.appendingPathComponent("databases") }
    var preparedFile: URL { home.appendingPathComponent("prepared.json") }
    /// A log longer than this is folded into a new snapshot.
    static let compactionThreshold = 5000

    struct Database: Sendable {
        var version: DatabaseVersion
        var triples: TripleSet
        var logEntries: Int
    }
    struct State: Sendable {
        var databases: [String: Database] = [:]
        var prepared: PreparedOperation? {
            didSet { preparedAt = prepared == nil ? nil : (oldValue == prepared ? preparedAt : .now) }
        }
        /// When this process took (or found) the vote.
        var preparedAt: ContinuousClock.Instant?
    }
    private let state = Mutex(State())
    /// Held across a change's disk writes and its memory update.
    private let changing = Mutex(())

    struct LogEntry: Codable {
        var seq: Int
        var txId: String
        var add: String
        var remove: String
    }

    /// Opens (or creates) the store under `home`.
    public init(home: String) throws {
        self.home = URL(fileURLWithPath: home)
        try FileManager.default.createDirectory(at: databasesDirectory, withIntermediateDirectories: true)
        var loaded = State()
        for name in try FileManager.default.contentsOfDirectory(atPath: databasesDirectory.path).sorted() {
            if name.hasPrefix(".") {  // an unfinished install or removal
                try? FileManager.default.removeItem(at: databasesDirectory.appendingPathComponent(name))
                continue
            }
            do { try DatabaseName.validate(name) } catch {
                throw ReplicatedError(.storage, "\(databasesDirectory.path)/\(name) is not a database: \(error)")
            }
            loaded.databases[name] = try Self.open(databasesDirectory.appendingPathComponent(name))
        }
        if let data = FileManager.default.contents(atPath: preparedFile.path) {
            do { loaded.prepared = try JSONDecoder().decode(PreparedOperation.self, from: data) } catch {
                throw ReplicatedError(.storage, "\(preparedFile.path) is unreadable: \(error)")
            }
        }
        state.withLock { $0 = loaded }
    }

    // MARK: Reads

    /// Every database and its version.
    public var catalog: Catalog { state.withLock { $0.databases.mapValues(\.version) } }

    /// The operation voted for and not yet decided.
    public var prepared: PreparedOperation? { state.withLock { $0.prepared } }

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
        return (version, NTriples.serialize(Array(triples.all)))
    }

    // MARK: Two-phase commit

    /// Votes yes to `prepared` after checking this node can apply it, and records the vote on
    /// disk. An undecided earlier vote must be resolved first.
    public func prepare(_ prepared: PreparedOperation) throws {
        try changing.withLock { _ in
            let (current, pending) = state.withLock { ($0.databases[prepared.operation.database]?.version, $0.prepared) }
            if let pending {
                if pending == prepared { return }  // the same prepare again
                throw ReplicatedError(.outOfSync, "an earlier operation on \(pending.operation.database) is still undecided")
            }
            guard current == prepared.previous else {
                throw ReplicatedError(
                    .outOfSync,
                    "database \(prepared.operation.database) is at \(current.map(\.description) ?? "nothing") here, the coordinator expects \(prepared.previous.map(\.description) ?? "nothing")")
            }
            if prepared.operation.kind == .transaction {  // it must parse here too
                _ = try Self.parse(prepared.operation.add)
                _ = try Self.parse(prepared.operation.remove)
            }
            try Self.durably { try DurableFile.replace(preparedFile.path, with: JSONEncoder().encode(prepared)) }
            state.withLock { $0.prepared = prepared }
        }
    }

    /// Applies the prepared operation of `round` (the coordinator's decision).
    public func commitPrepared(round: String) throws {
        try changing.withLock { _ in
            guard let prepared = state.withLock({ $0.prepared }), prepared.round == round else {
                throw ReplicatedError(.outOfSync, "no prepared operation for round \(round)")
            }
            try apply(prepared)
            try Self.durably { try DurableFile.remove(preparedFile.path) }
            state.withLock { $0.prepared = nil }
        }
    }

    /// Forgets the prepared operation of `round` (the coordinator aborted it); a vote of another
    /// round is left alone.
    public func abortPrepared(round: String) throws {
        try changing.withLock { _ in
            guard state.withLock({ $0.prepared?.round == round }) else { return }
            try Self.durably { try DurableFile.remove(preparedFile.path) }
            state.withLock { $0.prepared = nil }
        }
    }

    /// Decides an undecided vote from what ZooKeeper records for its database (the record is the
    /// commit point). Returns whether it was committed, `nil` when there was nothing to decide.
    @discardableResult
    public func resolvePrepared(recorded: (String) -> DatabaseVersion?) throws -> Bool? {
        guard let prepared else { return nil }
        if prepared.isCommitted(recorded: recorded(prepared.operation.database)) {
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
        try changing.withLock { _ in
            let staging = databasesDirectory.appendingPathComponent(".install-\(database)")
            try? FileManager.default.removeItem(at: staging)
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
            try Self.writeSnapshot(version: version, triples: ntriples, in: staging)
            try replaceDirectory(of: database, with: staging)
            state.withLock { $0.databases[database] = Database(version: version, triples: triples, logEntries: 0) }
        }
    }

    /// Removes a database this node has and the cluster does not.
    public func drop(_ database: String) throws {
        try changing.withLock { _ in
            try replaceDirectory(of: database, with: nil)
            state.withLock { $0.databases[database] = nil }
        }
    }

    // MARK: Applying

    private func apply(_ prepared: PreparedOperation) throws {
        let operation = prepared.operation
        switch operation.kind {
        case .createDatabase:
            guard let next = prepared.next else { return }
            let staging = databasesDirectory.appendingPathComponent(".create-\(operation.database)")
            try? FileManager.default.removeItem(at: staging)
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
            try Self.writeSnapshot(version: next, triples: "", in: staging)
            try replaceDirectory(of: operation.database, with: staging)
            state.withLock { $0.databases[operation.database] = Database(version: next, triples: TripleSet(), logEntries: 0) }
        case .dropDatabase:
            try replaceDirectory(of: operation.database, with: nil)
            state.withLock { $0.databases[operation.database] = nil }
        case .transaction:
            guard let next = prepared.next, var db = state.withLock({ $0.databases[operation.database] }) else {
                throw Self.unknown(operation.database)
            }
            let add = try Self.parse(operation.add)
            let remove = try Self.parse(operation.remove)
            let directory = databasesDirectory.appendingPathComponent(operation.database)
            let entry = LogEntry(seq: next.seq, txId: next.txId, add: operation.add, remove: operation.remove)
            var line = try JSONEncoder().encode(entry)
            line.append(UInt8(ascii: "\n"))
            try Self.durably { try DurableFile.append(line, to: directory.appendingPathComponent("tx.log").path) }
            db.triples.apply(add: add, remove: remove)
            db.version = next
            db.logEntries += 1
            if db.logEntries > Self.compactionThreshold {
                try Self.writeSnapshot(version: next, triples: NTriples.serialize(Array(db.triples.all)), in: directory)
                try Self.durably { try DurableFile.replace(directory.appendingPathComponent("tx.log").path, with: Data()) }
                db.logEntries = 0
            }
            let updated = db
            state.withLock { $0.databases[operation.database] = updated }
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

    /// Reads a database directory: its snapshot, then its log (cutting off a torn last line).
    static func open(_ directory: URL) throws -> Database {
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
        var offset = 0
        while offset < log.count {
            guard let newline = log[offset...].firstIndex(of: UInt8(ascii: "\n")),
                let entry = try? JSONDecoder().decode(LogEntry.self, from: log[offset..<newline])
            else {
                // A torn append (no newline, or cut mid-line) can only be the last one.
                try FileHandle(forWritingTo: logURL).truncate(atOffset: UInt64(offset))
                break
            }
            if entry.seq > version.seq {
                guard entry.seq == version.seq + 1 else { throw ReplicatedError(.storage, "\(logURL.path): transaction \(entry.seq) follows \(version.seq)") }
                triples.apply(add: try parse(entry.add), remove: try parse(entry.remove))
                version = DatabaseVersion(seq: entry.seq, txId: entry.txId)
                entries += 1
            }
            offset = newline + 1
        }
        return Database(version: version, triples: triples, logEntries: entries)
    }

    /// Runs a ``DurableFile`` write, its failure a storage error.
    static func durably(_ body: () throws -> Void) throws {
        do { try body() } catch let failure as DurableFile.Failure { throw ReplicatedError(.storage, failure.description) }
    }
}
