import Foundation
import PackagePlugin

/// Compiles the documentation's Swift blocks with the target that uses this plugin: it hands the
/// README, Documentation/*.md and every DocC article to `documentation-snippet-extractor`, which
/// writes them out as Swift functions.
@main
struct DocumentationSnippetsPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        var inputs = [root.appending(path: "README.md")]
        inputs += Self.markdown(in: root.appending(path: "Documentation"))
        let sources = root.appending(path: "Sources")
        for module in (try? FileManager.default.contentsOfDirectory(atPath: sources.path)) ?? [] {
            let moduleURL = sources.appending(path: module)
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: moduleURL.path)) ?? [] where entry.hasSuffix(".docc") {
                inputs += Self.markdown(in: moduleURL.appending(path: entry))
            }
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "DocumentationSnippets.swift")
        return [
            .buildCommand(
                displayName: "Extracting the documentation's Swift blocks",
                executable: try context.tool(named: "documentation-snippet-extractor").url,
                arguments: [output.path] + inputs.map(\.path),
                inputFiles: inputs,
                outputFiles: [output])
        ]
    }

    static func markdown(in directory: URL) -> [URL] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasSuffix(".md") }
            .sorted()
            .map { directory.appending(path: $0) }
    }
}
