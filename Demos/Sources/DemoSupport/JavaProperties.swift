/// Java `.properties` files as Sensei and Stardog read them (`java.util.Properties`): `key=value`,
/// `key: value` or `key value`; `#` and `!` comments; a trailing backslash continues a line; the
/// escapes `\t \n \r \f \uXXXX` and `\<any>`. The last occurrence of a key wins.
public enum JavaProperties {
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    public static func parse(_ text: String) throws -> [String: String] {
        var result: [String: String] = [:]
        let physical = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
        var index = 0
        while index < physical.count {
            let startLine = index + 1
            var logical = String(physical[index].drop { $0 == " " || $0 == "\t" || $0 == "\u{0C}" })
            index += 1
            if logical.isEmpty || logical.hasPrefix("#") || logical.hasPrefix("!") { continue }
            // An odd number of trailing backslashes continues the line.
            while logical.reversed().prefix(while: { $0 == "\\" }).count % 2 == 1 {
                logical.removeLast()
                guard index < physical.count else { break }
                logical += physical[index].drop { $0 == " " || $0 == "\t" || $0 == "\u{0C}" }
                index += 1
            }
            let (key, value) = try split(logical, line: startLine)
            result[key] = value
        }
        return result
    }

    private static func split(_ line: String, line number: Int) throws -> (String, String) {
        let characters = Array(line)
        var position = 0
        var keyEnd = characters.count
        while position < characters.count {
            let character = characters[position]
            if character == "\\" { position += 2; continue }
            if character == "=" || character == ":" || character == " " || character == "\t" || character == "\u{0C}" {
                keyEnd = position
                break
            }
            position += 1
        }
        var valueStart = min(keyEnd, characters.count)
        while valueStart < characters.count, characters[valueStart] == " " || characters[valueStart] == "\t" || characters[valueStart] == "\u{0C}" { valueStart += 1 }
        if valueStart < characters.count, characters[valueStart] == "=" || characters[valueStart] == ":" {
            valueStart += 1
            while valueStart < characters.count, characters[valueStart] == " " || characters[valueStart] == "\t" || characters[valueStart] == "\u{0C}" { valueStart += 1 }
        }
        let key = try unescape(characters[0..<min(keyEnd, characters.count)], line: number)
        let value = try unescape(characters[min(valueStart, characters.count)...], line: number)
        return (key, value)
    }

    private static func unescape(_ characters: ArraySlice<Character>, line: Int) throws -> String {
        var result = ""
        var iterator = characters.makeIterator()
        while let character = iterator.next() {
            guard character == "\\" else { result.append(character); continue }
            guard let escaped = iterator.next() else { break }
            switch escaped {
            case "t": result.append("\t")
            case "n": result.append("\n")
            case "r": result.append("\r")
            case "f": result.append("\u{0C}")
            case "u":
                var hex = ""
                for _ in 0..<4 { if let digit = iterator.next() { hex.append(digit) } }
                guard hex.count == 4, let code = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(code) else {
                    throw ParseError(line: line, message: "malformed \\u escape \\u\(hex)")
                }
                result.unicodeScalars.append(scalar)
            default: result.append(escaped)
            }
        }
        return result
    }
}
