import Foundation

/// What a document looks like, in Sensei's `schema.json` shape:
///
/// ```json
/// { "table": { "uid": "id",
///              "columns": [ {"name": "color", "type": "string"},
///                           {"name": "year", "type": "int"},
///                           {"name": "tags", "type": "string", "multi": true, "delimiter": ","},
///                           {"name": "contents", "type": "text", "index": "ANALYZED", "store": "YES"} ] },
///   "facets": [ {"name": "color", "type": "simple"},
///               {"name": "year", "type": "range", "params": [{"name": "range", "value": "[1993 TO 1994]"}]},
///               {"name": "tags", "type": "multi"},
///               {"name": "category", "type": "path", "params": [{"name": "separator", "value": "/"}]} ] }
/// ```
/// Full-text columns are `type: text` (or `index: ANALYZED`); stored columns (`store: YES`, and every
/// non-text column) come back in hits.
public struct SearchSchema: Sendable, Hashable {
    public enum ColumnType: String, Sendable, Hashable {
        case string, text, int, long, short, float, double, char, date

        public var isNumeric: Bool { [.int, .long, .short, .float, .double].contains(self) }
    }

    public struct Column: Sendable, Hashable {
        public var name: String
        public var type: ColumnType
        /// Several values: a JSON array, or one string split at `delimiter`.
        public var multi: Bool = false
        public var delimiter: String = ","
        /// Analyzed for full-text search (BM25).
        public var fullText: Bool { type == .text || analyzed }
        var analyzed = false
        /// Returned in hits.
        public var stored: Bool
    }

    public enum FacetType: String, Sendable, Hashable {
        case simple, multi, range, path
    }

    /// A numeric bucket of a range facet, written `[low TO high]` (`*` for open ends, inclusive).
    public struct Range: Sendable, Hashable {
        public var label: String
        public var low: Double
        public var high: Double

        public func contains(_ value: Double) -> Bool { value >= low && value <= high }

        /// Parses `[1993 TO 1994]`, `[* TO 10]`, or Sensei's older `1993-1994`.
        public init?(_ text: String) {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            var low = "", high = ""
            if trimmed.hasPrefix("["), trimmed.hasSuffix("]") {
                let parts = trimmed.dropFirst().dropLast().components(separatedBy: " TO ")
                guard parts.count == 2 else { return nil }
                (low, high) = (parts[0].trimmingCharacters(in: .whitespaces), parts[1].trimmingCharacters(in: .whitespaces))
            } else if let dash = trimmed.dropFirst().firstIndex(of: "-") {
                (low, high) = (String(trimmed[..<dash]), String(trimmed[trimmed.index(after: dash)...]))
            } else {
                return nil
            }
            guard let lowValue = low == "*" ? -Double.infinity : Double(low), let highValue = high == "*" ? Double.infinity : Double(high),
                lowValue <= highValue
            else { return nil }
            label = "[\(low) TO \(high)]"
            self.low = lowValue
            self.high = highValue
        }
    }

    public struct Facet: Sendable, Hashable {
        public var name: String
        public var type: FacetType
        /// The column the facet reads (its name unless `column` is given).
        public var column: String
        public var ranges: [Range] = []
        public var separator: String = "/"
    }

    public var uidField: String
    public var columns: [Column]
    public var facets: [Facet]

    public func column(named name: String) -> Column? { columns.first { $0.name == name } }
    public func facet(named name: String) -> Facet? { facets.first { $0.name == name } }
    public var fullTextColumns: [String] { columns.filter(\.fullText).map(\.name) }

    public struct Error: Swift.Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = "schema: " + description }
    }

    public init(uidField: String, columns: [Column], facets: [Facet]) throws {
        self.uidField = uidField
        self.columns = columns
        self.facets = facets
        try validate()
    }

    /// Reads Sensei's `schema.json`.
    /// - Throws: ``Error`` naming the part of the schema that is wrong.
    public init(json data: Data) throws {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw Error("not a JSON object") }
        guard let table = root["table"] as? [String: Any] else { throw Error("no \"table\" object") }
        guard let uid = table["uid"] as? String, !uid.isEmpty else { throw Error("table.uid must name the uid field") }
        guard let rawColumns = table["columns"] as? [[String: Any]] else { throw Error("table.columns must be an array of objects") }
        var columns: [Column] = []
        for (index, raw) in rawColumns.enumerated() {
            guard let name = raw["name"] as? String, !name.isEmpty else { throw Error("table.columns[\(index)] has no name") }
            let typeName = (raw["type"] as? String ?? "string").lowercased()
            guard let type = ColumnType(rawValue: typeName) else {
                throw Error("column \(name): unknown type \(typeName) (string, text, int, long, short, float, double, char, date)")
            }
            let multi = raw["multi"].map { JSONScalar.isBool($0) ? ($0 as? Bool ?? false) : ($0 as? String)?.lowercased() == "true" } ?? false
            let analyzed = (raw["index"] as? String)?.uppercased() == "ANALYZED"
            let storeFlag = (raw["store"] as? String)?.uppercased()
            var column = Column(name: name, type: type, multi: multi, stored: storeFlag.map { $0 == "YES" } ?? (type != .text && !analyzed))
            column.analyzed = analyzed
            if let delimiter = raw["delimiter"] as? String, !delimiter.isEmpty { column.delimiter = delimiter }
            columns.append(column)
        }
        var facets: [Facet] = []
        for (index, raw) in (root["facets"] as? [[String: Any]] ?? []).enumerated() {
            guard let name = raw["name"] as? String, !name.isEmpty else { throw Error("facets[\(index)] has no name") }
            let typeName = (raw["type"] as? String ?? "simple").lowercased()
            guard let type = FacetType(rawValue: typeName) else { throw Error("facet \(name): unknown type \(typeName) (simple, multi, range, path)") }
            var facet = Facet(name: name, type: type, column: raw["column"] as? String ?? name)
            for param in raw["params"] as? [[String: Any]] ?? [] {
                let value = param["value"] as? String ?? ""
                switch param["name"] as? String {
                case "range":
                    guard let range = Range(value) else { throw Error("facet \(name): \"\(value)\" is not a range like [1993 TO 1994]") }
                    facet.ranges.append(range)
                case "separator": if !value.isEmpty { facet.separator = value }
                default: break
                }
            }
            facets.append(facet)
        }
        try self.init(uidField: uid, columns: columns, facets: facets)
    }

    func validate() throws {
        var seen = Set<String>()
        for column in columns {
            guard seen.insert(column.name).inserted else { throw Error("column \(column.name) is declared twice") }
        }
        for facet in facets {
            guard let column = column(named: facet.column) else { throw Error("facet \(facet.name) reads column \(facet.column), which is not declared") }
            if facet.type == .range {
                guard column.type.isNumeric else { throw Error("range facet \(facet.name) needs a numeric column, \(column.name) is \(column.type.rawValue)") }
                guard !facet.ranges.isEmpty else { throw Error("range facet \(facet.name) has no ranges (params: [{\"name\": \"range\", \"value\": \"[1 TO 2]\"}])") }
            }
        }
    }
}
