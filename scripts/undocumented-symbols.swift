// Lists the public symbols declared in this package's Sources that have no doc comment, from the
// symbol graphs `swift-symbolgraph-extract` wrote; exits 1 if there are any.
//     swift scripts/undocumented-symbols.swift <package root> <symbol graph file>...
import Foundation

struct Graph: Decodable {
    struct Symbol: Decodable {
        struct Location: Decodable {
            struct Position: Decodable { var line: Int }
            var uri: String
            var position: Position
        }
        var pathComponents: [String]
        var docComment: AnyDecodable?
        var location: Location?
    }
    var symbols: [Symbol]
}

/// Decodes anything (the doc comment's content does not matter here, only that it is there).
struct AnyDecodable: Decodable {
    init(from decoder: any Decoder) throws {}
}

let arguments = Array(CommandLine.arguments.dropFirst())
let sources = URL(fileURLWithPath: arguments[0]).appendingPathComponent("Sources").standardized.path
var missing: [String] = []
for file in arguments.dropFirst() {
    let graph = try JSONDecoder().decode(Graph.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
    for symbol in graph.symbols where symbol.docComment == nil {
        // Declared here (not synthesized, not inherited from a dependency's extension).
        guard let location = symbol.location, let path = URL(string: location.uri)?.path, path.hasPrefix(sources) else { continue }
        let relative = String(path.dropFirst(sources.count - "Sources".count))
        missing.append("\(relative):\(location.position.line + 1): \(symbol.pathComponents.joined(separator: "."))")
    }
}
if missing.isEmpty { exit(0) }
print("public symbols without a doc comment:")
for line in missing.sorted() { print("  " + line) }
exit(1)
