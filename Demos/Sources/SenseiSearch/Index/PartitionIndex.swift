import Foundation

/// The index of one partition: an inverted index with positions for the full-text columns
/// (BM25), the column values for selections, facets and sorting, and each document's source.
/// Adding a document whose uid is already present replaces it. Not thread-safe: its owner
/// serialises access (a merge is built from immutable segments outside, then swapped in).
///
/// Documents have ids in the order they were added, never renumbered. Their postings live in
/// ``Segment``s covering consecutive id ranges: documents added since the last ``seal()`` are
/// collected by a ``SegmentBuilder`` and sealed (before a search, or when the node persists a
/// batch); adjacent segments are merged into one (``Segment/merged(_:isLive:)``, swapped in with
/// ``replace(_:with:)``), which drops the postings of replaced and deleted documents.
public final class PartitionIndex {
    public let schema: SearchSchema
    private var documents: [SearchDocument?] = []
    /// Per document: its uid as a number when it is one (ties in relevance order by uid).
    private var numericUIDs: [Int64?] = []
    /// Per document: not replaced or deleted (cheaper to test than the optional document).
    private(set) var live: [Bool] = []
    private var uidToDocument: [String: Int32] = [:]
    /// Sealed segments, by increasing ids, adjacent.
    public private(set) var segments: [Segment] = []
    private var pending: SegmentBuilder
    /// Per full-text column: each document's length in words.
    private var lengths: [[Int32]]
    private var totalLengths: [Int]
    private let fullTextColumnIndexes: [Int]
    public private(set) var liveCount = 0
    /// Ids retired (replaced or deleted) since ``takeRetired()`` last gave them out.
    private var retiredSinceTaken: [Int32] = []

    public init(schema: SearchSchema) {
        self.schema = schema
        fullTextColumnIndexes = schema.columns.indices.filter { schema.columns[$0].fullText }
        lengths = Array(repeating: [], count: fullTextColumnIndexes.count)
        totalLengths = Array(repeating: 0, count: fullTextColumnIndexes.count)
        pending = SegmentBuilder(base: 0, columnCount: fullTextColumnIndexes.count)
    }

    /// The number of ids given out (documents added, live or not).
    public var documentIDCount: Int { documents.count }

    /// Adds (or replaces, by uid) a document.
    public func add(_ document: SearchDocument) {
        if let old = uidToDocument[document.uid] { retire(old) }
        let id = Int32(documents.count)
        documents.append(document)
        numericUIDs.append(Int64(document.uid))
        live.append(true)
        uidToDocument[document.uid] = id
        liveCount += 1
        _ = pending.startDocument()
        for (slot, column) in fullTextColumnIndexes.enumerated() {
            var position: Int32 = 0
            var length: Int32 = 0
            for value in document.values[column] {
                Tokenizer.forEachToken(value) { word in
                    pending.addWord(word, column: slot, position: position)
                    position += 1
                    length += 1
                }
                position += 1  // a gap: no phrase across two values
            }
            lengths[slot].append(length)
            totalLengths[slot] += Int(length)
        }
    }

    /// Removes the document with `uid`, if present.
    public func delete(uid: String) {
        if let id = uidToDocument.removeValue(forKey: uid) { retire(id) }
    }

    /// Takes a replaced or deleted document out of the counts (its postings stay until a merge,
    /// skipped as dead).
    private func retire(_ id: Int32) {
        guard live[Int(id)] else { return }
        retiredSinceTaken.append(id)
        documents[Int(id)] = nil
        live[Int(id)] = false
        liveCount -= 1
        for slot in fullTextColumnIndexes.indices { totalLengths[slot] -= Int(lengths[slot][Int(id)]) }
    }

    public func document(uid: String) -> SearchDocument? {
        uidToDocument[uid].flatMap { documents[Int($0)] }
    }

    // MARK: Segments

    /// The ids retired since the last call (what a store appends to its deleted ids).
    public func takeRetired() -> [Int32] {
        defer { retiredSinceTaken = [] }
        return retiredSinceTaken
    }

    /// Seals the documents added since the last seal into a segment; returns it (nil if there were none).
    @discardableResult
    public func seal() -> Segment? {
        guard !pending.isEmpty else { return nil }
        let segment = pending.seal()
        segments.append(segment)
        pending = SegmentBuilder(base: Int32(documents.count), columnCount: fullTextColumnIndexes.count)
        return segment
    }

    /// What a segment file holds besides the postings: each document of its range (nil when gone)
    /// and its length per full-text column.
    public func contents(of segment: Segment) -> (documents: [SearchDocument?], lengths: [[Int32]]) {
        let range = Int(segment.base)..<Int(segment.end)
        return (Array(documents[range]), lengths.map { Array($0[range]) })
    }

    /// Reopens a partition from its segments (as ``contents(of:)`` gave them, adjacent from 0) and
    /// the ids deleted since they were written.
    public convenience init(schema: SearchSchema, segments: [(segment: Segment, documents: [SearchDocument?], lengths: [[Int32]])], deleted: [Int32]) {
        self.init(schema: schema)
        let total = segments.reduce(0) { $0 + $1.documents.count }
        self.documents.reserveCapacity(total)
        numericUIDs.reserveCapacity(total)
        live.reserveCapacity(total)
        uidToDocument.reserveCapacity(total)
        for slot in self.lengths.indices { self.lengths[slot].reserveCapacity(total) }
        for (segment, documents, lengths) in segments {
            precondition(Int(segment.base) == self.documents.count, "segments must be adjacent from 0")
            for document in documents {
                let id = Int32(self.documents.count)
                self.documents.append(document)
                numericUIDs.append(document.flatMap { Int64($0.uid) })
                live.append(document != nil)
                if let document {
                    if let old = uidToDocument[document.uid], live[Int(old)] {
                        self.documents[Int(old)] = nil
                        live[Int(old)] = false
                        liveCount -= 1
                    }
                    uidToDocument[document.uid] = id
                    liveCount += 1
                }
            }
            for slot in self.lengths.indices { self.lengths[slot] += lengths[slot] }
            self.segments.append(segment)
        }
        for slot in fullTextColumnIndexes.indices {
            totalLengths[slot] = self.lengths[slot].indices.reduce(0) { $0 + (live[$1] ? Int(self.lengths[slot][$1]) : 0) }
        }
        for id in deleted where Int(id) < live.count {
            if let document = self.documents[Int(id)], uidToDocument[document.uid] == id { uidToDocument.removeValue(forKey: document.uid) }
            retire(id)
        }
        retiredSinceTaken = []
        pending = SegmentBuilder(base: Int32(self.documents.count), columnCount: fullTextColumnIndexes.count)
    }

    /// The adjacent segments `policy` would merge next among the first `among` (all when nil),
    /// oldest first; nil when none.
    public func mergeCandidates(policy: MergePolicy = MergePolicy(), among: Int? = nil) -> [Segment]? {
        let considered = segments.prefix(among ?? segments.count)
        return policy.nextMerge(counts: considered.map { Int($0.count) }).map { Array(considered[$0]) }
    }

    /// Which documents are live now (a merge built outside the owner's lock reads a copy).
    public var liveSnapshot: [Bool] { live }

    /// Puts `merged` in place of the adjacent `old` segments it was built from; false (and
    /// nothing changes) when they are no longer the partition's.
    @discardableResult
    public func replace(_ old: [Segment], with merged: Segment) -> Bool {
        guard let first = segments.firstIndex(where: { $0 === old[0] }), first + old.count <= segments.count,
            zip(segments[first..<(first + old.count)], old).allSatisfy({ $0 === $1 })
        else { return false }
        segments.replaceSubrange(first..<(first + old.count), with: [merged])
        return true
    }

    // MARK: Search

    /// Runs `request` on this partition: every matching hit up to `from + size` (sorted), the
    /// hit count, and for each requested facet the counts of all its values.
    /// - Throws: ``RequestError`` for an unknown field or a query that cannot be parsed.
    public func search(_ request: SearchRequest) throws -> SearchResult {
        try search(request, query: try request.validated(against: schema))
    }

    /// ``search(_:)`` for a request already validated (`query` is its parsed query string).
    func search(_ request: SearchRequest, query: QueryNode) throws -> SearchResult {
        seal()
        let scores = try evaluate(query)
        let selections = request.selections.map { selection in matcher(selection) }
        let filters = (request.filters).map { matcher($0) }
        func passes(_ document: SearchDocument, skipping field: String? = nil) -> Bool {
            for (index, match) in selections.enumerated() where request.selections[index].field != field {
                if !match(document) { return false }
            }
            for match in filters where !match(document) { return false }
            return true
        }
        var hits: [SearchResult.Hit] = []
        var numberOfHits = 0
        let wanted = request.from + request.size
        var facetCounts: [String: [String: Int]] = [:]
        let requestedFacets = request.facets.keys.compactMap { schema.facet(named: $0) }  // validated: all known
        let order = HitOrder(sort: request.sort)
        // Relevance with nothing to filter or count: no document is touched but the returned ones.
        if request.sort.isEmpty && selections.isEmpty && filters.isEmpty && requestedFacets.isEmpty {
            let top = topByRelevance(scores, limit: wanted)
            let hits = top.map { hit(documents[Int($0.document)]!, score: $0.score, request: request, withStoredFields: true) }
            return SearchResult(numhits: scores.count, totaldocs: liveCount, hits: hits)
        }
        var best = TopK(limit: wanted, precedes: order.precedes)
        for (id, score) in scores {
            guard let document = documents[Int(id)] else { continue }
            let selected = passes(document)
            if selected {
                numberOfHits += 1
                if wanted > 0 { best.add(hit(document, score: score, request: request, withStoredFields: false)) }
            }
            for facet in requestedFacets {
                // A facet counts the documents that pass every selection, or with `expand` every
                // selection but its own (Bobo's expandSelection).
                let counts = selected || (request.facets[facet.name]?.expand == true && passes(document, skipping: facet.name))
                if counts {
                    for value in facetValues(document, facet: facet, selection: request.selections.first { $0.field == facet.name }) {
                        facetCounts[facet.name, default: [:]][value, default: 0] += 1
                    }
                }
            }
        }
        // Only the hits that are returned get their stored fields and source.
        hits = best.sorted().map { light in
            hit(documents[Int(uidToDocument[light.uid]!)]!, score: light.score, request: request, withStoredFields: true)
        }
        var result = SearchResult(numhits: numberOfHits, totaldocs: liveCount, hits: hits)
        for facet in requestedFacets {
            result.facets[facet.name] = (facetCounts[facet.name] ?? [:]).map { SearchResult.FacetCount(value: $0.key, count: $0.value) }
        }
        return result
    }

    /// The first `limit` of `scores` by score (descending), then uid, as ``HitOrder`` orders them.
    private func topByRelevance(_ scores: Scored, limit: Int) -> Scored {
        let numericUIDs = self.numericUIDs
        let documents = self.documents
        func precedes(_ left: (document: Int32, score: Float), _ right: (document: Int32, score: Float)) -> Bool {
            if left.score != right.score { return left.score > right.score }
            if let a = numericUIDs[Int(left.document)], let b = numericUIDs[Int(right.document)], a != b { return a < b }
            return documents[Int(left.document)]!.uid < documents[Int(right.document)]!.uid
        }
        var best = TopK(limit: limit, precedes: precedes)
        for entry in scores { best.add(entry) }
        return best.sorted()
    }

    private func hit(_ document: SearchDocument, score: Float, request: SearchRequest, withStoredFields: Bool) -> SearchResult.Hit {
        var stored: [String: [String]] = [:]
        for (index, column) in schema.columns.enumerated() where withStoredFields && column.stored && !document.values[index].isEmpty {
            stored[column.name] = document.values[index]
        }
        let sortValues = request.sort.map { sort -> SearchResult.SortValue in
            if sort.field == "_score" { return .number(Double(score)) }
            let column = schema.columns.firstIndex { $0.name == (schema.facet(named: sort.field)?.column ?? sort.field) }
            guard let column else { return .missing }
            if let number = document.numbers[column] { return .number(number) }
            return document.values[column].first.map { .text($0) } ?? .missing
        }
        return SearchResult.Hit(
            uid: document.uid, score: score, sortValues: sortValues, stored: stored, source: withStoredFields && request.fetchStored ? document.source : nil)
    }

    /// The values a document contributes to `facet` (a path facet counts one level below the
    /// selected path, or the first level).
    private func facetValues(_ document: SearchDocument, facet: SearchSchema.Facet, selection: SearchRequest.Selection?) -> [String] {
        guard let column = schema.columns.firstIndex(where: { $0.name == facet.column }) else { return [] }
        switch facet.type {
        // Every value a selection matches (a document may give a simple column several values).
        case .simple: return Array(Set(document.values[column]))
        case .multi: return Array(Set(document.values[column]))
        case .range:
            guard let number = document.numbers[column] else { return [] }
            return facet.ranges.filter { $0.contains(number) }.map(\.label)
        case .path:
            let base = selection?.values.first
            var result = Set<String>()
            for value in document.values[column] {
                let parts = value.components(separatedBy: facet.separator)
                if let base {
                    let baseParts = base.components(separatedBy: facet.separator)
                    guard parts.count > baseParts.count, Array(parts.prefix(baseParts.count)) == baseParts else { continue }
                    result.insert(parts.prefix(baseParts.count + 1).joined(separator: facet.separator))
                } else if let first = parts.first {
                    result.insert(first)
                }
            }
            return Array(result)
        }
    }

    /// Whether a document satisfies a selection: any (or all, for `and`) of its values, none of
    /// its excludes, and its numeric range. Values of a range facet are range labels; a path
    /// facet's value matches the path and everything below it.
    private func matcher(_ selection: SearchRequest.Selection) -> (SearchDocument) -> Bool {
        let facet = schema.facet(named: selection.field)
        let columnName = facet?.column ?? selection.field
        guard let column = schema.columns.firstIndex(where: { $0.name == columnName }) else { return { _ in false } }
        let ranges = selection.values.compactMap { value -> SearchRequest.NumericRange? in
            guard let range = SearchSchema.Range(value) else { return nil }
            return SearchRequest.NumericRange(low: range.low.isFinite ? range.low : nil, high: range.high.isFinite ? range.high : nil)
        }
        let numeric = schema.columns[column].type.isNumeric
        let isPath = facet?.type == .path
        let separator = facet?.separator ?? "/"
        func matches(_ wanted: String, _ document: SearchDocument) -> Bool {
            if numeric, let range = SearchSchema.Range(wanted), let number = document.numbers[column] {
                return range.contains(number)
            }
            return document.values[column].contains { value in
                value.caseInsensitiveCompare(wanted) == .orderedSame || (isPath && value.hasPrefix(wanted + separator))
            }
        }
        return { document in
            if let range = selection.range {
                guard let number = document.numbers[column], range.contains(number) else { return false }
            }
            if !selection.values.isEmpty {
                if numeric && ranges.count == selection.values.count, let number = document.numbers[column] {
                    let inside = ranges.map { $0.contains(number) }
                    if selection.operator == .and ? inside.contains(false) : !inside.contains(true) { return false }
                } else if selection.operator == .and {
                    if !selection.values.allSatisfy({ matches($0, document) }) { return false }
                } else if !selection.values.contains(where: { matches($0, document) }) {
                    return false
                }
            }
            return !selection.excludes.contains { matches($0, document) }
        }
    }

    // MARK: Query evaluation (BM25)

    static let k1: Float = 1.2
    static let b: Float = 0.75

    /// The matching documents, in increasing document order, with their scores.
    typealias Scored = [(document: Int32, score: Float)]

    func evaluate(_ node: QueryNode) throws -> Scored {
        switch node {
        case .all:
            return allDocuments(score: 1)
        case .term(let field, let text), .phrase(let field, let text):
            let words = Tokenizer.tokens(text)
            let slots = try fullTextSlots(field: field)
            guard let slots else { return exactMatches(field: field!, text: text) }
            guard !words.isEmpty else { return [] }
            return slots.reduce(into: Scored()) { result, slot in result = Self.union(result, phraseScores(slot: slot, words: words)) }
        case .and(let clauses):
            // Prohibitions subtract; the rest intersect.
            var result: Scored?
            var prohibited: [Scored] = []
            for clause in clauses {
                if case .not(let inner) = clause { prohibited.append(try evaluate(inner)); continue }
                let scores = try evaluate(clause)
                result = result.map { Self.intersection($0, scores) } ?? scores
            }
            var base = result ?? allDocuments(score: 0)
            for excluded in prohibited { base = Self.difference(base, excluded) }
            return base
        case .or(let clauses):
            return try clauses.reduce(into: Scored()) { result, clause in result = Self.union(result, try evaluate(clause)) }
        case .not(let inner):
            return Self.difference(allDocuments(score: 0), try evaluate(inner))
        }
    }

    private func allDocuments(score: Float) -> Scored {
        var result = Scored()
        result.reserveCapacity(liveCount)
        for (id, isLive) in live.enumerated() where isLive { result.append((Int32(id), score)) }
        return result
    }

    /// Documents in either list (scores added where both have one).
    static func union(_ left: Scored, _ right: Scored) -> Scored {
        if left.isEmpty { return right }
        if right.isEmpty { return left }
        return merge(left, right, keepingUnmatched: true)
    }

    /// Documents in both lists, their scores added.
    static func intersection(_ left: Scored, _ right: Scored) -> Scored {
        merge(left, right, keepingUnmatched: false)
    }

    private static func merge(_ left: Scored, _ right: Scored, keepingUnmatched: Bool) -> Scored {
        var result = Scored()
        result.reserveCapacity(keepingUnmatched ? left.count + right.count : min(left.count, right.count))
        var (i, j) = (0, 0)
        while i < left.count && j < right.count {
            if left[i].document == right[j].document {
                result.append((left[i].document, left[i].score + right[j].score))
                i += 1
                j += 1
            } else if left[i].document < right[j].document {
                if keepingUnmatched { result.append(left[i]) }
                i += 1
            } else {
                if keepingUnmatched { result.append(right[j]) }
                j += 1
            }
        }
        if keepingUnmatched {
            result.append(contentsOf: left[i...])
            result.append(contentsOf: right[j...])
        }
        return result
    }

    static func difference(_ left: Scored, _ right: Scored) -> Scored {
        var result = Scored()
        result.reserveCapacity(left.count)
        var j = 0
        for entry in left {
            while j < right.count && right[j].document < entry.document { j += 1 }
            if j < right.count && right[j].document == entry.document { continue }
            result.append(entry)
        }
        return result
    }

    /// The full-text slots a field names (nil for a non-text column: exact matching).
    private func fullTextSlots(field: String?) throws -> [Int]? {
        guard let field else { return Array(fullTextColumnIndexes.indices) }
        if let slot = fullTextColumnIndexes.firstIndex(where: { schema.columns[$0].name == field }) { return [slot] }
        if schema.column(named: field) != nil || schema.facet(named: field) != nil { return nil }
        throw RequestError("unknown field \(field) in the query")
    }

    private func exactMatches(field: String, text: String) -> Scored {
        let matcher = matcher(SearchRequest.Selection(field: field, values: [text]))
        var result = Scored()
        for (id, document) in documents.enumerated() { if let document, matcher(document) { result.append((Int32(id), 1)) } }
        return result
    }

    /// BM25 of a word (or a phrase: its frequency, with the words' summed idf) in one column.
    private func phraseScores(slot: Int, words: [String]) -> Scored {
        guard liveCount > 0 else { return [] }
        // Statistics over the whole partition: document frequency summed over the segments.
        // The segments' frequencies count deleted (replaced) documents until a merge drops them,
        // while the count is of live ones: held to the count, so an idf is never negative.
        let frequencies = words.map { word in min(segments.reduce(0) { $0 + $1.documentFrequency(slot: slot, term: word) }, liveCount) }
        guard !frequencies.contains(0) else { return [] }
        let count = Float(liveCount)
        let averageLength = max(Float(totalLengths[slot]) / count, 1)
        let idf = frequencies.reduce(Float(0)) { sum, frequency in
            sum + log(1 + (count - Float(frequency) + 0.5) / (Float(frequency) + 0.5))
        }
        let lengths = self.lengths[slot]
        var result = Scored()
        for segment in segments {
            let column = segment.columns[slot]
            let ranges = words.map { column.range(of: $0) }
            if ranges.contains(where: \.isEmpty) { continue }
            if words.count == 1 {
                result.reserveCapacity(result.count + ranges[0].count)
                column.documents.withUnsafeBufferPointer { documents in
                    column.frequencies.withUnsafeBufferPointer { termFrequencies in
                        live.withUnsafeBufferPointer { live in
                            for posting in ranges[0] {
                                let document = documents[posting]
                                guard live[Int(document)] else { continue }
                                let score = bm25(
                                    idf: idf, frequency: Float(termFrequencies[posting]), length: Float(lengths[Int(document)]), average: averageLength)
                                result.append((document, score))
                            }
                        }
                    }
                }
                continue
            }
            // Phrases: documents holding every word, counting the positions where they follow each other.
            let others = ranges.dropFirst().map { range in
                Dictionary(uniqueKeysWithValues: range.map { posting in
                    let start = Int(column.positionStarts[posting])
                    return (column.documents[posting], Set(column.positions[start..<(start + Int(column.frequencies[posting]))]))
                })
            }
            for posting in ranges[0] where live[Int(column.documents[posting])] {
                let document = column.documents[posting]
                let following = others.map { $0[document] }
                guard !following.contains(where: { $0 == nil }) else { continue }
                let start = Int(column.positionStarts[posting])
                let frequency = column.positions[start..<(start + Int(column.frequencies[posting]))].filter { first in
                    following.enumerated().allSatisfy { offset, positions in positions!.contains(first + Int32(offset + 1)) }
                }.count
                if frequency > 0 {
                    result.append((document, bm25(idf: idf, frequency: Float(frequency), length: Float(lengths[Int(document)]), average: averageLength)))
                }
            }
        }
        return result
    }

    private func bm25(idf: Float, frequency: Float, length: Float, average: Float) -> Float {
        idf * frequency * (Self.k1 + 1) / (frequency + Self.k1 * (1 - Self.b + Self.b * length / average))
    }
}

/// The first `limit` elements in the order `precedes` out of many, in O(n log limit): a buffer
/// sorted and cut whenever it doubles; once full, an element that does not precede the last kept
/// one is not even stored.
struct TopK<Element> {
    let limit: Int
    let precedes: (Element, Element) -> Bool
    private var buffer: [Element] = []
    private var threshold: Element?

    init(limit: Int, precedes: @escaping (Element, Element) -> Bool) {
        self.limit = limit
        self.precedes = precedes
    }

    mutating func add(_ element: Element) {
        guard limit > 0 else { return }
        if let threshold, !precedes(element, threshold) { return }
        buffer.append(element)
        if buffer.count >= 2 * max(limit, 16) { cut() }
    }

    private mutating func cut() {
        buffer.sort(by: precedes)
        if buffer.count > limit {
            buffer.removeLast(buffer.count - limit)
            threshold = buffer.last
        }
    }

    mutating func sorted() -> [Element] {
        cut()
        return buffer
    }
}
