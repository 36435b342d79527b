import Foundation
import Testing

/// The documentation's Swift blocks are compiled into this target (by the
/// DocumentationSnippetsPlugin build tool); this checks that none was skipped.
@Suite struct DocumentationSnippetTests {
    /// The package's root, from this file's place in it.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "../..").standardized

    @Test func everySwiftBlockOfTheDocumentationIsCompiled() throws {
        let manager = FileManager.default
        let sources = Self.root.appending(path: "Sources")
        let catalogs = try manager.contentsOfDirectory(atPath: sources.path).flatMap { module in
            ((try? manager.contentsOfDirectory(atPath: sources.appending(path: module).path)) ?? [])
                .filter { $0.hasSuffix(".docc") }.map { "Sources/\(module)/\($0)" }
        }
        var files = [Self.root.appending(path: "README.md")]
        for directory in ["Documentation"] + catalogs {
            for name in (try? manager.contentsOfDirectory(atPath: Self.root.appending(path: directory).path)) ?? [] where name.hasSuffix(".md") {
                files.append(Self.root.appending(path: "\(directory)/\(name)"))
            }
        }
        var blocks = 0
        for file in files {
            let lines = try String(contentsOf: file, encoding: .utf8).components(separatedBy: "\n")
            for (index, line) in lines.enumerated() where line.trimmingCharacters(in: .whitespaces) == "```swift" {
                let first = lines[(index + 1)...].first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
                if first?.trimmingCharacters(in: .whitespaces) != "// Package.swift" { blocks += 1 }
            }
        }
        #expect(blocks > 10, "the documentation has Swift blocks")
        #expect(compiledSnippetCount == blocks)
    }
}
