import Logging
import ZooKeeper

/// The ZooKeeper client of a demo node: the session timeout, connection timeout and credentials
/// its configuration gives, logging to the node's logger, and errors that name the setting the
/// servers came from.
public enum NodeZooKeeper {
    /// A client for `connectString` (not connected yet).
    /// - Throws: ``ConfigurationError`` naming `setting` when the connect string is malformed.
    public static func client(
        connectString: String, setting: String, sessionTimeout: Duration, connectionTimeout: Duration,
        credentials: [ZooKeeperClient.DigestCredential] = [], logger: Logger
    ) throws -> ZooKeeperClient {
        var configuration = ZooKeeperClient.Configuration()
        configuration.sessionTimeout = sessionTimeout
        configuration.connectionTimeout = connectionTimeout
        configuration.digestCredentials = credentials
        configuration.logger = logger
        do {
            return try ZooKeeperClient(connectString: connectString, configuration: configuration)
        } catch let error as ZooKeeperError {
            throw ConfigurationError("\(setting): \(error.message)")
        }
    }

    /// Connects `client`; on failure closes it and throws a ``ConfigurationError`` that names the
    /// servers and `setting` (a node does not start without ZooKeeper).
    public static func connect(_ client: ZooKeeperClient, setting: String) async throws {
        do {
            try await client.connect()
        } catch {
            await client.close()
            throw ConfigurationError("cannot connect to ZooKeeper at \(client.connectString) (\(setting)): \(error)")
        }
    }

    /// ``client(connectString:setting:sessionTimeout:connectionTimeout:credentials:logger:)``,
    /// then ``connect(_:setting:)``.
    public static func connected(
        connectString: String, setting: String, sessionTimeout: Duration, connectionTimeout: Duration,
        credentials: [ZooKeeperClient.DigestCredential] = [], logger: Logger
    ) async throws -> ZooKeeperClient {
        let client = try client(
            connectString: connectString, setting: setting, sessionTimeout: sessionTimeout, connectionTimeout: connectionTimeout,
            credentials: credentials, logger: logger)
        try await connect(client, setting: setting)
        return client
    }
}
