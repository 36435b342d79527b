import Testing
import ZooKeeperTesting

@testable import StardogReplicated

@Suite struct NTriplesTests {
    @Test func readsTheForms() throws {
        let text = """
            # a comment
            <http://example.org/alice> <http://xmlns.com/foaf/0.1/name> "Alice" .
            _:b1 <http://xmlns.com/foaf/0.1/knows> <http://example.org/bob> . # trailing comment
            <http://example.org/bob> <http://example.org/says> "Hallo\\n\\"Welt\\" \\u00E9"@de-AT .
              <http://example.org/bob> <http://example.org/age> "42"^^<http://www.w3.org/2001/XMLSchema#integer>.

            """
        let triples = try NTriples.parse(text)
        #expect(triples == [
            Triple(.iri("http://example.org/alice"), .iri("http://xmlns.com/foaf/0.1/name"), .literal("Alice")),
            Triple(.blank("b1"), .iri("http://xmlns.com/foaf/0.1/knows"), .iri("http://example.org/bob")),
            Triple(.iri("http://example.org/bob"), .iri("http://example.org/says"), .literal("Hallo\n\"Welt\" é", language: "de-AT")),
            Triple(.iri("http://example.org/bob"), .iri("http://example.org/age"), .literal("42", datatype: "http://www.w3.org/2001/XMLSchema#integer")),
        ])
    }

    @Test func badLinesAreNamed() {
        func error(_ text: String) -> String {
            do { _ = try NTriples.parse(text); return "no error" } catch { return "\(error)" }
        }
        #expect(error("<a> <b> <c> .\n<a> <b> .") == "N-Triples line 2: the object must be an IRI, a blank node or a literal (column 9)")
        #expect(error("\"s\" <b> <c> .").hasPrefix("N-Triples line 1: the subject must be an IRI or a blank node"))
        #expect(error("<a> _:b <c> .").hasPrefix("N-Triples line 1: the predicate must be an IRI"))
        #expect(error("<a> <b> <c>").hasPrefix("N-Triples line 1: expected . after the object"))
        #expect(error("<a> <b> \"open .").hasPrefix("N-Triples line 1: unclosed literal"))
        #expect(error("<a b> <b> <c> .").hasPrefix("N-Triples line 1: \" \" is not allowed in an IRI"))
        #expect(error("<a> <b> \"x\"^^<t> . extra").hasPrefix("N-Triples line 1: unexpected text after the final ."))
        #expect(error("<a> <b> \"\\q\" .").hasPrefix("N-Triples line 1: unknown escape \\q"))
        // Columns count characters, not bytes.
        #expect(error("<é> <b> \"😀\" . z") == "N-Triples line 1: unexpected text after the final . (column 15)")
        #expect(error("<a> <b> \"x\\é\" .") == "N-Triples line 1: unknown escape \\é (column 11)")
    }

    /// Random triples (any characters in literals and IRIs) survive writing and reading.
    @Test func randomTriplesRoundTrip() throws {
        var generator = SeededRandomNumberGenerator(seed: 17)
        let alphabet = Array("aZ09 _-.:/#<>\"\\{}|^`\n\t\r\u{1}é€😀")
        func text(_ range: ClosedRange<Int>) -> String {
            String((0..<Int.random(in: range, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
        }
        func term(literals: Bool, blanks: Bool) -> RDFTerm {
            switch Int.random(in: 0..<(literals ? 5 : (blanks ? 2 : 1)), using: &generator) {
            case 0: return .iri("http://x/" + text(0...8))
            case 1: return .blank("b" + String(Int.random(in: 0...999, using: &generator)))
            case 2: return .literal(text(0...12))
            case 3: return .literal(text(0...12), language: ["en", "de-AT", "x1"].randomElement(using: &generator)!)
            default: return .literal(text(0...12), datatype: "http://t/" + text(0...4))
            }
        }
        for _ in 0..<300 {
            let triples = (0..<Int.random(in: 0...6, using: &generator)).map { _ in
                Triple(term(literals: false, blanks: true), term(literals: false, blanks: false), term(literals: true, blanks: true))
            }
            #expect(try NTriples.parse(NTriples.serialize(triples)) == triples)
        }
    }
}

@Suite struct NTriplesLineEndingTests {
    @Test func crlfLinesAreReadAndNumberedLikeLFLines() throws {
        let lf = "<urn:a> <urn:p> \"x\" .\n<urn:b> <urn:p> <urn:c> .\n"
        #expect(try NTriples.parse(lf.replacingOccurrences(of: "\n", with: "\r\n")) == (try NTriples.parse(lf)))
        #expect {
            try NTriples.parse("<urn:a> <urn:p> \"x\" .\r\nnot a triple\r\n")
        } throws: { ($0 as? NTriples.ParseError)?.line == 2 }
    }
}
