import Testing
import ZooKeeperTesting

@testable import StardogReplicated

@Suite struct TripleSetTests {
    @Test func triplesMatchByEveryPart() {
        let a = Triple(.iri("urn:a"), .iri("urn:knows"), .iri("urn:b"))
        let b = Triple(.iri("urn:b"), .iri("urn:knows"), .iri("urn:c"))
        let c = Triple(.iri("urn:b"), .iri("urn:name"), .literal("Bob", language: "en"))
        let set = TripleSet([a, b, c])
        #expect(set.matching(subject: .iri("urn:b"), predicate: nil, object: nil) == [b, c])
        #expect(set.matching(subject: nil, predicate: .iri("urn:knows"), object: nil) == [a, b])
        #expect(set.matching(subject: nil, predicate: nil, object: .literal("Bob", language: "en")) == [c])
        #expect(set.matching(subject: .iri("urn:a"), predicate: .iri("urn:name"), object: nil).isEmpty)
        #expect(set.matching(subject: nil, predicate: nil, object: nil).count == 3)
    }

    /// Random adds and removes over a few terms: the set holds, counts and matches what a plain
    /// `Set<Triple>` does, and forgets the terms no triple uses any more.
    @Test func randomChangesMatchAPlainSet() {
        var random = SeededRandomNumberGenerator(seed: 0x7e57)
        let terms: [RDFTerm] = [
            .iri("urn:a"), .iri("urn:b"), .blank("x"), .iri("urn:c"), .literal("a"), .literal("a", language: "en"),
            .literal("a", datatype: "urn:a"),
        ]
        func subject() -> RDFTerm { terms[Int.random(in: 0..<3, using: &random)] }
        func predicate() -> RDFTerm { terms[[0, 1, 3].randomElement(using: &random)!] }
        func object() -> RDFTerm { terms.randomElement(using: &random)! }
        func part(_ term: () -> RDFTerm) -> RDFTerm? { Bool.random(using: &random) ? term() : nil }
        var set = TripleSet()
        var plain = Set<Triple>()
        for step in 0..<5000 {
            let add = (0..<Int.random(in: 0...3, using: &random)).map { _ in Triple(subject(), predicate(), object()) }
            let remove = (0..<Int.random(in: 0...3, using: &random)).map { _ in Triple(subject(), predicate(), object()) }
            set.apply(add: add, remove: remove)
            plain.subtract(remove)
            plain.formUnion(add)
            #expect(set.count == plain.count)
            if step % 10 == 0 {
                #expect(Set(set.allTriples) == plain)
                let (s, p, o) = (part(subject), part(predicate), part(object))
                let expected = plain.filter { (s == nil || $0.subject == s) && (p == nil || $0.predicate == p) && (o == nil || $0.object == o) }
                #expect(set.matching(subject: s, predicate: p, object: o) == expected.sorted { NTriples.serialize([$0]) < NTriples.serialize([$1]) })
            }
        }
        set.apply(add: [], remove: Array(plain))
        #expect(set.count == 0)
        #expect(set.termCount == 0)
    }
}
