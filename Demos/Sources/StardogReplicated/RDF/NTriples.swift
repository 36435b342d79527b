/// One RDF term: an IRI, a blank node, or a literal (with a language tag or a datatype).
public enum RDFTerm: Sendable, Hashable {
    case iri(String)
    case blank(String)
    case literal(String, language: String? = nil, datatype: String? = nil)
}

/// One RDF statement.
public struct Triple: Sendable, Hashable {
    public var subject: RDFTerm
    public var predicate: RDFTerm
    public var object: RDFTerm

    public init(_ subject: RDFTerm, _ predicate: RDFTerm, _ object: RDFTerm) {
        self.subject = subject
        self.predicate = predicate
        self.object = object
    }
}

/// N-Triples (W3C RDF 1.1), the body format of Stardog's `add` and `remove`: one triple per line,
/// `#` comments, IRIs in `<>`, blank nodes `_:label`, literals with escapes, `@lang` or
/// `^^<datatype>`. Parsing is all or nothing: the first bad line is an error naming the line.
public enum NTriples {
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "N-Triples line \(line): \(message)" }
    }

    public static func parse(_ text: String) throws -> [Triple] {
        var triples: [Triple] = []
        var lineNumber = 0
        // Lines end with LF or CRLF (split on scalars: Swift sees CRLF as one Character).
        for line in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var characters = Array(line)
            if characters.last == "\r" { characters.removeLast() }
            var scanner = Scanner(characters: characters, line: lineNumber)
            scanner.skipSpace()
            if scanner.atEnd || scanner.peek == "#" { continue }
            let subject = try scanner.term(allowing: [.iri, .blank], role: "subject")
            scanner.skipSpace()
            let predicate = try scanner.term(allowing: [.iri], role: "predicate")
            scanner.skipSpace()
            let object = try scanner.term(allowing: [.iri, .blank, .literal], role: "object")
            scanner.skipSpace()
            guard scanner.peek == "." else { throw scanner.error("expected . after the object") }
            scanner.advance()
            scanner.skipSpace()
            if !scanner.atEnd && scanner.peek != "#" { throw scanner.error("unexpected text after the final .") }
            triples.append(Triple(subject, predicate, object))
        }
        return triples
    }

    /// One term in N-Triples syntax (`<iri>`, `_:label`, `"literal"@en`), as in a `triples`
    /// query's `s`, `p` and `o` parameters.
    public static func parseTerm(_ text: String, role: String) throws -> RDFTerm {
        var scanner = Scanner(characters: Array(text.unicodeScalars), line: 1)
        scanner.skipSpace()
        let term = try scanner.term(allowing: role == "predicate" ? [.iri] : role == "subject" ? [.iri, .blank] : [.iri, .blank, .literal], role: role)
        scanner.skipSpace()
        guard scanner.atEnd else { throw scanner.error("unexpected text after the \(role)") }
        return term
    }

    /// One line per triple, escaped so that ``parse(_:)`` reads it back.
    public static func serialize(_ triples: [Triple]) -> String {
        triples.map { "\(write($0.subject)) \(write($0.predicate)) \(write($0.object)) .\n" }.joined()
    }

    public static func write(_ term: RDFTerm) -> String {
        switch term {
        case .iri(let iri): return "<" + escapeIRI(iri) + ">"
        case .blank(let label): return "_:" + label
        case .literal(let value, let language, let datatype):
            var text = "\"" + escapeLiteral(value) + "\""
            if let language { text += "@" + language } else if let datatype { text += "^^<" + escapeIRI(datatype) + ">" }
            return text
        }
    }

    static func escapeLiteral(_ value: String) -> String {
        var result = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 { result += hexEscape(scalar) } else { result.unicodeScalars.append(scalar) }
            }
        }
        return result
    }

    /// `\uXXXX` for a scalar below U+10000, `\UXXXXXXXX` above.
    static func hexEscape(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return scalar.value > 0xFFFF
            ? "\\U" + String(repeating: "0", count: 8 - hex.count) + hex
            : "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }

    static func escapeIRI(_ iri: String) -> String {
        var result = ""
        for scalar in iri.unicodeScalars {
            if scalar.value <= 0x20 || "<>\"{}|^`\\".unicodeScalars.contains(scalar) {
                result += hexEscape(scalar)
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    enum Kind { case iri, blank, literal }

    struct Scanner {
        let characters: [Unicode.Scalar]
        let line: Int
        var position = 0

        var atEnd: Bool { position >= characters.count }
        var peek: Unicode.Scalar? { atEnd ? nil : characters[position] }
        mutating func advance() { position += 1 }

        func error(_ message: String) -> ParseError { ParseError(line: line, message: message + " (column \(position + 1))") }

        mutating func skipSpace() {
            while let character = peek, character == " " || character == "\t" || character == "\r" { advance() }
        }

        mutating func term(allowing kinds: Set<Kind>, role: String) throws -> RDFTerm {
            switch peek {
            case "<" where kinds.contains(.iri): return .iri(try iri())
            case "_" where kinds.contains(.blank): return .blank(try blank())
            case "\"" where kinds.contains(.literal): return try literal()
            case nil: throw error("the line ends before the \(role)")
            default: throw error("the \(role) must be \(kinds.contains(.literal) ? "an IRI, a blank node or a literal" : kinds.contains(.blank) ? "an IRI or a blank node" : "an IRI")")
            }
        }

        mutating func iri() throws -> String {
            advance()  // <
            var value = String.UnicodeScalarView()
            while let character = peek, character != ">" {
                if character == "\\" {
                    value.append(try unicodeEscape())
                    continue
                }
                if character.value <= 0x20 || "<\"{}|^`".unicodeScalars.contains(character) {
                    throw error("\"\(character)\" is not allowed in an IRI")
                }
                value.append(character)
                advance()
            }
            guard peek == ">" else { throw error("unclosed IRI") }
            advance()
            guard !value.isEmpty else { throw error("empty IRI") }
            return String(value)
        }

        mutating func blank() throws -> String {
            advance()
            guard peek == ":" else { throw error("a blank node starts with _:") }
            advance()
            var label = String.UnicodeScalarView()
            while let character = peek, character.properties.isAlphabetic || character.properties.numericType != nil || "_-.".unicodeScalars.contains(character) {
                label.append(character)
                advance()
            }
            // A label cannot end with a dot (it is the statement's end).
            while label.last == "." {
                label.removeLast()
                position -= 1
            }
            guard !label.isEmpty else { throw error("empty blank node label") }
            return String(label)
        }

        mutating func literal() throws -> RDFTerm {
            advance()  // "
            var value = String.UnicodeScalarView()
            while let character = peek, character != "\"" {
                if character == "\\" {
                    let next = position + 1 < characters.count ? characters[position + 1] : nil
                    switch next {
                    case "t": value.append("\t"); position += 2
                    case "b": value.append("\u{08}"); position += 2
                    case "n": value.append("\n"); position += 2
                    case "r": value.append("\r"); position += 2
                    case "f": value.append("\u{0C}"); position += 2
                    case "\"": value.append("\""); position += 2
                    case "'": value.append("'"); position += 2
                    case "\\": value.append("\\"); position += 2
                    case "u", "U": value.append(try unicodeEscape())
                    default: throw error("unknown escape \\\(next.map(String.init) ?? "")")
                    }
                    continue
                }
                value.append(character)
                advance()
            }
            guard peek == "\"" else { throw error("unclosed literal") }
            advance()
            if peek == "@" {
                advance()
                var language = ""
                while let character = peek, character.properties.isAlphabetic || character.properties.numericType != nil || character == "-" {
                    language.unicodeScalars.append(character)
                    advance()
                }
                guard !language.isEmpty, language.first?.isLetter == true else { throw error("a language tag must start with a letter") }
                return .literal(String(value), language: language)
            }
            if peek == "^" {
                advance()
                guard peek == "^" else { throw error("a datatype is written ^^<iri>") }
                advance()
                guard peek == "<" else { throw error("a datatype is written ^^<iri>") }
                return .literal(String(value), datatype: try iri())
            }
            return .literal(String(value))
        }

        /// `\uXXXX` or `\UXXXXXXXX`, the reader at the backslash.
        mutating func unicodeEscape() throws -> Unicode.Scalar {
            advance()
            let width: Int
            switch peek {
            case "u": width = 4
            case "U": width = 8
            default: throw error("only \\u and \\U escapes are allowed here")
            }
            advance()
            guard position + width <= characters.count else { throw error("a short \\u escape") }
            let hex = String(String.UnicodeScalarView(characters[position..<position + width]))
            guard let code = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(code) else { throw error("bad escape \\u\(hex)") }
            position += width
            return scalar
        }
    }
}
