import Foundation

/// Telling JSON numbers from booleans in `JSONSerialization` output: on Linux both are
/// `NSNumber`s and `0`/`1` also cast to `Bool`, so booleans are recognised by their type code.
enum JSONScalar {
    static func isBool(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }

    static func number(_ value: Any) -> NSNumber? {
        guard let number = value as? NSNumber, !isBool(value) else { return nil }
        return number
    }
}
