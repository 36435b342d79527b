import Foundation

/// sequins' feature flags, as goforit's JSON file backend reads them
/// (`goforit_flag_json_path`): `{"flags": [{"Name": "sequins.prevent_download.sequins", "Rate": 1}],
/// "updated": 1519247256}`. A flag is on for a check when a random number in [0, 1) is below its
/// rate: 1 is always on, 0 (or a flag not in the file) always off. Pure: parsing and evaluation.
public struct FeatureFlags: Sendable, Hashable {
    /// Flag name → rate.
    public var rates: [String: Double]

    public init(rates: [String: Double] = [:]) {
        self.rates = rates
    }

    /// The flags sequins checks: `<prefix>.<cluster_name>`, or `<prefix>` with an empty cluster name.
    public static func name(_ prefix: String, clusterName: String) -> String {
        clusterName.isEmpty ? prefix : prefix + "." + clusterName
    }

    /// `sequins.prevent_download`: no downloads of new versions (see ``KVNode``).
    public static let preventDownload = "sequins.prevent_download"

    /// Parses goforit's file. As Go's JSON decoding does, the keys `Name` and `Rate` match in any
    /// case, other keys are ignored, and a name listed twice keeps its last rate.
    /// - Throws: ``FlagFileError`` naming what is wrong.
    public init(json: Data) throws(FlagFileError) {
        let root: JSONValue
        do { root = try JSONDecoder().decode(JSONValue.self, from: json) } catch {
            throw FlagFileError("not JSON: \(error)")
        }
        guard case .object(let fields) = root else { throw FlagFileError("the top level must be an object with \"flags\"") }
        var rates: [String: Double] = [:]
        for (key, value) in fields where key.lowercased() == "flags" {
            if case .null = value { continue }
            guard case .array(let flags) = value else { throw FlagFileError("\"flags\" must be an array") }
            for (index, entry) in flags.enumerated() {
                guard case .object(let flag) = entry else { throw FlagFileError("flags[\(index)] must be an object") }
                var name = ""
                var rate = 0.0
                for (field, value) in flag {
                    switch (field.lowercased(), value) {
                    case ("name", .string(let text)): name = text
                    case ("name", _): throw FlagFileError("flags[\(index)].Name must be a string")
                    case ("rate", .number(let number)): rate = number
                    case ("rate", _): throw FlagFileError("flags[\(index)].Rate must be a number")
                    default: continue
                    }
                }
                rates[name] = rate
            }
        }
        self.rates = rates
    }

    /// Any JSON value, decoded strictly (a number is never a boolean and the other way round).
    private enum JSONValue: Decodable {
        case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let number = try? container.decode(Double.self) {
                self = .number(number)
            } else if let bool = try? container.decode(Bool.self) {
                self = .bool(bool)
            } else if let string = try? container.decode(String.self) {
                self = .string(string)
            } else if let array = try? container.decode([JSONValue].self) {
                self = .array(array)
            } else {
                self = .object(try container.decode([String: JSONValue].self))
            }
        }
    }

    /// Whether `name` is on for one check, given a random number in [0, 1).
    public func isEnabled(_ name: String, random: Double) -> Bool {
        random < (rates[name] ?? 0)
    }

    /// Whether `name` is on for one check.
    public func isEnabled(_ name: String) -> Bool {
        isEnabled(name, random: Double.random(in: 0..<1))
    }
}

/// A flag file that cannot be used (the last good flags stay in force).
public struct FlagFileError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
