import Foundation

/// How a ``TypedNode``'s value becomes a znode's bytes and back.
public protocol NodeCodec<Value>: Sendable {
    /// The type of the values.
    associatedtype Value: Sendable
    /// The bytes that store `value`.
    func encode(_ value: Value) throws -> [UInt8]
    /// The value stored in `bytes`; throws when they do not hold one.
    func decode(_ bytes: [UInt8]) throws -> Value
}

/// JSON through `Codable` (Foundation's encoder and decoder): the default codec of ``TypedNode``.
public struct JSONNodeCodec<Value: Codable & Sendable>: NodeCodec {
    /// Sorted keys by default, so that equal values store equal bytes.
    public var outputFormatting: JSONEncoder.OutputFormatting = [.sortedKeys]
    /// How dates are written and read. Default: ISO 8601.
    public var dateStrategy: DateStrategy = .iso8601

    /// How dates are written and read.
    public enum DateStrategy: Sendable, Hashable {
        /// `2026-12-06T05:00:00Z`.
        case iso8601
        /// Milliseconds since 1970 (as Java writes `Date`s).
        case millisecondsSince1970
    }

    /// The defaults, as documented on each field.
    public init() {}

    /// The value as JSON.
    public func encode(_ value: Value) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = outputFormatting
        switch dateStrategy {
        case .iso8601: encoder.dateEncodingStrategy = .iso8601
        case .millisecondsSince1970: encoder.dateEncodingStrategy = .millisecondsSince1970
        }
        return Array(try encoder.encode(value))
    }

    /// The value read from JSON.
    public func decode(_ bytes: [UInt8]) throws -> Value {
        let decoder = JSONDecoder()
        switch dateStrategy {
        case .iso8601: decoder.dateDecodingStrategy = .iso8601
        case .millisecondsSince1970: decoder.dateDecodingStrategy = .millisecondsSince1970
        }
        return try decoder.decode(Value.self, from: Data(bytes))
    }
}
