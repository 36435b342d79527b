// Extracts the Swift code blocks of the documentation (README.md, Documentation/*.md and the
// DocC articles) into one Swift file, so that the test build compiles every snippet as written.
//
//     documentation-snippet-extractor <output.swift> <markdown file>...
//
// Each block becomes one function, `snippet_<n>(client:)`, whose body is the block (compiled,
// never run): a snippet may use a connected `client: ZooKeeperClient` and must define everything
// else it uses. A block that declares a test (its first line starts with `@Test` or `@Suite`)
// becomes the members of a `@Suite struct` instead, and runs with the tests. `import` lines move
// to the top of the file. A block whose first line is `// Package.swift` is a manifest fragment
// and is not compiled.
import Foundation

struct Snippet {
    var file: String
    var line: Int
    var code: [String]
}

let arguments = CommandLine.arguments.dropFirst()
guard let output = arguments.first else {
    FileHandle.standardError.write(Data("usage: documentation-snippet-extractor <output.swift> <markdown file>...\n".utf8))
    exit(2)
}

var snippets: [Snippet] = []
for path in arguments.dropFirst().sorted() {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var current: Snippet?
    for (index, line) in text.components(separatedBy: "\n").enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if var snippet = current {
            if trimmed == "```" {
                snippets.append(snippet)
                current = nil
            } else {
                snippet.code.append(line)
                current = snippet
            }
        } else if trimmed == "```swift" {
            current = Snippet(file: path, line: index + 2, code: [])
        }
    }
}

var imports: Set<String> = ["import Coordination", "import Foundation", "import Logging", "import Testing", "import ZooKeeper", "import ZooKeeperTesting"]
var body = ""
var compiled = 0
for snippet in snippets {
    let firstLine = snippet.code.first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }?.trimmingCharacters(in: .whitespaces) ?? ""
    if firstLine == "// Package.swift" { continue }
    compiled += 1
    var code: [String] = []
    for line in snippet.code {
        if line.hasPrefix("import ") { imports.insert(line.trimmingCharacters(in: .whitespaces)) } else { code.append(line) }
    }
    let source = "\(URL(fileURLWithPath: snippet.file).lastPathComponent), line \(snippet.line)"
    let isTestDeclaration = firstLine.hasPrefix("@Test") || firstLine.hasPrefix("@Suite")
    body += "\n// \(source)\n"
    if isTestDeclaration {
        body += "@Suite struct Snippet\(compiled) {\n"
    } else {
        body += "@available(*, deprecated, message: \"compiled, never run\")\nfunc snippet_\(compiled)(client: ZooKeeperClient) async throws {\n"
    }
    // #sourceLocation makes a compile error point at the markdown file.
    body += "#sourceLocation(file: \"\(snippet.file)\", line: \(snippet.line))\n"
    body += code.joined(separator: "\n") + "\n"
    body += "#sourceLocation()\n}\n"
}

let header = "// Generated from the documentation's Swift blocks by documentation-snippet-extractor. Do not edit.\n"
let counts = "\n/// How many blocks were compiled.\nlet compiledSnippetCount = \(compiled)\n"
let file = header + imports.sorted().joined(separator: "\n") + "\n" + counts + body
try file.write(toFile: output, atomically: true, encoding: .utf8)
