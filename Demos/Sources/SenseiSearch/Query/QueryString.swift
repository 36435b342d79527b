/// Sensei's `query.query_string.query` (Lucene's syntax, the parts Sensei's examples use): terms,
/// `AND`, `OR`, `NOT` (and `+term`, `-term`), parentheses, quoted phrases, `field:term` and
/// `field:"a phrase"`. Adjacent clauses without an operator are OR'ed (Lucene's default), or AND'ed
/// with `default_operator: and`. Precedence: NOT binds tightest, then AND, then OR. A term without
/// a field searches the request's default fields (``resolvingDefaultFields(_:)``).
public indirect enum QueryNode: Sendable, Hashable {
    /// Every document.
    case all
    /// A word (several words become a phrase after analysis); `field` nil means the default field.
    case term(field: String?, text: String)
    case phrase(field: String?, text: String)
    case and([QueryNode])
    case or([QueryNode])
    case not(QueryNode)
}

extension QueryNode {
    /// The query with every term without a field searching `fields` instead (one of them, when
    /// there are several).
    public func resolvingDefaultFields(_ fields: [String]) -> QueryNode {
        switch self {
        case .all: return .all
        case .term(nil, let text): return fields.count == 1 ? .term(field: fields[0], text: text) : .or(fields.map { .term(field: $0, text: text) })
        case .phrase(nil, let text): return fields.count == 1 ? .phrase(field: fields[0], text: text) : .or(fields.map { .phrase(field: $0, text: text) })
        case .term, .phrase: return self
        case .and(let clauses): return .and(clauses.map { $0.resolvingDefaultFields(fields) })
        case .or(let clauses): return .or(clauses.map { $0.resolvingDefaultFields(fields) })
        case .not(let inner): return .not(inner.resolvingDefaultFields(fields))
        }
    }
}

public struct QueryParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    init(_ message: String, in query: String) { description = "query \"\(query)\": \(message)" }
}

public enum QueryString {
    public static func parse(_ text: String, defaultOperator: SearchRequest.Selection.Operator = .or) throws -> QueryNode {
        var parser = Parser(tokens: try lex(text), source: text, implicitAnd: defaultOperator == .and)
        if parser.tokens.isEmpty { return .all }
        let node = try parser.parseOr()
        if parser.position < parser.tokens.count { throw QueryParseError("unexpected \(parser.tokens[parser.position])", in: text) }
        return node
    }

    enum Token: Hashable, CustomStringConvertible {
        case word(field: String?, text: String)
        case phrase(field: String?, text: String)
        case and, or, not, open, close, required, prohibited

        var description: String {
            switch self {
            case .word(_, let text): "\"\(text)\""
            case .phrase(_, let text): "\"\\\"\(text)\\\"\""
            case .and: "AND"
            case .or: "OR"
            case .not: "NOT"
            case .open: "("
            case .close: ")"
            case .required: "+"
            case .prohibited: "-"
            }
        }
    }

    static func lex(_ text: String) throws -> [Token] {
        var tokens: [Token] = []
        let characters = Array(text)
        var index = 0
        func readQuoted() throws -> String {
            index += 1  // the opening quote
            var phrase = ""
            while index < characters.count, characters[index] != "\"" {
                phrase.append(characters[index])
                index += 1
            }
            guard index < characters.count else { throw QueryParseError("unclosed quote", in: text) }
            index += 1
            return phrase
        }
        while index < characters.count {
            let character = characters[index]
            if character.isWhitespace { index += 1; continue }
            if character == "(" { tokens.append(.open); index += 1; continue }
            if character == ")" { tokens.append(.close); index += 1; continue }
            if character == "\"" { tokens.append(.phrase(field: nil, text: try readQuoted())); continue }
            let atClauseStart = tokens.last.map { [.open, .and, .or, .not].contains($0) } ?? true
            if (character == "+" || character == "-"), index + 1 < characters.count, !characters[index + 1].isWhitespace,
                atClauseStart || (index > 0 && characters[index - 1].isWhitespace)
            {
                tokens.append(character == "+" ? .required : .prohibited)
                index += 1
                continue
            }
            var word = ""
            while index < characters.count, !characters[index].isWhitespace, !"()\"".contains(characters[index]) {
                word.append(characters[index])
                index += 1
            }
            switch word {
            case "AND", "&&": tokens.append(.and)
            case "OR", "||": tokens.append(.or)
            case "NOT", "!": tokens.append(.not)
            default:
                if let colon = word.firstIndex(of: ":"), colon != word.startIndex {
                    let field = String(word[..<colon])
                    let rest = String(word[word.index(after: colon)...])
                    if rest.isEmpty, index < characters.count, characters[index] == "\"" {
                        tokens.append(.phrase(field: field, text: try readQuoted()))
                    } else if rest.isEmpty {
                        throw QueryParseError("nothing after \(field):", in: text)
                    } else {
                        tokens.append(.word(field: field, text: rest))
                    }
                } else {
                    tokens.append(.word(field: nil, text: word))
                }
            }
        }
        return tokens
    }

    struct Parser {
        var tokens: [Token]
        var position = 0
        let source: String
        /// Clauses side by side without an operator are AND'ed (`default_operator: and`).
        var implicitAnd = false

        var current: Token? { position < tokens.count ? tokens[position] : nil }

        /// Lucene's reading of a clause list: a negated clause (`NOT b`, `-b`) is a prohibition on
        /// the whole list, so `a NOT b` and `a OR NOT b` both mean a without b; a list of only
        /// prohibitions means every document without them.
        mutating func parseOr() throws -> QueryNode {
            var clauses = [try parseAnd()]
            while let token = current, token != .close {
                if token == .or {
                    position += 1
                    clauses.append(try parseAnd())
                } else if implicitAnd {
                    let next = try parseAnd()
                    switch clauses.removeLast() {
                    case .and(let parts): clauses.append(.and(parts + [next]))
                    case let last: clauses.append(.and([last, next]))
                    }
                } else {
                    clauses.append(try parseAnd())
                }
            }
            if clauses.count == 1 { return clauses[0] }
            let prohibited = clauses.filter { if case .not = $0 { true } else { false } }
            let wanted = clauses.filter { if case .not = $0 { false } else { true } }
            if prohibited.isEmpty { return .or(wanted) }
            let base: QueryNode = wanted.isEmpty ? .all : (wanted.count == 1 ? wanted[0] : .or(wanted))
            return .and([base] + prohibited)
        }

        mutating func parseAnd() throws -> QueryNode {
            var clauses = [try parseUnary()]
            while current == .and {
                position += 1
                clauses.append(try parseUnary())
            }
            return clauses.count == 1 ? clauses[0] : .and(clauses)
        }

        mutating func parseUnary() throws -> QueryNode {
            guard let token = current else { throw QueryParseError("the query ends after an operator", in: source) }
            switch token {
            case .not, .prohibited:
                position += 1
                return .not(try parseUnary())
            case .required:
                position += 1
                return try parseUnary()
            case .open:
                position += 1
                let inner = try parseOr()
                guard current == .close else { throw QueryParseError("unclosed (", in: source) }
                position += 1
                return inner
            case .word(let field, let text):
                position += 1
                return .term(field: field, text: text)
            case .phrase(let field, let text):
                position += 1
                return .phrase(field: field, text: text)
            case .and, .or, .close:
                throw QueryParseError("unexpected \(token)", in: source)
            }
        }
    }
}

/// Splits text into lower-cased words of letters and digits (the analyzer for full-text columns
/// and for query terms).
public enum Tokenizer {
    public static func tokens(_ text: String) -> [String] {
        var result: [String] = []
        forEachToken(text) { result.append($0) }
        return result
    }

    static func unicodeTokens(_ text: String) -> [String] {
        var result: [String] = []
        var word = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                word.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else if !word.isEmpty {
                result.append(String(word))
                word = String.UnicodeScalarView()
            }
        }
        if !word.isEmpty { result.append(String(word)) }
        return result
    }
}

extension Tokenizer {
    /// Calls `body` with each word of `text` in order, as ``tokens(_:)`` lists them, without
    /// building the list.
    static func forEachToken(_ text: String, _ body: (String) -> Void) {
        if !forEachASCIIToken(text, body) { for token in unicodeTokens(text) { body(token) } }
    }

    /// The same for ASCII text, byte by byte (the Unicode property lookups dominated indexing);
    /// false, having called `body` for nothing, when the text has a non-ASCII byte.
    static func forEachASCIIToken(_ text: String, _ body: (String) -> Void) -> Bool {
        var text = text
        return text.withUTF8 { bytes -> Bool in
            for byte in bytes where byte >= 0x80 { return false }
            var word: [UInt8] = []
            word.reserveCapacity(16)
            for byte in bytes {
                if byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") || byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                    word.append(byte)
                } else if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") {
                    word.append(byte + 32)
                } else if !word.isEmpty {
                    body(String(decoding: word, as: UTF8.self))
                    word.removeAll(keepingCapacity: true)
                }
            }
            if !word.isEmpty { body(String(decoding: word, as: UTF8.self)) }
            return true
        }
    }
}
