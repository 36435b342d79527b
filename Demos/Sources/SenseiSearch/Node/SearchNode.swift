import DemoSupport
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import ZooKeeper

/// A Sensei search node (a `Service`): opens its partitions on disk, catches up with the file
/// gateway, registers its partitions in ZooKeeper, then serves searches to brokers on
/// `sensei.server.port` and Sensei's API (its own broker) on `sensei.broker.port`, while it keeps
/// reading new gateway lines. With `brokerOnly`, it is Sensei's standalone broker.
public final class SearchNode: Service, Sendable {
    public let configuration: SenseiConfiguration
    public let schema: SearchSchema
    public let brokerOnly: Bool
    let logger: Logger
    /// How often the gateway file is polled for new lines.
    public static let gatewayPollInterval: Duration = .milliseconds(300)

    public init(configuration: SenseiConfiguration, schema: SearchSchema, brokerOnly: Bool = false, logger: Logger) {
        self.configuration = configuration
        self.schema = schema
        self.brokerOnly = brokerOnly
        self.logger = logger
    }

    public func run() async throws {
        let client = try await NodeZooKeeper.connected(
            connectString: configuration.clusterURL, setting: "sensei.cluster.url", sessionTimeout: configuration.clusterTimeout,
            connectionTimeout: .seconds(15), logger: logger)
        let cluster = SearchCluster(client: client, clusterName: configuration.clusterName, logger: logger)
        let peerClient = PeerClient()
        let openedIndex = Mutex<NodeIndex?>(nil)
        try await NodeLifetime(logger: logger).run { group in
            cluster.watch()
            let broker = SearchBroker(
                cluster: cluster, client: peerClient, timeout: configuration.brokerTimeout, partitionCount: configuration.partitionCount, logger: logger)
            if !brokerOnly {
                let (schema, configuration, logger) = (schema, configuration, logger)
                let index = try await runOffPool {  // reads and indexes every stored document
                    try NodeIndex(
                        schema: schema, partitions: configuration.partitions, partitionCount: configuration.partitionCount,
                        sharding: configuration.shardingStrategy, directory: configuration.indexDirectory, logger: logger)
                }
                openedIndex.withLock { $0 = index }
                logger.info("opened the index", metadata: ["search.documents": "\(index.documentCount)", "search.partitions": "\(configuration.partitions)"])
                let address = "\(configuration.serverHost):\(configuration.serverPort)"
                let (nodeID, host, port, partitionTimeout) = (configuration.nodeID, configuration.serverHost, configuration.serverPort, configuration.partitionTimeout)
                group.addTask {
                    try await SearchHTTP.runNode(
                        index: index, nodeID: nodeID, host: host, port: port, address: address, partitionTimeout: partitionTimeout, logger: logger)
                }
                if let path = configuration.gatewayFilePath {
                    let gateway = FileGateway(path: path)
                    try await catchUp(index, gateway: gateway)
                    group.addTask { try await self.follow(index, gateway: gateway) }
                }
                broker.searchLocally(nodeID: configuration.nodeID, index: index, partitionTimeout: configuration.partitionTimeout)
                try await cluster.register(
                    nodeID: configuration.nodeID, host: configuration.serverHost, port: configuration.serverPort, partitions: configuration.partitions)
                logger.info("joined the cluster", metadata: ["search.node": "\(configuration.nodeID)", "search.group": "\(cluster.group)"])
            }
            let (schema, host, brokerPort, logger) = (schema, configuration.serverHost, configuration.brokerPort, logger)
            group.addTask {
                try await SearchHTTP.runBroker(broker: broker, schema: schema, host: host, port: brokerPort, logger: logger) { bound in
                    logger.info("serving Sensei's API", metadata: ["search.broker": "\(host):\(bound)"])
                }
            }
        } cleanUp: {
            cluster.stopWatching()
            await cluster.leave()
            if let index = openedIndex.withLock({ $0 }) { _ = try? await runOffPool { index.finishMerges() } }  // a merge under way ends committed
            peerClient.shutdown()
            await client.close()
        }
    }

    /// Reads the gateway to its end.
    func catchUp(_ index: NodeIndex, gateway: FileGateway) async throws {
        let start = index.gatewayPosition
        while try await Self.ingestBatch(index, gateway: gateway) {}
        let report = index.report
        logger.info(
            "caught up with the gateway",
            metadata: [
                "search.from_line": "\(start.nextLine)", "search.to_line": "\(index.gatewayPosition.nextLine)", "search.indexed": "\(report.indexed)",
                "search.malformed": "\(report.malformed)",
            ])
    }

    /// Keeps reading lines appended to the gateway file.
    func follow(_ index: NodeIndex, gateway: FileGateway) async throws {
        while true {
            try await eventLoopSleep(for: Self.gatewayPollInterval)
            while try await Self.ingestBatch(index, gateway: gateway) {}
        }
    }

    /// Reads and indexes one batch of gateway lines on a thread of its own (file I/O, parsing and
    /// indexing would otherwise hold up the tasks that answer searches). False at the end.
    static func ingestBatch(_ index: NodeIndex, gateway: FileGateway) async throws -> Bool {
        try await runOffPool { try index.ingestNextBatch(from: gateway) > 0 }
    }
}
