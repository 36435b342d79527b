import ArgumentParser
import DemoSupport
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import ServiceLifecycle
import StardogReplicated
import ZooKeeper

/// `replicated`: a node of the Stardog-compatible replicated cluster, and its admin commands.
@main
struct ReplicatedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replicated",
        abstract: "A strongly consistent replicated RDF store on ZooKeeper (Stardog Cluster-compatible).",
        subcommands: [ServerCommand.self, ClusterCommand.self, ZooKeeperCommand.self],
        defaultSubcommand: ServerCommand.self)

    static func main() async {
        ProcessSetup.runConcurrencyOnEventLoops()
        await main(nil)
    }
}

struct ConfigOptions: ParsableArguments {
    @Option(name: [.customLong("config"), .customShort("c")], help: "stardog.properties (Java properties, Stardog's pack.* keys).")
    var config: String = "stardog.properties"

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info"

    func load() throws -> (StardogConfiguration, Logger) {
        guard let logger = ProcessSetup.bootstrapLogging(levelName: logLevel, label: "replicated") else { throw ValidationError("unknown log level \(logLevel)") }
        guard let text = try? String(contentsOfFile: config, encoding: .utf8) else { throw ValidationError("cannot read the configuration file \(config)") }
        let directory = URL(fileURLWithPath: config).deletingLastPathComponent().path
        do {
            let configuration = try StardogConfiguration(properties: text, directory: directory)
            for key in configuration.ignoredKeys { logger.notice("ignoring a setting this node does not use", metadata: ["replicated.key": "\(key)"]) }
            return (configuration, logger)
        } catch {
            throw ValidationError("\(config): \(error)")
        }
    }
}

struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "server", abstract: "Run a cluster node (join, sync, serve).")
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let (configuration, logger) = try options.load()
        let node: ReplicatedNode
        do { node = try ReplicatedNode(configuration: configuration, logger: logger) } catch {
            logger.critical("cannot open the node: \(error)")
            throw ExitCode(1)
        }
        guard await ProcessSetup.serve(node, name: "replicated", logger: logger) else { throw ExitCode(1) }
    }
}

// MARK: cluster …

struct ServerOption: ParsableArguments {
    @Option(name: .customLong("server"), help: "A node's URL, like http://127.0.0.1:5820.")
    var server: String = "http://127.0.0.1:5820"

    func request(_ method: HTTPMethod, _ path: String) async throws -> (Int, Data) {
        var peer = server
        for scheme in ["http://", "https://"] where peer.hasPrefix(scheme) { peer.removeFirst(scheme.count) }
        peer = peer.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let client = PeerClient()
        defer { client.shutdown() }
        do {
            let answer = try await client.send(peer: peer, method: method, path: path, timeout: .seconds(30))
            return (answer.status, Data(buffer: answer.body))
        } catch {
            throw ValidationError("cannot reach \(server): \(error)")
        }
    }

    func expectOK(_ reply: (Int, Data)) throws -> Data {
        guard reply.0 / 100 == 2 else {
            let message = (try? JSONDecoder().decode(ErrorBody.self, from: reply.1)).map { "\($0.code): \($0.message)" } ?? String(decoding: reply.1, as: UTF8.self)
            throw ValidationError("\(server) answered \(reply.0): \(message)")
        }
        return reply.1
    }
}

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Ask a node about the cluster, or act on the whole cluster.",
        subcommands: [Info.self, Stop.self, ReadOnlyStart.self, ReadOnlyStop.self])

    struct Status: Decodable {
        struct Node: Decodable { var address: String; var role: String }
        var nodes: [Node]
    }

    /// Prints the coordinator and the other nodes, like `stardog-admin cluster info`.
    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the coordinator and the nodes.")
        @OptionGroup var server: ServerOption
        func run() async throws {
            let data = try server.expectOK(try await server.request(.GET, "/admin/cluster/status"))
            let status = try JSONDecoder().decode(Status.self, from: data)
            print("Coordinator:")
            for node in status.nodes where node.role == "COORDINATOR" { print("    \(node.address)") }
            print("Nodes:")
            for node in status.nodes where node.role != "COORDINATOR" { print("    \(node.address)") }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Shut down every node of the cluster.")
        @OptionGroup var server: ServerOption
        func run() async throws {
            let data = try server.expectOK(try await server.request(.POST, "/admin/shutdownAll"))
            print(String(decoding: data, as: UTF8.self))
        }
    }

    struct ReadOnlyStart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "readonly-start", abstract: "Reject writes on every node.")
        @OptionGroup var server: ServerOption
        func run() async throws { _ = try server.expectOK(try await server.request(.PUT, "/admin/cluster/readonly")) }
    }

    struct ReadOnlyStop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "readonly-stop", abstract: "Accept writes again.")
        @OptionGroup var server: ServerOption
        func run() async throws { _ = try server.expectOK(try await server.request(.DELETE, "/admin/cluster/readonly")) }
    }
}

// MARK: zk …

struct ZooKeeperCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zk", abstract: "Read or reset what the cluster keeps in ZooKeeper.", subcommands: [Info.self, Clear.self])

    /// Connects with the cluster's credentials, runs `body`, closes the client.
    static func withCluster(_ options: ConfigOptions, _ body: (ZooKeeperClient, ClusterLayout) async throws -> Void) async throws {
        let (configuration, logger) = try options.load()
        let client = try await NodeZooKeeper.connected(
            connectString: configuration.zookeeperAddress, setting: "pack.zookeeper.address", sessionTimeout: configuration.sessionTimeout,
            connectionTimeout: configuration.connectionTimeout,
            credentials: [.init(user: configuration.zookeeperUser, password: configuration.zookeeperPassword)], logger: logger)
        do {
            try await body(client, ClusterLayout(clusterName: configuration.clusterName, user: configuration.zookeeperUser, password: configuration.zookeeperPassword))
            await client.close()
        } catch {
            await client.close()
            throw error
        }
    }

    /// Prints the members, the coordinator, each database's last transaction, read-only mode.
    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print what the cluster keeps in ZooKeeper.")
        @OptionGroup var options: ConfigOptions
        func run() async throws {
            try await ZooKeeperCommand.withCluster(options) { client, layout in
                let members = try await layout.readMembers(client)
                let catalog = try await layout.readCatalog(client)
                print("Cluster: \(layout.root)")
                print("Members:")
                for address in members.sorted() { print("    \(address)") }
                print("Databases:\(catalog == nil ? " (no cluster state)" : "")")
                for (name, version) in (catalog?.catalog ?? [:]).sorted(by: { $0.key < $1.key }) {
                    print("    \(name): \(version.seq) transactions, last \(version.txId)")
                }
                print("Read-only: \(try await client.exists(layout.readOnly) != nil)")
            }
        }
    }

    /// Deletes the cluster's znodes (refused while members are alive, unless `--force`).
    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete the cluster's state in ZooKeeper.")
        @OptionGroup var options: ConfigOptions
        @Flag(help: "Delete even if nodes of the cluster are alive.") var force = false
        func run() async throws {
            try await ZooKeeperCommand.withCluster(options) { client, layout in
                let members = try await layout.readMembers(client)
                guard members.isEmpty || force else {
                    throw ValidationError("nodes of the cluster are alive (\(members.sorted().joined(separator: ", "))); stop them, or use --force")
                }
                try await client.deleteRecursively(layout.root)
                print("cleared \(layout.root)")
            }
        }
    }
}
