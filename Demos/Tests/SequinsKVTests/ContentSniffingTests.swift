import Testing
import ZooKeeperTesting

@testable import SequinsKV

/// The Content-Type Go's net/http gives sequins' values.
@Suite struct ContentSniffingTests {
    func type(_ bytes: [UInt8]) -> String { "\(ContentSniffing.contentType(of: bytes))" }
    func type(_ text: String) -> String { type(Array(text.utf8)) }

    @Test func examples() {
        #expect(type("hello world") == "text/plain; charset=utf-8")
        #expect(type("{\"json\": true}") == "text/plain; charset=utf-8")
        #expect(type("  <html><body>") == "text/html; charset=utf-8")
        #expect(type("<HtMl>") == "text/html; charset=utf-8")
        #expect(type("<htmlx>") == "text/plain; charset=utf-8", "a tag must end with a space or >")
        #expect(type("<!-- c -->") == "text/html; charset=utf-8")
        #expect(type("\n<?xml version") == "text/xml; charset=utf-8")
        #expect(type("%PDF-1.4") == "application/pdf")
        #expect(type([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0]) == "image/png")
        #expect(type([0xFF, 0xD8, 0xFF, 0xE0]) == "image/jpeg")
        #expect(type([0x1F, 0x8B, 0x08, 0]) == "application/x-gzip")
        #expect(type([0xEF, 0xBB, 0xBF, 0x41]) == "text/plain; charset=utf-8")
        #expect(type([0x00, 0x01, 0x02]) == "application/octet-stream")
        #expect(type("text then \u{01} a control byte") == "application/octet-stream")
        #expect(type([0, 0, 0, 0x18] + Array("ftypmp42".utf8) + [0, 0, 0, 0] + Array("isommp41".utf8)) == "video/mp4")
        #expect(type([UInt8](repeating: 0x41, count: 600) + [0x00]) == "text/plain; charset=utf-8", "only the first 512 bytes count")
    }

    /// The first-byte shortcut gives what trying the whole table in order gives.
    @Test func theShortcutAgreesWithTheWholeTableOnRandomData() {
        var random = SeededRandomNumberGenerator(seed: 7)
        func prefix(of signature: ContentSniffing.Signature) -> [UInt8]? {
            switch signature {
            case .html(let tag): return tag
            case .exact(let prefix, _): return prefix
            case .masked(_, let pattern, _, _): return pattern
            default: return nil
            }
        }
        let prefixes = ContentSniffing.signatures.compactMap(prefix(of:))
        for _ in 0..<20_000 {
            var bytes: [UInt8] = []
            if Bool.random(using: &random) { bytes += Array(prefixes.randomElement(using: &random)!) }
            if Int.random(in: 0..<4, using: &random) == 0 { bytes.insert(contentsOf: [0x20, 0x0A], at: 0) }
            for _ in 0..<Int.random(in: 0..<40, using: &random) {
                bytes.append(Bool.random(using: &random) ? UInt8.random(in: 0x20...0x7E, using: &random) : UInt8.random(in: 0...255, using: &random))
            }
            let whole: String = bytes.withUnsafeBytes { data in
                var first = 0
                while first < data.count, ContentSniffing.isWhitespace(data[first]) { first += 1 }
                for signature in ContentSniffing.signatures {
                    if let type = signature.match(data, firstNonWhitespace: first) { return "\(type)" }
                }
                return "application/octet-stream"
            }
            #expect(type(bytes) == whole, "\(bytes)")
        }
    }
}
