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
///   appended and fsynced before the commit is acknowledged;
/// - `vote`: the round (its operations, as ``ReplicationWire`` writes them, after its length and
///   FNV-1a checksum) this node voted yes to, written over the last one in place and synced
///   before the vote is answered. A decided vote's length is set to 0: without a sync after a
///   commit (a vote left on disk by a crash after its commit shows as applied when the store
///   opens), with one after an abort.
///
/// A round costs one fsync for the vote and, at its commit, one per database log it appends to,
/// however many transactions it carries.
///
/// Opening replays each log over its snapshot; a torn append (a crash mid-append, never
/// acknowledged) is cut off: a last line cut short, or damage from where the entries of the round
/// still voted for start (they are applied again from the vote). A torn vote (a crash while it
/// was written, before it was answered) is no vote. Other damage is refused.
/// Changes are serialised; reads see a database between changes.
public final class LocalStore: Sendable {
    public let home: URL
    let databasesDirectory: URL
    /// ``databasesDirectory`` and the vote file as paths (built once: every commit uses them).
    private let databasesPath: String
    let voteFile: String
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
    /// Held across a change's disk writes and its memory update.
    private let changing = Mutex(())

    /// A transaction's triples, parsed.
    struct ParsedChange: Sendable {
        var add: [Triple]
        var remove: [Triple]
    }

    /// Opens (or creates) the store under `home`.
    /// - Parameter compactionThreshold: the fewest log entries that are folded into a snapshot.
    public init(home: String, compactionThreshold: Int = 5000) throws {
        self.home = URL(fileURLWithPath: home)
        databasesDirectory = self.home.appendingPathComponent("databases")
        databasesPath = databasesDirectory.path
        voteFile = self.home.path + "/vote"
        self.compactionThreshold = compactionThreshold
        try FileManager.default.createDirectory(at: databasesDirectory, withIntermediateDirectories: true)
        var loaded = State()
        let vote = try Self.readVote(voteFile)
        for name in try FileManager.default.contentsOfDirectory(atPath: databasesDirectory.path).sorted() {
            if name.hasPrefix(".") {  // an unfinished install or removal
                try? FileManager.default.removeItem(at: databasesDirectory.appendingPathComponent(name))
                continue
            }
            do { try DatabaseName.validate(name) } catch {
                throw ReplicatedError(.storage, "\(databasesDirectory.path)/\(name) is not a database: \(error)")
            }
            let voted = Set(vote?.operations.filter { $0.operation.database == name && $0.operation.kind == .transaction }.compactMap { $0.next?.seq } ?? [])
            loaded.databases[name] = try Self.open(databasesDirectory.appendingPathComponent(name), voted: voted)
        }
        // A vote its databases already show was committed before a crash could mark it decided.
        let catalog = loaded.databases.mapValues(\.version)
        if let vote, !vote.isCommitted(recorded: { catalog[$0] }) {
            loaded.prepared = vote
        }
        state.withLock { $0 = loaded }
    }

    // MARK: Reads

    /// Every database and its version.
    public var catalog: Catalog { state.withLock { $0.databases.mapValues(\.version) } }

    /// The round voted for and not yet decided.
    public var prepared: PreparedBatch? { state.withLock { $0.prepared } }

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
        try changing.withLock { _ in
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
            try Self.writeVote(encoded ?? ReplicationWire.encode(prepared), to: voteFile)
            state.withLock {
                $0.prepared = prepared
                $0.preparedTriples = parsed
            }
        }
    }

    /// Applies the prepared round `round` (the coordinator's decision).
    /// - Returns: why folding a log into a snapshot failed, when it did after the round was
    ///   applied (the round stands; the next commit tries the folding again).
    @discardableResult
    public func commitPrepared(round: String) throws -> (any Error)? {
        try changing.withLock { _ in
            guard let (prepared, parsed) = state.withLock({ state in state.prepared.map { ($0, state.preparedTriples) } }), prepared.round == round else {
                throw ReplicatedError(.outOfSync, "no prepared operation for round \(round)")
            }
            let folding = try apply(prepared, parsed: parsed)
            try? Self.clearVote(voteFile, synced: false)
            state.withLock {
                $0.prepared = nil
                $0.preparedTriples = [:]
            }
            do {
                try compact(folding)
                return nil
            } catch {
                return error
            }
        }
    }

    /// Forgets the prepared round `round` (the coordinator aborted it); a vote of another round is
    /// left alone.
    public func abortPrepared(round: String) throws {
        try changing.withLock { _ in
            guard state.withLock({ $0.prepared?.round == round }) else { return }
            // Synced (aborts are rare): left on disk, the vote would be decided again at the next
            // start, and a round that only drops databases looks committed against a record
            // that has none of them.
            try Self.clearVote(voteFile, synced: true)
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

    /// Applies a round's operations in order. Creations and removals of databases are made on disk
    /// as they come; the transactions' log lines are gathered per database and appended with one
    /// fsync per database. Only then does the round show in memory, where each database's triples
    /// are changed in place (a copy of a whole database per transaction would make a commit cost
    /// grow with the database).
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
            try Self.durably { try DurableFile.append(data, to: databasesPath + "/" + database + "/tx.log") }
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

    /// Reads a database directory: its snapshot, then its log, cutting off a torn append: a last
    /// line cut short, or damage (a power loss can leave an append's pages on disk out of order)
    /// from the first entry of the round voted for, `voted` (its transactions' `seq` here), whose
    /// vote is still on disk to apply them again.
    static func open(_ directory: URL, voted: Set<Int> = []) throws -> Database {
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
            let newline = log[offset...].firstIndex(of: UInt8(ascii: "\n"))
            guard let newline, let entry = try? JSONDecoder().decode(LogEntry.self, from: log[offset..<newline]) else {
                // A torn append (a crash mid-append, never acknowledged) is the last line, cut
                // short, or starts where the voted round's entries start (they were appended in
                // one write, the last); an unreadable line elsewhere with lines after it is damage.
                guard newline.map({ $0 + 1 == log.count }) ?? true || voted.contains(version.seq + 1) else {
                    throw ReplicatedError(.storage, "\(logURL.path): the entry at byte \(offset) is unreadable and entries follow it")
                }
                let handle = try FileHandle(forWritingTo: logURL)
                defer { try? handle.close() }
                try handle.truncate(atOffset: UInt64(offset))
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

    /// Writes `vote` (``ReplicationWire``'s bytes) at the start of the vote file, in place,
    /// after a header of its length and checksum (8 bytes each, little-endian): one data sync
    /// (``DurableFile/writeAtStart(_:_:sync:)``).
    static func writeVote(_ vote: ByteBuffer, to path: String) throws {
        let body = vote.readableBytesView
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 + body.count)
        withUnsafeBytes(of: UInt64(body.count).littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: fnv1a(body).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: body)
        try durably { try DurableFile.writeAtStart(path, bytes) }
    }

    /// The vote on disk; nil when there is none (its length is 0: decided), or when it is torn
    /// (written over when a crash came, before it was answered: its checksum does not match).
    /// - Throws: a storage error for a whole vote this version cannot read (another layout).
    static func readVote(_ path: String) throws -> PreparedBatch? {
        guard let data = FileManager.default.contents(atPath: path), data.count >= 16 else { return nil }
        func word(at offset: Int) -> UInt64 { data[offset..<offset + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        let length = word(at: 0)
        guard length > 0, length <= UInt64(data.count - 16) else { return nil }
        let body = data[16..<16 + Int(length)]
        guard word(at: 8) == fnv1a(body) else { return nil }
        do { return try ReplicationWire.decodeBatch(ByteBuffer(bytes: body)) } catch {
            throw ReplicatedError(.storage, "\(path) holds a vote this version cannot read (\(error)); start the version that wrote it to decide it")
        }
    }

    /// Marks the vote decided (its length 0) once its round is decided. After a commit it need
    /// not be synced: a vote a crash leaves on disk after its commit shows as applied.
    static func clearVote(_ path: String, synced: Bool) throws {
        try durably { try DurableFile.writeAtStart(path, [UInt8](repeating: 0, count: 8), sync: synced) }
    }

    /// FNV-1a, 64 bits: tells a vote written whole from a torn one.
    static func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
        bytes.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    /// Runs a ``DurableFile`` write, its failure a storage error.
    static func durably(_ body: () throws -> Void) throws {
        do { try body() } catch let failure as DurableFile.Failure { throw ReplicatedError(.storage, failure.description) }
    }
}
