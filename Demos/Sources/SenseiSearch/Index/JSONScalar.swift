import Foundation

/// Telling JSON numbers from booleans in `JSONSerialization` output: on Linux both are
/// `NSNumber`s and `0`/`1` also cast to `Bool`, so a boolean is recognised by its class (the one
/// `NSNumber(value: true)` has). (`objCType` is not used: on Linux it can point into freed memory.)
enum JSONScalar {
    private static let booleanClass = ObjectIdentifier(type(of: NSNumber(value: true)))

    static func isBool(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        return ObjectIdentifier(type(of: number)) == booleanClass
    }

    static func number(_ value: Any) -> NSNumber? {
        guard let number = value as? NSNumber, !isBool(value) else { return nil }
        return number
    }
}
