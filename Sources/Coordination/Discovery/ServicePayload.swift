import Foundation

/// The payload of a ``ServiceInstance``: a JSON value, written so that Curator's
/// `JsonInstanceSerializer` reads it back.
///
/// Curator types the payload itself with Jackson's class information (`@JsonTypeInfo` on the
/// payload field): an object payload is written as a `java.util.HashMap`
/// (`{"@class":"java.util.HashMap",…}`), an array payload as `["java.util.ArrayList",[…]]`, a
/// number that needs 64 bits as `["java.lang.Long",n]`; strings, booleans, numbers that fit 32
/// bits and everything inside an object or an array are plain JSON. Reading, the payload's
/// wrapper is taken off again. A Java payload of one of the service's own classes reads here as
/// an object (its `@class` dropped); writing one back is not possible from Swift.
public enum ServicePayload: Sendable, Hashable, Decodable {
    /// JSON `null` (read as no payload).
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A whole number (a Java `Integer`, or a `Long` beyond 32 bits).
    case integer(Int64)
    /// A number with a fraction.
    case double(Double)
    /// A string.
    case string(String)
    /// An array (a Java `ArrayList` at the top).
    case array([ServicePayload])
    /// An object (a Java `HashMap` at the top).
    case object([String: ServicePayload])

    /// Reads a plain JSON value.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let values = try? container.decode([ServicePayload].self) {
            self = .array(values)
        } else {
            self = .object(try container.decode([String: ServicePayload].self))
        }
    }

    /// The payload a document's `payload` field holds, Jackson's type information taken off:
    /// `@class` from an object, the `["java.…", value]` wrapper from anything else.
    init(typedJSON value: ServicePayload) {
        switch value {
        case .object(var members):
            members.removeValue(forKey: "@class")
            self = .object(members)
        case .array(let values) where values.count == 2:
            if case .string(let type) = values[0], type.hasPrefix("java.") {
                self = values[1]
            } else {
                self = value
            }
        default:
            self = value
        }
    }

    /// The value as Curator writes a payload: typed at the top, plain inside.
    var curatorJSON: String {
        switch self {
        case .integer(let value) where Int32(exactly: value) == nil:
            return "[\"java.lang.Long\",\(value)]"
        case .array(let values):
            return "[\"java.util.ArrayList\",[" + values.map(\.plainJSON).joined(separator: ",") + "]]"
        case .object(let members):
            let body = members.keys.sorted().map { JSONText.quoted($0) + ":" + members[$0]!.plainJSON }
            return "{\"@class\":\"java.util.HashMap\"" + body.map { "," + $0 }.joined() + "}"
        default:
            return plainJSON
        }
    }

    /// The value as plain JSON (object keys sorted).
    var plainJSON: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .integer(let value): return "\(value)"
        case .double(let value): return value.isFinite ? "\(value)" : "null"
        case .string(let value): return JSONText.quoted(value)
        case .array(let values): return "[" + values.map(\.plainJSON).joined(separator: ",") + "]"
        case .object(let members):
            return "{" + members.keys.sorted().map { JSONText.quoted($0) + ":" + members[$0]!.plainJSON }.joined(separator: ",") + "}"
        }
    }
}

/// Writing JSON text by hand, where the order of fields matters (Curator's readers do not care,
/// but the bytes should be what Curator writes).
enum JSONText {
    static func quoted(_ string: String) -> String {
        var text = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case let control where control.value < 0x20: text += String(format: "\\u%04x", control.value)
            default: text.unicodeScalars.append(scalar)
            }
        }
        return text + "\""
    }
}
