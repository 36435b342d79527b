/// What a search returns: from one partition, one node (its partitions combined) or the broker
/// (every node merged). Nodes send it to brokers as JSON.
public struct SearchResult: Sendable, Hashable, Codable {
    public var numhits: Int
    public var totaldocs: Int
    public var hits: [Hit]
    /// Facet name → value counts (a partition's are complete; a node's are cut to at least 50;
    /// the broker's to the requested `max`).
    public var facets: [String: [FacetCount]] = [:]
    public var errors: [SearchError] = []

    public init(numhits: Int = 0, totaldocs: Int = 0, hits: [Hit] = [], facets: [String: [FacetCount]] = [:], errors: [SearchError] = []) {
        self.numhits = numhits
        self.totaldocs = totaldocs
        self.hits = hits
        self.facets = facets
        self.errors = errors
    }

    public struct Hit: Sendable, Hashable, Codable {
        public var uid: String
        public var score: Float
        /// The request's sort keys for this hit, in order (for merging without the document).
        public var sortValues: [SortValue]
        /// The stored columns' values.
        public var stored: [String: [String]]
        /// The source JSON, with `fetchStored`.
        public var source: String?
    }

    public enum SortValue: Sendable, Hashable, Codable {
        case number(Double)
        case text(String)
        case missing
    }

    public struct FacetCount: Sendable, Hashable, Codable {
        public var value: String
        public var count: Int
        public var selected: Bool = false

        public init(value: String, count: Int, selected: Bool = false) {
            self.value = value
            self.count = count
            self.selected = selected
        }
    }

    /// An error in a partial result (Sensei's `errors` entries).
    public struct SearchError: Sendable, Hashable, Codable {
        /// Sensei's error types: `PartitionCallError`, `ExecutionTimeout`, `BrokerGatherError`, …
        public var errorType: String
        public var message: String
        public var errorCode: Int

        public init(errorType: String, message: String, errorCode: Int) {
            self.errorType = errorType
            self.message = message
            self.errorCode = errorCode
        }
    }
}

/// The order of hits for a request's sort: each sort field in turn (missing values last), then
/// the uid (numerically when both are integers), so every merge gives the same order.
public struct HitOrder: Sendable {
    public var sort: [SearchRequest.SortField]

    public init(sort: [SearchRequest.SortField]) {
        self.sort = sort
    }

    public func precedes(_ left: SearchResult.Hit, _ right: SearchResult.Hit) -> Bool {
        if sort.isEmpty {
            if left.score != right.score { return left.score > right.score }
        } else {
            for (index, field) in sort.enumerated() {
                let order = Self.compare(left.sortValues[index], right.sortValues[index])
                if order == 0 { continue }
                if left.sortValues[index] == .missing || right.sortValues[index] == .missing { return order < 0 }
                return field.descending ? order > 0 : order < 0
            }
        }
        // Numeric uids first, by value, then the others by text: one total order across
        // partitions and nodes (comparing by value only when both are numbers made a cycle:
        // "10" < "5x" < "9" < "10"), so paging neither repeats nor skips a hit.
        switch (Int64(left.uid), Int64(right.uid)) {
        case let (leftNumber?, rightNumber?) where leftNumber != rightNumber: return leftNumber < rightNumber
        case (_?, nil): return true
        case (nil, _?): return false
        default: return left.uid < right.uid
        }
    }

    /// −1, 0 or 1; missing sorts after everything.
    static func compare(_ left: SearchResult.SortValue, _ right: SearchResult.SortValue) -> Int {
        switch (left, right) {
        case (.number(let a), .number(let b)) where a.isNaN || b.isNaN: a.isNaN == b.isNaN ? 0 : (a.isNaN ? 1 : -1)  // after every number
        case (.number(let a), .number(let b)): a < b ? -1 : (a > b ? 1 : 0)
        case (.text(let a), .text(let b)): a < b ? -1 : (a > b ? 1 : 0)
        case (.number, .text): -1
        case (.text, .number): 1
        case (.missing, .missing): 0
        case (.missing, _): 1
        case (_, .missing): -1
        }
    }
}

/// Merges results of disjoint partitions (Sensei's `ResultMerger`): counts summed, hits merged in
/// the request's order, facet counts summed per value.
public enum ResultMerger {
    /// How many facet values a node sends for a facet (Sensei raises `max` to at least 50).
    public static let nodeFacetMinimum = 50

    /// Combines partition results on a node: all hits up to `from + size`, facets cut to
    /// `max(max, 50)` values.
    public static func combineOnNode(_ results: [SearchResult], request: SearchRequest) -> SearchResult {
        var merged = sum(results, request: request)
        merged.hits = Array(merged.hits.prefix(request.from + request.size))
        for (name, counts) in merged.facets {
            var spec = request.facets[name] ?? SearchRequest.FacetSpec()
            spec.max = max(spec.max, nodeFacetMinimum)
            spec.minCount = 1
            merged.facets[name] = cut(counts, spec: spec, selected: [])
        }
        return merged
    }

    /// The broker's merge: hits in order with `from`/`size` applied after merging; facets cut to
    /// the requested `max` and `minCount`, ordered by count or value, always keeping (and
    /// flagging) the values the request selected.
    public static func merge(_ results: [SearchResult], request: SearchRequest) -> SearchResult {
        var merged = sum(results, request: request)
        merged.hits = Array(merged.hits.dropFirst(request.from).prefix(request.size))
        for (name, spec) in request.facets {
            let selected = Set(request.selections.filter { $0.field == name }.flatMap(\.values))
            merged.facets[name] = cut(merged.facets[name] ?? [], spec: spec, selected: selected)
        }
        return merged
    }

    static func sum(_ results: [SearchResult], request: SearchRequest) -> SearchResult {
        var merged = SearchResult()
        var counts: [String: [String: Int]] = [:]
        for result in results {
            merged.numhits += result.numhits
            merged.totaldocs += result.totaldocs
            merged.hits += result.hits
            merged.errors += result.errors
            for (name, values) in result.facets {
                for value in values { counts[name, default: [:]][value.value, default: 0] += value.count }
            }
        }
        merged.hits.sort(by: HitOrder(sort: request.sort).precedes)
        for (name, values) in counts { merged.facets[name] = values.map { SearchResult.FacetCount(value: $0.key, count: $0.value) } }
        for name in request.facets.keys where merged.facets[name] == nil { merged.facets[name] = [] }
        return merged
    }

    static func cut(_ counts: [SearchResult.FacetCount], spec: SearchRequest.FacetSpec, selected: Set<String>) -> [SearchResult.FacetCount] {
        let ordered = counts.filter { $0.count >= spec.minCount }.sorted { left, right in
            if spec.order == .hits, left.count != right.count { return left.count > right.count }
            return left.value < right.value
        }
        var kept = Array(ordered.prefix(max(spec.max, 0)))
        for value in ordered.dropFirst(max(spec.max, 0)) where selected.contains(value.value) { kept.append(value) }
        for value in selected where !kept.contains(where: { $0.value == value }) {
            if let count = counts.first(where: { $0.value == value }) { kept.append(count) }
        }
        return kept.map { SearchResult.FacetCount(value: $0.value, count: $0.count, selected: selected.contains($0.value)) }
    }
}
