/// One immutable piece of a partition's inverted index: the postings of the documents with ids in
/// `base ..< base + count` (ids are the partition's, never renumbered), per full-text column, in
/// flat arrays (no per-posting allocation; written to disk and read back as they are).
///
/// For a term `t` of a column: its postings are `starts[t] ..< starts[t + 1]`; posting `i` is
/// document `documents[i]` with `frequencies[i]` occurrences at
/// `positions[positionStarts[i] ..< positionStarts[i] + frequencies[i]]`. Postings are in
/// increasing document order.
public final class Segment: Sendable {
    public let base: Int32
    public let count: Int32
    let columns: [ColumnPostings]

    struct ColumnPostings: Sendable {
        var terms: [String: Int32] = [:]
        /// Per term id: where its postings start (one more entry than terms: the end).
        var starts: [Int32] = [0]
        var documents: [Int32] = []
        var frequencies: [Int32] = []
        var positionStarts: [Int32] = []
        var positions: [Int32] = []

        /// The postings of `term` (an empty range when the column does not have it).
        @inline(__always)
        func range(of term: String) -> Range<Int> {
            guard let id = terms[term] else { return 0..<0 }
            return Int(starts[Int(id)])..<Int(starts[Int(id) + 1])
        }
    }

    init(base: Int32, count: Int32, columns: [ColumnPostings]) {
        self.base = base
        self.count = count
        self.columns = columns
    }

    var end: Int32 { base + count }

    /// How many postings `term` has in column `slot` (its document frequency here, dead documents included).
    func documentFrequency(slot: Int, term: String) -> Int { columns[slot].range(of: term).count }

    /// One segment made of adjacent `segments` (in order), without the postings of documents
    /// `isLive` says are gone: a merge. Terms keep their postings in document order.
    static func merged(_ segments: [Segment], isLive: (Int32) -> Bool) -> Segment {
        precondition(!segments.isEmpty)
        let columnCount = segments[0].columns.count
        var columns: [ColumnPostings] = []
        for slot in 0..<columnCount {
            var merged = ColumnPostings()
            var terms = Set<String>()
            for segment in segments { terms.formUnion(segment.columns[slot].terms.keys) }
            for term in terms.sorted() {
                let start = merged.documents.count
                for segment in segments {
                    let column = segment.columns[slot]
                    for posting in column.range(of: term) where isLive(column.documents[posting]) {
                        merged.documents.append(column.documents[posting])
                        let frequency = column.frequencies[posting]
                        merged.frequencies.append(frequency)
                        merged.positionStarts.append(Int32(merged.positions.count))
                        let from = Int(column.positionStarts[posting])
                        merged.positions.append(contentsOf: column.positions[from..<(from + Int(frequency))])
                    }
                }
                if merged.documents.count > start {
                    merged.terms[term] = Int32(merged.starts.count - 1)
                    merged.starts.append(Int32(merged.documents.count))
                }
            }
            columns.append(merged)
        }
        let base = segments[0].base
        return Segment(base: base, count: segments.last!.end - base, columns: columns)
    }
}

/// The postings of documents being added, until ``seal()`` freezes them into a ``Segment``.
/// Each word occurrence is appended to flat arrays (term id, document, position: one hash lookup
/// and three appends, nothing per document or per term); sealing groups them by term with one
/// counting sort.
struct SegmentBuilder {
    let base: Int32
    private(set) var count: Int32 = 0
    private var columns: [Column]

    struct Column {
        var terms: [String: Int32] = [:]
        var termIDs: [Int32] = []
        var documents: [Int32] = []
        var positions: [Int32] = []
    }

    init(base: Int32, columnCount: Int) {
        self.base = base
        columns = Array(repeating: Column(), count: columnCount)
    }

    var isEmpty: Bool { count == 0 }

    /// Starts the next document (id `base + count`) and returns its id; its words follow with
    /// ``addWord(_:column:position:)``.
    mutating func startDocument() -> Int32 {
        count += 1
        return base + count - 1
    }

    /// One word of the document being added, at `position` in full-text column `slot`.
    @inline(__always)
    mutating func addWord(_ word: String, column slot: Int, position: Int32) {
        columns[slot].add(word, document: base + count - 1, position: position)
    }

    /// The postings collected so far as a segment.
    func seal() -> Segment {
        Segment(base: base, count: count, columns: columns.map { $0.sealed() })
    }
}

extension SegmentBuilder.Column {
    @inline(__always)
    mutating func add(_ word: String, document: Int32, position: Int32) {
        let id: Int32
        if let known = terms[word] {
            id = known
        } else {
            id = Int32(terms.count)
            terms[word] = id
        }
        termIDs.append(id)
        documents.append(document)
        positions.append(position)
    }

    /// The occurrences grouped by term (a stable counting sort keeps documents and positions in
    /// order), each run of one document becoming a posting.
    func sealed() -> Segment.ColumnPostings {
        var column = Segment.ColumnPostings()
        column.terms = terms
        let termCount = terms.count
        var offsets = [Int](repeating: 0, count: termCount + 1)
        for id in termIDs { offsets[Int(id) + 1] += 1 }
        for index in 0..<termCount { offsets[index + 1] += offsets[index] }
        var order = [Int32](repeating: 0, count: termIDs.count)
        var next = offsets
        for (occurrence, id) in termIDs.enumerated() {
            order[next[Int(id)]] = Int32(occurrence)
            next[Int(id)] += 1
        }
        column.starts.reserveCapacity(termCount + 1)
        column.positions.reserveCapacity(termIDs.count)
        for term in 0..<termCount {
            var index = offsets[term]
            while index < offsets[term + 1] {
                let document = documents[Int(order[index])]
                column.documents.append(document)
                column.positionStarts.append(Int32(column.positions.count))
                var frequency: Int32 = 0
                while index < offsets[term + 1], documents[Int(order[index])] == document {
                    column.positions.append(positions[Int(order[index])])
                    frequency += 1
                    index += 1
                }
                column.frequencies.append(frequency)
            }
            column.starts.append(Int32(column.documents.count))
        }
        return column
    }
}
