import Foundation

/// One document from the gateway, reduced to what the index needs: its uid, each column's values
/// as text (numbers also as numbers), and the source line (returned with `fetchStored`).
public struct SearchDocument: Sendable, Hashable {
    public var uid: String
    /// Per schema column (in schema order): its values.
    public var values: [[String]]
    /// Per schema column: the first value as a number, for numeric columns.
    public var numbers: [Double?]
    public var source: String

    public struct Error: Swift.Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    /// A document as a segment file kept it.
    init(uid: String, values: [[String]], numbers: [Double?], source: String) {
        self.uid = uid
        self.values = values
        self.numbers = numbers
        self.source = source
    }

    /// Parses one JSON line against `schema`.
    /// - Throws: ``Error`` saying why the line is not a document.
    public init(jsonLine line: String, schema: SearchSchema) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw Error(description: "not a JSON object")
        }
        guard let rawUID = object[schema.uidField], !(rawUID is NSNull) else {
            throw Error(description: "no uid field \(schema.uidField)")
        }
        if let number = JSONScalar.number(rawUID) {
            guard number.doubleValue == number.doubleValue.rounded() else { throw Error(description: "uid \(number) is not an integer") }
            uid = String(number.int64Value)
        } else if let text = rawUID as? String, !text.isEmpty {
            uid = text
        } else {
            throw Error(description: "uid field \(schema.uidField) must be a number or a string")
        }
        values = []
        numbers = []
        for column in schema.columns {
            var columnValues: [String] = []
            switch object[column.name] {
            case let list as [Any]: columnValues = list.compactMap(Self.text)
            case let value?:
                if let text = Self.text(value) {
                    columnValues = column.multi ? text.components(separatedBy: column.delimiter).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } : [text]
                }
            case nil: break
            }
            var number: Double?
            if column.type.isNumeric, let first = columnValues.first {
                guard let parsed = Double(first), parsed.isFinite else {
                    throw Error(description: "column \(column.name) is \(column.type.rawValue) but has \"\(first)\"")
                }
                number = parsed
            }
            values.append(columnValues)
            numbers.append(number)
        }
        source = line
    }

    static func text(_ value: Any) -> String? {
        switch value {
        case is NSNull: return nil
        case let text as String: return text
        default:
            if let number = JSONScalar.number(value) {
                let double = number.doubleValue
                return double == double.rounded() && abs(double) < 1e15 ? String(Int64(double)) : String(double)
            }
            if JSONScalar.isBool(value), let flag = value as? Bool { return flag ? "true" : "false" }
            return nil
        }
    }
}
