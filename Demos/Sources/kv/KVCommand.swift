import ArgumentParser
import DemoSupport
import Foundation
import Logging
import SequinsKV
import ServiceLifecycle

/// `kv`: a sequins-compatible key-value node.
@main
struct KVCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv",
        abstract: "Serve statically sharded, replicated key-value data from Hadoop SequenceFiles (sequins-compatible).",
        discussion: """
            Reads sequins.conf (TOML, sequins' keys) from --config, or ./sequins.conf, or /etc/sequins.conf. \
            Flags override the file. Send SIGHUP to look for new versions.
            """)

    @Option(name: [.customLong("config"), .customShort("c")], help: "The configuration file (TOML, sequins' keys).")
    var config: String?

    @Option(name: [.customLong("source"), .customShort("r")], help: "The source root: a directory or file:// URL.")
    var source: String?

    @Option(name: [.customLong("bind"), .customShort("b")], help: "host:port to listen on (also the advertised port).")
    var bind: String?

    @Option(name: [.customLong("local-store"), .customShort("l")], help: "Where this node keeps its data (absolute path).")
    var localStore: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info"

    static func main() async {
        ProcessSetup.runConcurrencyOnEventLoops()
        await main(nil)
    }

    func run() async throws {
        var configuration = SequinsConfiguration()
        if let path = try configurationFile() {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("cannot read the configuration file \(path)")
            }
            do { configuration = try SequinsConfiguration(toml: text) } catch {
                throw ValidationError("\(path): \(error)")
            }
        }
        if let source { configuration.source = source }
        if let bind { configuration.bind = bind }
        if let localStore { configuration.localStore = localStore }

        guard let logger = ProcessSetup.bootstrapLogging(levelName: logLevel, label: "kv") else { throw ValidationError("unknown log level \(logLevel)") }
        let node: KVNode
        do { node = try KVNode(configuration: configuration, logger: logger) } catch {
            throw ValidationError("\(error)")
        }
        guard await ProcessSetup.serve(node, name: "kv", logger: logger) else { throw ExitCode(1) }
    }

    /// --config, else the first of sequins.conf and /etc/sequins.conf that exists.
    func configurationFile() throws -> String? {
        if let config {
            guard FileManager.default.fileExists(atPath: config) else { throw ValidationError("the configuration file \(config) does not exist") }
            return config
        }
        return ["sequins.conf", "/etc/sequins.conf"].first { FileManager.default.fileExists(atPath: $0) }
    }
}
