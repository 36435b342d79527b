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
///
/// Reading and writing work on the text's UTF-8 bytes: a term without escapes is one slice of
/// them (every transaction is parsed on the node it reached, on the coordinator and on every
/// member, so parsing sits on each commit's path).
public enum NTriples {
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "N-Triples line \(line): \(message)" }
    }

    public static func parse(_ text: String) throws -> [Triple] {
        var text = text
        return try text.withUTF8 { bytes in
            var triples: [Triple] = []
            var lineNumber = 0
            var lineStart = 0
            // Lines end with LF or CRLF; a last line without either counts too.
            while lineStart <= bytes.count {
                let newline = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
                lineNumber += 1
                var lineEnd = newline
                if lineEnd > lineStart, bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
                var scanner = Scanner(bytes: bytes, start: lineStart, end: lineEnd, line: lineNumber)
                if let triple = try scanner.statement() { triples.append(triple) }
                lineStart = newline + 1
            }
            return triples
        }
    }

    /// One term in N-Triples syntax (`<iri>`, `_:label`, `"literal"@en`), as in a `triples`
    /// query's `s`, `p` and `o` parameters.
    public static func parseTerm(_ text: String, role: String) throws -> RDFTerm {
        var text = text
        return try text.withUTF8 { bytes in
            var scanner = Scanner(bytes: bytes, start: 0, end: bytes.count, line: 1)
            scanner.skipSpace()
            let term = try scanner.term(allowing: role == "predicate" ? .predicate : role == "subject" ? .subject : .object, role: role)
            scanner.skipSpace()
            guard scanner.atEnd else { throw scanner.error("unexpected text after the \(role)") }
            return term
        }
    }

    /// One line per triple, escaped so that ``parse(_:)`` reads it back.
    public static func serialize(_ triples: [Triple]) -> String {
        var bytes: [UInt8] = []
        for triple in triples {
            write(triple.subject, to: &bytes)
            bytes.append(UInt8(ascii: " "))
            write(triple.predicate, to: &bytes)
            bytes.append(UInt8(ascii: " "))
            write(triple.object, to: &bytes)
            bytes.append(contentsOf: " .\n".utf8)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func write(_ term: RDFTerm) -> String {
        var bytes: [UInt8] = []
        write(term, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func write(_ term: RDFTerm, to bytes: inout [UInt8]) {
        switch term {
        case .iri(let iri):
            bytes.append(UInt8(ascii: "<"))
            appendIRI(iri, to: &bytes)
            bytes.append(UInt8(ascii: ">"))
        case .blank(let label):
            bytes.append(contentsOf: "_:".utf8)
            bytes.append(contentsOf: label.utf8)
        case .literal(let value, let language, let datatype):
            bytes.append(UInt8(ascii: "\""))
            appendLiteral(value, to: &bytes)
            bytes.append(UInt8(ascii: "\""))
            if let language {
                bytes.append(UInt8(ascii: "@"))
                bytes.append(contentsOf: language.utf8)
            } else if let datatype {
                bytes.append(contentsOf: "^^<".utf8)
                appendIRI(datatype, to: &bytes)
                bytes.append(UInt8(ascii: ">"))
            }
        }
    }

    static func appendLiteral(_ value: String, to bytes: inout [UInt8]) {
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\n"): bytes.append(contentsOf: #"\n"#.utf8)
            case UInt8(ascii: "\r"): bytes.append(contentsOf: #"\r"#.utf8)
            case UInt8(ascii: "\t"): bytes.append(contentsOf: #"\t"#.utf8)
            case ..<0x20: appendHexEscape(UInt32(byte), to: &bytes)
            default: bytes.append(byte)
            }
        }
    }

    static func appendIRI(_ iri: String, to bytes: inout [UInt8]) {
        for byte in iri.utf8 {
            // Bytes of a multi-byte character are all 0x80 or above: written as they are.
            if byte <= 0x20 || Self.escapedInIRI(byte) {
                appendHexEscape(UInt32(byte), to: &bytes)
            } else {
                bytes.append(byte)
            }
        }
    }

    static func escapedInIRI(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\""), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "|"),
            UInt8(ascii: "^"), UInt8(ascii: "`"), UInt8(ascii: "\\"):
            true
        default: false
        }
    }

    /// `\uXXXX` for a character below U+10000 (only control characters and ASCII are escaped).
    static func appendHexEscape(_ value: UInt32, to bytes: inout [UInt8]) {
        let hex = String(value, radix: 16, uppercase: true)
        bytes.append(contentsOf: #"\u"#.utf8)
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: 4 - hex.utf8.count))
        bytes.append(contentsOf: hex.utf8)
    }

    /// The kinds of term a position allows.
    struct Kinds: OptionSet {
        let rawValue: UInt8
        static let iri = Kinds(rawValue: 1)
        static let blank = Kinds(rawValue: 2)
        static let literal = Kinds(rawValue: 4)
        static let subject: Kinds = [.iri, .blank]
        static let predicate: Kinds = [.iri]
        static let object: Kinds = [.iri, .blank, .literal]
    }

    /// Reads one line (`start..<end` of `bytes`, without its line end).
    struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        let start: Int
        let end: Int
        let line: Int
        var position: Int

        init(bytes: UnsafeBufferPointer<UInt8>, start: Int, end: Int, line: Int) {
            self.bytes = bytes
            self.start = start
            self.end = end
            self.line = line
            position = start
        }

        var atEnd: Bool { position >= end }
        var peek: UInt8? { position < end ? bytes[position] : nil }

        /// The error, at the column (counted in characters) the reader is at.
        func error(_ message: String) -> ParseError {
            let column = bytes[start..<min(position, end)].reduce(1) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
            return ParseError(line: line, message: message + " (column \(column))")
        }

        /// The character at `offset` and how many bytes it takes (the text is valid UTF-8).
        func scalar(at offset: Int) -> (scalar: Unicode.Scalar, width: Int) {
            var iterator = bytes[offset..<end].makeIterator()
            var decoder = UTF8()
            guard case .scalarValue(let scalar) = decoder.decode(&iterator) else { return ("\u{FFFD}", 1) }
            return (scalar, UTF8.width(scalar))
        }

        func text(_ range: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) }

        mutating func skipSpace() {
            while let byte = peek, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") { position += 1 }
        }

        /// The line's triple; `nil` for a blank or comment line.
        mutating func statement() throws -> Triple? {
            skipSpace()
            if atEnd || peek == UInt8(ascii: "#") { return nil }
            let subject = try term(allowing: .subject, role: "subject")
            skipSpace()
            let predicate = try term(allowing: .predicate, role: "predicate")
            skipSpace()
            let object = try term(allowing: .object, role: "object")
            skipSpace()
            guard peek == UInt8(ascii: ".") else { throw error("expected . after the object") }
            position += 1
            skipSpace()
            if !atEnd && peek != UInt8(ascii: "#") { throw error("unexpected text after the final .") }
            return Triple(subject, predicate, object)
        }

        mutating func term(allowing kinds: Kinds, role: String) throws -> RDFTerm {
            switch peek {
            case UInt8(ascii: "<") where kinds.contains(.iri): return .iri(try iri())
            case UInt8(ascii: "_") where kinds.contains(.blank): return .blank(try blank())
            case UInt8(ascii: "\"") where kinds.contains(.literal): return try literal()
            case nil: throw error("the line ends before the \(role)")
            default: throw error("the \(role) must be \(kinds.contains(.literal) ? "an IRI, a blank node or a literal" : kinds.contains(.blank) ? "an IRI or a blank node" : "an IRI")")
            }
        }

        mutating func iri() throws -> String {
            position += 1  // <
            let valueStart = position
            var unescaped: [UInt8]?  // the value, once an escape makes it differ from its bytes
            while let byte = peek, byte != UInt8(ascii: ">") {
                if byte == UInt8(ascii: "\\") {
                    if unescaped == nil { unescaped = Array(bytes[valueStart..<position]) }
                    let scalar = try unicodeEscape()
                    unescaped!.append(contentsOf: String(scalar).utf8)
                    continue
                }
                if byte <= 0x20 || NTriples.escapedInIRI(byte) {
                    throw error("\"\(Unicode.Scalar(byte))\" is not allowed in an IRI")
                }
                unescaped?.append(byte)
                position += 1
            }
            guard peek == UInt8(ascii: ">") else { throw error("unclosed IRI") }
            let value = unescaped.map { String(decoding: $0, as: UTF8.self) } ?? text(valueStart..<position)
            position += 1
            guard !value.isEmpty else { throw error("empty IRI") }
            return value
        }

        mutating func blank() throws -> String {
            position += 1
            guard peek == UInt8(ascii: ":") else { throw error("a blank node starts with _:") }
            position += 1
            let labelStart = position
            while let byte = peek {
                if byte < 0x80 {
                    guard isASCIILetterOrDigit(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") else { break }
                    position += 1
                } else {
                    let (scalar, width) = scalar(at: position)
                    guard scalar.properties.isAlphabetic || scalar.properties.numericType != nil else { break }
                    position += width
                }
            }
            // A label cannot end with a dot (it is the statement's end).
            while position > labelStart, bytes[position - 1] == UInt8(ascii: ".") { position -= 1 }
            guard position > labelStart else { throw error("empty blank node label") }
            return text(labelStart..<position)
        }

        mutating func literal() throws -> RDFTerm {
            position += 1  // "
            let valueStart = position
            var unescaped: [UInt8]?  // the value, once an escape makes it differ from its bytes
            while let byte = peek, byte != UInt8(ascii: "\"") {
                if byte == UInt8(ascii: "\\") {
                    if unescaped == nil { unescaped = Array(bytes[valueStart..<position]) }
                    let next: UInt8? = position + 1 < end ? bytes[position + 1] : nil
                    let replacement: UInt8
                    switch next {
                    case UInt8(ascii: "t"): replacement = 0x09
                    case UInt8(ascii: "b"): replacement = 0x08
                    case UInt8(ascii: "n"): replacement = 0x0A
                    case UInt8(ascii: "r"): replacement = 0x0D
                    case UInt8(ascii: "f"): replacement = 0x0C
                    case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\\"): replacement = next!
                    case UInt8(ascii: "u"), UInt8(ascii: "U"):
                        let scalar = try unicodeEscape()
                        unescaped!.append(contentsOf: String(scalar).utf8)
                        continue
                    default: throw error("unknown escape \\\(next == nil ? "" : String(scalar(at: position + 1).scalar))")
                    }
                    unescaped!.append(replacement)
                    position += 2
                    continue
                }
                unescaped?.append(byte)
                position += 1
            }
            guard peek == UInt8(ascii: "\"") else { throw error("unclosed literal") }
            let value = unescaped.map { String(decoding: $0, as: UTF8.self) } ?? text(valueStart..<position)
            position += 1
            if peek == UInt8(ascii: "@") {
                position += 1
                let tagStart = position
                while let byte = peek {
                    if byte < 0x80 {
                        guard isASCIILetterOrDigit(byte) || byte == UInt8(ascii: "-") else { break }
                        position += 1
                    } else {
                        let (scalar, width) = scalar(at: position)
                        guard scalar.properties.isAlphabetic || scalar.properties.numericType != nil else { break }
                        position += width
                    }
                }
                let language = text(tagStart..<position)
                guard !language.isEmpty, language.first?.isLetter == true else { throw error("a language tag must start with a letter") }
                return .literal(value, language: language)
            }
            if peek == UInt8(ascii: "^") {
                position += 1
                guard peek == UInt8(ascii: "^") else { throw error("a datatype is written ^^<iri>") }
                position += 1
                guard peek == UInt8(ascii: "<") else { throw error("a datatype is written ^^<iri>") }
                return .literal(value, datatype: try iri())
            }
            return .literal(value)
        }

        /// `\uXXXX` or `\UXXXXXXXX`, the reader at the backslash.
        mutating func unicodeEscape() throws -> Unicode.Scalar {
            position += 1
            let width: Int
            switch peek {
            case UInt8(ascii: "u"): width = 4
            case UInt8(ascii: "U"): width = 8
            default: throw error("only \\u and \\U escapes are allowed here")
            }
            position += 1
            var hex = ""
            var offset = position
            while hex.unicodeScalars.count < width, offset < end {
                let (scalar, width) = scalar(at: offset)
                hex.unicodeScalars.append(scalar)
                offset += width
            }
            guard hex.unicodeScalars.count == width else { throw error("a short \\u escape") }
            guard let code = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(code) else { throw error("bad escape \\u\(hex)") }
            position = offset
            return scalar
        }

        func isASCIILetterOrDigit(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
    }
}
