import Foundation

/// One search, as Sensei's request JSON (or its older URL parameters) describes it. Brokers send
/// it to nodes in ``SearchRequestWire``'s binary layout, with `partitions` filled in and
/// `from`/`size` widened (a field added here must be added there).
public struct SearchRequest: Sendable, Hashable, Codable {
    /// `query.query_string.query`; empty matches every document.
    public var query: String = ""
    /// `query.query_string.default_field` and `.fields`: what a term without `field:` searches
    /// (Sensei's query parser: `contents`).
    public var defaultFields: [String] = ["contents"]
    /// `query.query_string.default_operator`: how clauses without an operator between them
    /// combine (Lucene's default: or).
    public var defaultOperator: Selection.Operator = .or
    public var from: Int = 0
    public var size: Int = 10
    /// Selections narrow the hits and the facets' counts (a facet with `expand` ignores its own
    /// selection, so it still shows the alternatives to what is selected in it).
    public var selections: [Selection] = []
    /// Filters narrow the hits and every facet.
    public var filters: [Selection] = []
    public var facets: [String: FacetSpec] = [:]
    /// Empty means by relevance (`_score` descending).
    public var sort: [SortField] = []
    public var routeParam: String?
    public var fetchStored: Bool = false
    /// Set by the broker: the partitions a node searches (nil: all of its own).
    public var partitions: [Int]?

    public init() {}

    public struct Selection: Sendable, Hashable, Codable {
        public enum Operator: String, Sendable, Hashable, Codable { case and, or }
        public var field: String
        public var values: [String] = []
        public var excludes: [String] = []
        public var `operator`: Operator = .or
        public var range: NumericRange?

        public init(field: String, values: [String] = [], excludes: [String] = [], operator: Operator = .or, range: NumericRange? = nil) {
            self.field = field
            self.values = values
            self.excludes = excludes
            self.operator = `operator`
            self.range = range
        }
    }

    public struct NumericRange: Sendable, Hashable, Codable {
        public var low: Double?
        public var high: Double?
        public var includeLow = true
        public var includeHigh = true

        public init(low: Double?, high: Double?, includeLow: Bool = true, includeHigh: Bool = true) {
            self.low = low
            self.high = high
            self.includeLow = includeLow
            self.includeHigh = includeHigh
        }

        public func contains(_ value: Double) -> Bool {
            if let low, includeLow ? value < low : value <= low { return false }
            if let high, includeHigh ? value > high : value >= high { return false }
            return true
        }
    }

    public struct FacetSpec: Sendable, Hashable, Codable {
        public enum Order: String, Sendable, Hashable, Codable { case hits, val }
        public var max: Int = 10
        public var minCount: Int = 1
        public var order: Order = .hits
        /// Bobo's `expandSelection` (Sensei's `expand`, default false): count the documents that
        /// pass every selection but this facet's own, so its other values show too. Off, a
        /// facet's own selection narrows its counts like any other.
        public var expand: Bool = false

        public init(max: Int = 10, minCount: Int = 1, order: Order = .hits, expand: Bool = false) {
            self.max = max
            self.minCount = minCount
            self.order = order
            self.expand = expand
        }
    }

    public struct SortField: Sendable, Hashable, Codable {
        /// A column, or `_score` for relevance.
        public var field: String
        public var descending: Bool

        public init(field: String, descending: Bool) {
            self.field = field
            self.descending = descending
        }

        public static let relevance = SortField(field: "_score", descending: true)
    }

    /// What the broker asks each node: the first `from + size` hits (from 0), since paging
    /// happens after the nodes' results are merged.
    public var forNodes: SearchRequest {
        var request = self
        request.size = from + size
        request.from = 0
        return request
    }
}

/// A request that cannot be run, with what is wrong (HTTP 400).
public struct RequestError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension SearchRequest {
    /// Sensei's request JSON.
    /// - Throws: ``RequestError`` naming the part that is wrong.
    public init(senseiJSON data: Data) throws {
        guard let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
            throw RequestError("the request is not valid JSON")
        }
        guard let root = object as? [String: Any] else { throw RequestError("the request must be a JSON object") }
        self.init()
        if let query = root["query"] {
            guard let query = query as? [String: Any] else { throw RequestError("query must be an object like {\"query_string\": {\"query\": \"...\"}}") }
            if let queryString = query["query_string"] {
                guard let queryString = queryString as? [String: Any], let text = queryString["query"] as? String else {
                    throw RequestError("query.query_string.query must be a string")
                }
                self.query = text
                var fields: [String] = []
                if let field = queryString["default_field"], !(field is NSNull) {
                    guard let name = field as? String else { throw RequestError("query.query_string.default_field must be a string") }
                    if !name.isEmpty { fields.append(name) }
                }
                fields += try Self.strings(queryString["fields"], name: "query.query_string.fields").filter { !$0.isEmpty }
                if !fields.isEmpty { defaultFields = fields }
                if let op = queryString["default_operator"], !(op is NSNull) {
                    guard let text = op as? String, let parsed = Selection.Operator(rawValue: text.lowercased()) else {
                        throw RequestError("query.query_string.default_operator must be and or or")
                    }
                    defaultOperator = parsed
                }
            } else if !query.isEmpty {
                throw RequestError("unsupported query type \(query.keys.sorted().joined(separator: ", ")) (query_string is supported)")
            }
        }
        from = try Self.integer(root["from"], name: "from", default: 0)
        size = try Self.integer(root["size"], name: "size", default: 10)
        try Self.checkWindow(from: from, size: size)
        if let selections = root["selections"] {
            guard let list = selections as? [[String: Any]] else { throw RequestError("selections must be an array of objects") }
            self.selections = try list.flatMap { try Self.selections($0) }
        }
        if let filter = root["filter"] {
            guard let object = filter as? [String: Any] else { throw RequestError("filter must be an object") }
            filters = try Self.selections(object)
        }
        if let facets = root["facets"] {
            guard let object = facets as? [String: Any] else { throw RequestError("facets must be an object of facet names") }
            for (name, rawSpec) in object {
                guard let spec = rawSpec as? [String: Any] else { throw RequestError("facets.\(name) must be an object") }
                var facet = FacetSpec()
                facet.max = try Self.integer(spec["max"], name: "facets.\(name).max", default: 10)
                facet.minCount = try Self.integer(spec["minCount"] ?? spec["minHit"], name: "facets.\(name).minCount", default: 1)
                if let order = spec["order"] {
                    guard let text = order as? String, let parsed = FacetSpec.Order(rawValue: text.lowercased()) else {
                        throw RequestError("facets.\(name).order must be hits or val")
                    }
                    facet.order = parsed
                }
                if let expand = spec["expand"], !(expand is NSNull) {
                    guard JSONScalar.isBool(expand), let flag = expand as? Bool else { throw RequestError("facets.\(name).expand must be true or false") }
                    facet.expand = flag
                }
                self.facets[name] = facet
            }
        }
        if let sort = root["sort"] {
            guard let list = sort as? [Any] else { throw RequestError("sort must be an array like [{\"year\": \"desc\"}, \"_score\"]") }
            for entry in list {
                if let name = entry as? String {
                    self.sort.append(Self.sortField(name, direction: nil))
                } else if let object = entry as? [String: String], object.count == 1, let (name, direction) = object.first {
                    guard ["asc", "desc"].contains(direction.lowercased()) else { throw RequestError("sort direction for \(name) must be asc or desc, got \(direction)") }
                    self.sort.append(Self.sortField(name, direction: direction.lowercased()))
                } else {
                    throw RequestError("each sort entry must be a field name or {\"field\": \"asc|desc\"}")
                }
            }
        }
        if let route = root["routeParam"], !(route is NSNull) {
            routeParam = (route as? String) ?? "\(route)"
        }
        if let fetch = root["fetchStored"] {
            guard JSONScalar.isBool(fetch), let flag = fetch as? Bool else { throw RequestError("fetchStored must be true or false") }
            fetchStored = flag
        }
    }

    static func sortField(_ name: String, direction: String?) -> SortField {
        if name == "_score" || name == "relevance" { return SortField(field: "_score", descending: direction != "asc") }
        if name == "relrev" { return SortField(field: "_score", descending: false) }
        return SortField(field: name, descending: direction == "desc")
    }

    /// The most hits a request may page through (`from + size`): a node keeps that many per partition.
    public static let maxWindow = 100_000

    /// Refuses a negative `from` or `size`, and a window (`from + size`) past ``maxWindow``,
    /// without overflowing on huge values.
    static func checkWindow(from: Int, size: Int) throws {
        guard from >= 0, size >= 0 else { throw RequestError("from and size must not be negative") }
        let (window, overflow) = from.addingReportingOverflow(size)
        guard !overflow, window <= maxWindow else { throw RequestError("from + size must be at most \(maxWindow)") }
    }

    static func integer(_ value: Any?, name: String, default defaultValue: Int) throws -> Int {
        guard let value, !(value is NSNull) else { return defaultValue }
        if let number = JSONScalar.number(value), let integer = Int(exactly: number.doubleValue) { return integer }
        if let text = value as? String, let number = Int(text) { return number }
        throw RequestError("\(name) must be an integer")
    }

    /// `{"terms": {"color": {"values": [...], "excludes": [...], "operator": "or"}}}` or
    /// `{"range": {"year": {"from": 1993, "to": 1994, "include_lower": true, "include_upper": true}}}`
    /// or `{"term": {"color": {"value": "red"}}}`.
    static func selections(_ object: [String: Any]) throws -> [Selection] {
        var result: [Selection] = []
        for (kind, body) in object {
            guard let fields = body as? [String: Any] else { throw RequestError("\(kind) selection must be an object of fields") }
            for (field, rawSpec) in fields {
                guard let spec = rawSpec as? [String: Any] else { throw RequestError("\(kind) selection on \(field) must be an object") }
                switch kind {
                case "terms":
                    let values = try strings(spec["values"], name: "\(field).values")
                    let excludes = try strings(spec["excludes"], name: "\(field).excludes")
                    var selection = Selection(field: field, values: values, excludes: excludes)
                    if let op = spec["operator"] {
                        guard let text = op as? String, let parsed = Selection.Operator(rawValue: text.lowercased()) else {
                            throw RequestError("\(field).operator must be and or or")
                        }
                        selection.operator = parsed
                    }
                    result.append(selection)
                case "term":
                    guard let value = spec["value"] else { throw RequestError("term selection on \(field) needs a value") }
                    result.append(Selection(field: field, values: ["\(value)"]))
                case "range":
                    func bound(_ key: String) throws -> Double? {
                        guard let raw = spec[key], !(raw is NSNull) else { return nil }
                        if let number = JSONScalar.number(raw) { return number.doubleValue }
                        if let text = raw as? String, let number = Double(text) { return number }
                        if let text = raw as? String, text == "*" { return nil }
                        throw RequestError("range selection on \(field): \(key) must be a number")
                    }
                    let range = NumericRange(
                        low: try bound("from"), high: try bound("to"),
                        includeLow: spec["include_lower"].flatMap { JSONScalar.isBool($0) ? $0 as? Bool : nil } ?? true,
                        includeHigh: spec["include_upper"].flatMap { JSONScalar.isBool($0) ? $0 as? Bool : nil } ?? true)
                    result.append(Selection(field: field, range: range))
                default:
                    throw RequestError("unsupported selection type \(kind) (terms, term, range)")
                }
            }
        }
        return result
    }

    static func strings(_ value: Any?, name: String) throws -> [String] {
        guard let value, !(value is NSNull) else { return [] }
        guard let list = value as? [Any] else { throw RequestError("\(name) must be an array") }
        return list.map { ($0 as? String) ?? "\($0)" }
    }

    /// Sensei's older URL parameters: `q`, `start`, `rows`, `sort=relevance|<field>:asc|desc,...`,
    /// `routeparam`, `fetchstored`, `select.<f>.val`, `select.<f>.not`, `select.<f>.op`,
    /// `facet.<f>.max`, `facet.<f>.minhit`, `facet.<f>.order`, `facet.<f>.expand`. Values may repeat or be comma lists.
    public init(parameters: [(name: String, value: String)]) throws {
        self.init()
        var selections: [String: Selection] = [:]
        func values(_ raw: String) -> [String] { raw.split(separator: ",").map { String($0) }.filter { !$0.isEmpty } }
        for (name, value) in parameters {
            switch name {
            case "q": query = value
            case "start": guard let number = Int(value), number >= 0 else { throw RequestError("start must be a non-negative integer") }; from = number
            case "rows": guard let number = Int(value), number >= 0 else { throw RequestError("rows must be a non-negative integer") }; size = number
            case "routeparam": routeParam = value
            case "fetchstored": fetchStored = value.lowercased() == "true"
            case "sort":
                for entry in values(value) {
                    let parts = entry.split(separator: ":").map(String.init)
                    if parts.count == 2 {
                        guard ["asc", "desc"].contains(parts[1].lowercased()) else { throw RequestError("sort direction for \(parts[0]) must be asc or desc") }
                        sort.append(Self.sortField(parts[0], direction: parts[1].lowercased()))
                    } else {
                        sort.append(Self.sortField(entry, direction: nil))
                    }
                }
            default:
                let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                guard parts.count == 3, ["select", "facet"].contains(parts[0]), !parts[1].isEmpty else { continue }
                let field = parts[1]
                if parts[0] == "select" {
                    var selection = selections[field] ?? Selection(field: field)
                    switch parts[2] {
                    case "val": selection.values += values(value)
                    case "not": selection.excludes += values(value)
                    case "op":
                        guard let op = Selection.Operator(rawValue: value.lowercased()) else { throw RequestError("\(name) must be and or or") }
                        selection.operator = op
                    default: throw RequestError("unknown parameter \(name) (select.<facet>.val, .not, .op)")
                    }
                    selections[field] = selection
                } else {
                    var facet = facets[field] ?? FacetSpec()
                    switch parts[2] {
                    case "max": guard let number = Int(value) else { throw RequestError("\(name) must be an integer") }; facet.max = number
                    case "minhit", "mincount": guard let number = Int(value) else { throw RequestError("\(name) must be an integer") }; facet.minCount = number
                    case "order":
                        guard let order = FacetSpec.Order(rawValue: value.lowercased()) else { throw RequestError("\(name) must be hits or val") }
                        facet.order = order
                    case "expand":
                        guard let flag = Bool(value.lowercased()) else { throw RequestError("\(name) must be true or false") }
                        facet.expand = flag
                    default: throw RequestError("unknown parameter \(name) (facet.<facet>.max, .minhit, .order, .expand)")
                    }
                    facets[field] = facet
                }
            }
        }
        self.selections = selections.keys.sorted().map { selections[$0]! }
    }
}

extension SearchRequest {
    /// Checks the request against `schema` before it is run anywhere (a broker answers 400 at
    /// once instead of collecting the same error from every node): the query string parses, and
    /// every field it names, selects, sorts or facets on exists.
    /// - Returns: the parsed query.
    /// - Throws: ``QueryParseError`` or ``RequestError`` naming the problem.
    @discardableResult
    public func validated(against schema: SearchSchema) throws -> QueryNode {
        // Every way in (JSON, the URL's start and rows, a broker's request to a node) comes here
        // before anything adds from and size.
        try Self.checkWindow(from: from, size: size)
        let parsed = try QueryString.parse(self.query, defaultOperator: defaultOperator)
        func known(_ field: String) -> Bool { schema.column(named: field) != nil || schema.facet(named: field) != nil }
        if Self.hasBareTerms(parsed) {
            for field in defaultFields where !known(field) {
                throw RequestError(
                    "a term without field: searches the default field \(field), which the schema does not have (name a field as title:word, or set query.query_string.default_field)")
            }
        }
        let query = parsed.resolvingDefaultFields(defaultFields)
        for field in Self.fields(of: query) where !known(field) { throw RequestError("unknown field \(field) in the query") }
        for selection in selections + filters where !known(selection.field) { throw RequestError("unknown field \(selection.field)") }
        for sort in sort where sort.field != "_score" && !known(sort.field) { throw RequestError("unknown field \(sort.field) in sort") }
        for name in facets.keys.sorted() where schema.facet(named: name) == nil { throw RequestError("unknown facet \(name)") }
        return query
    }

    static func hasBareTerms(_ node: QueryNode) -> Bool {
        switch node {
        case .all: false
        case .term(let field, _), .phrase(let field, _): field == nil
        case .and(let clauses), .or(let clauses): clauses.contains(where: hasBareTerms)
        case .not(let inner): hasBareTerms(inner)
        }
    }

    static func fields(of node: QueryNode) -> [String] {
        switch node {
        case .all: []
        case .term(let field, _), .phrase(let field, _): field.map { [$0] } ?? []
        case .and(let clauses), .or(let clauses): clauses.flatMap { fields(of: $0) }
        case .not(let inner): fields(of: inner)
        }
    }
}
