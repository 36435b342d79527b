/// A database's triples in memory, indexed by subject and by predicate.
public struct TripleSet: Sendable {
    public private(set) var all: Set<Triple> = []
    private var bySubject: [RDFTerm: Set<Triple>] = [:]
    private var byPredicate: [RDFTerm: Set<Triple>] = [:]

    public init() {}

    public init<S: Sequence>(_ triples: S) where S.Element == Triple {
        for triple in triples { insert(triple) }
    }

    public var count: Int { all.count }

    public mutating func insert(_ triple: Triple) {
        guard all.insert(triple).inserted else { return }
        bySubject[triple.subject, default: []].insert(triple)
        byPredicate[triple.predicate, default: []].insert(triple)
    }

    public mutating func remove(_ triple: Triple) {
        guard all.remove(triple) != nil else { return }
        bySubject[triple.subject]?.remove(triple)
        if bySubject[triple.subject]?.isEmpty == true { bySubject[triple.subject] = nil }
        byPredicate[triple.predicate]?.remove(triple)
        if byPredicate[triple.predicate]?.isEmpty == true { byPredicate[triple.predicate] = nil }
    }

    /// Removes `remove`, then adds `add`.
    public mutating func apply(add: [Triple], remove: [Triple]) {
        for triple in remove { self.remove(triple) }
        for triple in add { insert(triple) }
    }

    /// The triples matching every given part, in a stable order (sorted by their N-Triples text).
    public func matching(subject: RDFTerm?, predicate: RDFTerm?, object: RDFTerm?) -> [Triple] {
        let candidates: Set<Triple>
        if let subject { candidates = bySubject[subject] ?? [] } else if let predicate { candidates = byPredicate[predicate] ?? [] } else { candidates = all }
        return candidates.filter { triple in
            (subject == nil || triple.subject == subject) && (predicate == nil || triple.predicate == predicate)
                && (object == nil || triple.object == object)
        }.map { (NTriples.serialize([$0]), $0) }.sorted { $0.0 < $1.0 }.map(\.1)
    }
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
