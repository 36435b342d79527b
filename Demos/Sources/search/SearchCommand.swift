import ArgumentParser
import DemoSupport
import Foundation
import Logging
import SenseiSearch
import ServiceLifecycle

/// `search`: a Sensei-compatible search node (with its broker), or a standalone broker.
@main
struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "A sharded search cluster on ZooKeeper (Sensei-compatible).",
        subcommands: [NodeCommand.self, BrokerCommand.self],
        defaultSubcommand: NodeCommand.self)

    static func main() async {
        ProcessSetup.runConcurrencyOnEventLoops()
        await main(nil)
    }
}

struct Options: ParsableArguments {
    @Option(name: [.customLong("config"), .customShort("c")], help: "sensei.properties (Java properties, Sensei's keys).")
    var config: String = "sensei.properties"

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info"

    /// Reads the properties and the schema (relative to the properties file's directory).
    func load() throws -> (SenseiConfiguration, SearchSchema, Logger) {
        guard let logger = ProcessSetup.bootstrapLogging(levelName: logLevel, label: "search") else { throw ValidationError("unknown log level \(logLevel)") }
        guard let text = try? String(contentsOfFile: config, encoding: .utf8) else { throw ValidationError("cannot read the configuration file \(config)") }
        let configuration: SenseiConfiguration
        do { configuration = try SenseiConfiguration(properties: text) } catch { throw ValidationError("\(config): \(error)") }
        for key in configuration.ignoredKeys { logger.notice("ignoring a Sensei setting this node does not use", metadata: ["search.key": "\(key)"]) }
        let directory = URL(fileURLWithPath: config).deletingLastPathComponent()
        let schemaURL = configuration.schemaFile.hasPrefix("/") ? URL(fileURLWithPath: configuration.schemaFile) : directory.appendingPathComponent(configuration.schemaFile)
        guard let data = FileManager.default.contents(atPath: schemaURL.path) else { throw ValidationError("cannot read the schema \(schemaURL.path) (sensei.schema.file)") }
        do { return (configuration, try SearchSchema(json: data), logger) } catch { throw ValidationError("\(schemaURL.path): \(error)") }
    }

    func run(brokerOnly: Bool) async throws {
        let (configuration, schema, logger) = try load()
        let node = SearchNode(configuration: configuration, schema: schema, brokerOnly: brokerOnly, logger: logger)
        guard await ProcessSetup.serve(node, name: "search", logger: logger) else { throw ExitCode(1) }
    }
}

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "node", abstract: "Index this node's partitions and serve them (and Sensei's API).")
    @OptionGroup var options: Options
    func run() async throws { try await options.run(brokerOnly: false) }
}

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "broker", abstract: "Serve Sensei's API over the live nodes, holding no data.")
    @OptionGroup var options: Options
    func run() async throws { try await options.run(brokerOnly: true) }
}
