import Foundation

/// The in-memory index of one partition: an inverted index with positions for the full-text
/// columns (BM25), the column values for selections, facets and sorting, and each document's
/// source. Adding a document whose uid is already present replaces it. Not thread-safe: its
/// owner serialises access.
public final class PartitionIndex {
    public let schema: SearchSchema
    private var documents: [SearchDocument?] = []
    private var uidToDocument: [String: Int32] = [:]
    /// Per full-text column: term → postings (document, positions), documents in increasing order.
    private var postings: [[String: [Posting]]]
    /// Per full-text column: each document's length in words.
    private var lengths: [[Int32]]
    private var totalLengths: [Int]
    private let fullTextColumnIndexes: [Int]
    public private(set) var liveCount = 0

    struct Posting {
        var document: Int32
        var positions: [Int32]
    }

    public init(schema: SearchSchema) {
        self.schema = schema
        fullTextColumnIndexes = schema.columns.indices.filter { schema.columns[$0].fullText }
        postings = Array(repeating: [:], count: fullTextColumnIndexes.count)
        lengths = Array(repeating: [], count: fullTextColumnIndexes.count)
        totalLengths = Array(repeating: 0, count: fullTextColumnIndexes.count)
    }

    /// Adds (or replaces, by uid) a document.
    public func add(_ document: SearchDocument) {
        if let old = uidToDocument[document.uid], documents[Int(old)] != nil {
            documents[Int(old)] = nil
            liveCount -= 1
            for slot in fullTextColumnIndexes.indices { totalLengths[slot] -= Int(lengths[slot][Int(old)]) }
        }
        let id = Int32(documents.count)
        documents.append(document)
        uidToDocument[document.uid] = id
        liveCount += 1
        for (slot, column) in fullTextColumnIndexes.enumerated() {
            var positionsByTerm: [String: [Int32]] = [:]
            var position: Int32 = 0
            for value in document.values[column] {
                for token in Tokenizer.tokens(value) {
                    positionsByTerm[token, default: []].append(position)
                    position += 1
                }
                position += 1  // no phrase across two values
            }
            for (term, positions) in positionsByTerm { postings[slot][term, default: []].append(Posting(document: id, positions: positions)) }
            let length = Int32(positionsByTerm.values.reduce(0) { $0 + $1.count })
            lengths[slot].append(length)
            totalLengths[slot] += Int(length)
        }
    }

    /// Removes the document with `uid`, if present.
    public func delete(uid: String) {
        guard let id = uidToDocument.removeValue(forKey: uid), documents[Int(id)] != nil else { return }
        documents[Int(id)] = nil
        liveCount -= 1
        for slot in fullTextColumnIndexes.indices { totalLengths[slot] -= Int(lengths[slot][Int(id)]) }
    }

    public func document(uid: String) -> SearchDocument? {
        uidToDocument[uid].flatMap { documents[Int($0)] }
    }

    // MARK: Search

    /// Runs `request` on this partition: every matching hit up to `from + size` (sorted), the
    /// hit count, and for each requested facet the counts of all its values.
    /// - Throws: ``RequestError`` for an unknown field or a query that cannot be parsed.
    public func search(_ request: SearchRequest) throws -> SearchResult {
        let query = try QueryString.parse(request.query)
        let scores = try evaluate(query)
        for selection in request.selections + request.filters { try checkField(selection.field) }
        for sort in request.sort where sort.field != "_score" { try checkField(sort.field, forSorting: true) }
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
        let requestedFacets = try request.facets.keys.map { name -> SearchSchema.Facet in
            guard let facet = schema.facet(named: name) else { throw RequestError("unknown facet \(name)") }
            return facet
        }
        for (id, score) in scores {
            guard let document = documents[Int(id)] else { continue }
            let selected = passes(document)
            if selected {
                numberOfHits += 1
                if wanted > 0 { hits.append(hit(document, score: score, request: request)) }
            }
            for facet in requestedFacets {
                // A facet counts the documents that pass every selection but its own.
                let counts = selected || passes(document, skipping: facet.name)
                if counts {
                    for value in facetValues(document, facet: facet, selection: request.selections.first { $0.field == facet.name }) {
                        facetCounts[facet.name, default: [:]][value, default: 0] += 1
                    }
                }
            }
        }
        let comparator = HitOrder(sort: request.sort)
        hits.sort(by: comparator.precedes)
        if hits.count > wanted { hits.removeLast(hits.count - wanted) }
        var result = SearchResult(numhits: numberOfHits, totaldocs: liveCount, hits: hits)
        for facet in requestedFacets {
            result.facets[facet.name] = (facetCounts[facet.name] ?? [:]).map { SearchResult.FacetCount(value: $0.key, count: $0.value) }
        }
        return result
    }

    func checkField(_ field: String, forSorting: Bool = false) throws {
        if schema.column(named: field) == nil && schema.facet(named: field) == nil {
            throw RequestError("unknown field \(field)\(forSorting ? " in sort" : "")")
        }
    }

    private func hit(_ document: SearchDocument, score: Float, request: SearchRequest) -> SearchResult.Hit {
        var stored: [String: [String]] = [:]
        for (index, column) in schema.columns.enumerated() where column.stored && !document.values[index].isEmpty {
            stored[column.name] = document.values[index]
        }
        let sortValues = request.sort.map { sort -> SearchResult.SortValue in
            if sort.field == "_score" { return .number(Double(score)) }
            let column = schema.columns.firstIndex { $0.name == (schema.facet(named: sort.field)?.column ?? sort.field) }
            guard let column else { return .missing }
            if let number = document.numbers[column] { return .number(number) }
            return document.values[column].first.map { .text($0) } ?? .missing
        }
        return SearchResult.Hit(uid: document.uid, score: score, sortValues: sortValues, stored: stored, source: request.fetchStored ? document.source : nil)
    }

    /// The values a document contributes to `facet` (a path facet counts one level below the
    /// selected path, or the first level).
    private func facetValues(_ document: SearchDocument, facet: SearchSchema.Facet, selection: SearchRequest.Selection?) -> [String] {
        guard let column = schema.columns.firstIndex(where: { $0.name == facet.column }) else { return [] }
        switch facet.type {
        case .simple: return Array(document.values[column].prefix(1))
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

    func evaluate(_ node: QueryNode) throws -> [Int32: Float] {
        switch node {
        case .all:
            var all: [Int32: Float] = [:]
            for (id, document) in documents.enumerated() where document != nil { all[Int32(id)] = 1 }
            return all
        case .term(let field, let text), .phrase(let field, let text):
            let words = Tokenizer.tokens(text)
            let slots = try fullTextSlots(field: field)
            guard let slots else { return exactMatches(field: field!, text: text) }
            guard !words.isEmpty else { return [:] }
            var result: [Int32: Float] = [:]
            for slot in slots { merge(into: &result, phraseScores(slot: slot, words: words)) }
            return result
        case .and(let clauses):
            var result: [Int32: Float]?
            for clause in clauses {
                let scores = try evaluate(clause)
                guard let current = result else { result = scores; continue }
                var next: [Int32: Float] = [:]
                for (id, score) in current { if let other = scores[id] { next[id] = score + other } }
                result = next
            }
            return result ?? [:]
        case .or(let clauses):
            var result: [Int32: Float] = [:]
            for clause in clauses { merge(into: &result, try evaluate(clause)) }
            return result
        case .not(let inner):
            let excluded = try evaluate(inner)
            var result: [Int32: Float] = [:]
            for (id, document) in documents.enumerated() where document != nil && excluded[Int32(id)] == nil { result[Int32(id)] = 0 }
            return result
        }
    }

    private func merge(into result: inout [Int32: Float], _ scores: [Int32: Float]) {
        for (id, score) in scores { result[id, default: 0] += score }
    }

    /// The full-text slots a field names (nil for a non-text column: exact matching).
    private func fullTextSlots(field: String?) throws -> [Int]? {
        guard let field else { return Array(fullTextColumnIndexes.indices) }
        if let slot = fullTextColumnIndexes.firstIndex(where: { schema.columns[$0].name == field }) { return [slot] }
        if schema.column(named: field) != nil || schema.facet(named: field) != nil { return nil }
        throw RequestError("unknown field \(field) in the query")
    }

    private func exactMatches(field: String, text: String) -> [Int32: Float] {
        let matcher = matcher(SearchRequest.Selection(field: field, values: [text]))
        var result: [Int32: Float] = [:]
        for (id, document) in documents.enumerated() { if let document, matcher(document) { result[Int32(id)] = 1 } }
        return result
    }

    /// BM25 of a word (or a phrase: its frequency, with the words' summed idf) in one column.
    private func phraseScores(slot: Int, words: [String]) -> [Int32: Float] {
        let lists = words.map { postings[slot][$0] ?? [] }
        guard !lists.contains(where: \.isEmpty), liveCount > 0 else { return [:] }
        let count = Float(liveCount)
        let averageLength = max(Float(totalLengths[slot]) / count, 1)
        let idf = lists.reduce(Float(0)) { sum, list in
            let frequency = Float(list.count)
            return sum + log(1 + (count - frequency + 0.5) / (frequency + 0.5))
        }
        var result: [Int32: Float] = [:]
        if lists.count == 1 {
            for posting in lists[0] where documents[Int(posting.document)] != nil {
                result[posting.document] = bm25(idf: idf, frequency: Float(posting.positions.count), length: Float(lengths[slot][Int(posting.document)]), average: averageLength)
            }
            return result
        }
        // Phrases: documents holding every word, counting the positions where they follow each other.
        var others = lists.dropFirst().map { list in Dictionary(uniqueKeysWithValues: list.map { ($0.document, Set($0.positions)) }) }
        for posting in lists[0] where documents[Int(posting.document)] != nil {
            let following = others.map { $0[posting.document] }
            guard !following.contains(where: { $0 == nil }) else { continue }
            let frequency = posting.positions.filter { start in
                following.enumerated().allSatisfy { offset, positions in positions!.contains(start + Int32(offset + 1)) }
            }.count
            if frequency > 0 {
                result[posting.document] = bm25(idf: idf, frequency: Float(frequency), length: Float(lengths[slot][Int(posting.document)]), average: averageLength)
            }
        }
        others.removeAll()
        return result
    }

    private func bm25(idf: Float, frequency: Float, length: Float, average: Float) -> Float {
        idf * frequency * (Self.k1 + 1) / (frequency + Self.k1 * (1 - Self.b + Self.b * length / average))
    }
}
