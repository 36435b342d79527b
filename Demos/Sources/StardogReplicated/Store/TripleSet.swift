/// A database's triples in memory, indexed by subject and by predicate.
///
/// Each term is kept once and numbered; a triple is its three numbers. Inserting hashes twelve
/// bytes instead of three strings, the sets hold plain numbers (nothing to retain or release
/// when they grow), and a term used by many triples (a predicate, say) is stored once.
public struct TripleSet: Sendable {
    /// A triple as its terms' numbers in ``terms``.
    struct Key: Hashable, Sendable {
        var subject: UInt32
        var predicate: UInt32
        var object: UInt32
    }

    private var terms = TermTable()
    private var keys: Set<Key> = []
    private var bySubject: [UInt32: Set<Key>] = [:]
    private var byPredicate: [UInt32: Set<Key>] = [:]

    public init() {}

    public init<S: Sequence>(_ triples: S) where S.Element == Triple {
        for triple in triples { insert(triple) }
    }

    public var count: Int { keys.count }

    /// How many distinct terms the triples use (for tests).
    var termCount: Int { terms.termCount }

    /// Every triple, in no particular order.
    public var allTriples: [Triple] { keys.map(triple) }

    public mutating func insert(_ triple: Triple) {
        let key = Key(subject: terms.retain(triple.subject), predicate: terms.retain(triple.predicate), object: terms.retain(triple.object))
        guard keys.insert(key).inserted else {
            release(key)
            return
        }
        bySubject[key.subject, default: []].insert(key)
        byPredicate[key.predicate, default: []].insert(key)
    }

    public mutating func remove(_ triple: Triple) {
        guard let key = self.key(of: triple), keys.remove(key) != nil else { return }
        bySubject[key.subject]?.remove(key)
        if bySubject[key.subject]?.isEmpty == true { bySubject[key.subject] = nil }
        byPredicate[key.predicate]?.remove(key)
        if byPredicate[key.predicate]?.isEmpty == true { byPredicate[key.predicate] = nil }
        release(key)
    }

    /// Removes `remove`, then adds `add`.
    public mutating func apply(add: [Triple], remove: [Triple]) {
        for triple in remove { self.remove(triple) }
        for triple in add { insert(triple) }
    }

    /// The triples matching every given part, in a stable order (sorted by their N-Triples text).
    public func matching(subject: RDFTerm?, predicate: RDFTerm?, object: RDFTerm?) -> [Triple] {
        var wanted = Pattern()
        // A part no triple uses matches nothing.
        if let subject { guard let number = terms.number(of: subject) else { return [] }; wanted.subject = number }
        if let predicate { guard let number = terms.number(of: predicate) else { return [] }; wanted.predicate = number }
        if let object { guard let number = terms.number(of: object) else { return [] }; wanted.object = number }
        let candidates: Set<Key>
        if let subject = wanted.subject {
            candidates = bySubject[subject] ?? []
        } else if let predicate = wanted.predicate {
            candidates = byPredicate[predicate] ?? []
        } else {
            candidates = keys
        }
        return candidates.filter(wanted.matches).map { key in
            let triple = triple(key)
            return (NTriples.serialize([triple]), triple)
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The numbers a matching triple has (`nil`: any).
    private struct Pattern {
        var subject: UInt32?
        var predicate: UInt32?
        var object: UInt32?

        func matches(_ key: Key) -> Bool {
            (subject == nil || key.subject == subject) && (predicate == nil || key.predicate == predicate) && (object == nil || key.object == object)
        }
    }

    private func key(of triple: Triple) -> Key? {
        guard let subject = terms.number(of: triple.subject), let predicate = terms.number(of: triple.predicate),
            let object = terms.number(of: triple.object)
        else { return nil }
        return Key(subject: subject, predicate: predicate, object: object)
    }

    private func triple(_ key: Key) -> Triple {
        Triple(terms[key.subject], terms[key.predicate], terms[key.object])
    }

    private mutating func release(_ key: Key) {
        terms.release(key.subject)
        terms.release(key.predicate)
        terms.release(key.object)
    }
}

/// The terms of a ``TripleSet``, numbered, each with how many places in its triples use it: a
/// term no triple uses any more is forgotten and its number used again.
struct TermTable: Sendable {
    private var numbers: [RDFTerm: UInt32] = [:]
    private struct Entry {
        /// `nil` while the number is free.
        var term: RDFTerm?
        var uses: Int
    }
    /// By number.
    private var entries: [Entry] = []
    private var free: [UInt32] = []

    subscript(number: UInt32) -> RDFTerm { entries[Int(number)].term! }

    func number(of term: RDFTerm) -> UInt32? { numbers[term] }

    /// The term's number, counting one more use. The term is hashed and looked up once, whether
    /// it is known or new (most triples bring a new subject).
    mutating func retain(_ term: RDFTerm) -> UInt32 {
        let next = free.last ?? UInt32(entries.count)
        let number = Self.numberOrInsert(&numbers[term, default: next])
        if number != next {
            entries[Int(number)].uses += 1
        } else if free.popLast() != nil {
            entries[Int(number)] = Entry(term: term, uses: 1)
        } else {
            entries.append(Entry(term: term, uses: 1))
        }
        return number
    }

    /// Reads a slot of ``numbers`` in place: accessed through `subscript(_:default:)`, a term the
    /// dictionary does not hold is stored with the default, so one lookup finds a known term and
    /// adds a new one.
    private static func numberOrInsert(_ slot: inout UInt32) -> UInt32 { slot }

    /// Counts one use less; the term is forgotten when none is left.
    mutating func release(_ number: UInt32) {
        entries[Int(number)].uses -= 1
        guard entries[Int(number)].uses == 0, let term = entries[Int(number)].term else { return }
        entries[Int(number)].term = nil
        numbers[term] = nil
        free.append(number)
    }

    /// How many terms are kept (for tests).
    var termCount: Int { numbers.count }
}

/// A transaction being built on the node that began it: the adds and removes in the order they
/// came, reduced to their net effect at commit.
public struct TransactionBuffer: Sendable {
    public let database: String
    private var lastChange: [Triple: Bool] = [:]  // true: added last; false: removed last
    public private(set) var bodyBytes = 0
    /// When it was last changed (idle transactions are rolled back).
    public var lastUsed = ContinuousClock.now
    /// A commit is under way: no changes, no second commit, no rollback.
    public var isCommitting = false

    public init(database: String) { self.database = database }

    public mutating func add(_ triples: [Triple], bytes: Int) {
        for triple in triples { lastChange[triple] = true }
        bodyBytes += bytes
        lastUsed = .now
    }

    public mutating func remove(_ triples: [Triple], bytes: Int) {
        for triple in triples { lastChange[triple] = false }
        bodyBytes += bytes
        lastUsed = .now
    }

    /// The net effect: triples whose last change was an add, and those whose last change was a removal.
    public var netEffect: (add: [Triple], remove: [Triple]) {
        (lastChange.filter { $0.value }.map(\.key), lastChange.filter { !$0.value }.map(\.key))
    }
}
