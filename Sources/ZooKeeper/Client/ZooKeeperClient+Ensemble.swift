import CZooKeeper

extension ZooKeeperClient {
    /// The node in which the servers publish the ensemble's configuration.
    static let configurationPath = "/zookeeper/config"

    // MARK: - Reading the configuration

    /// The ensemble's configuration as the server this client is connected to knows it (the last
    /// committed one).
    /// - Throws: `.noNode` when the server keeps no configuration (a standalone server),
    ///   `.marshallingError` when it cannot be read, `.connectionLoss`, `.sessionExpired`,
    ///   `.closed`, `CancellationError`.
    public func getConfiguration() async throws -> EnsembleConfiguration {
        let node: NodeData = try await perform("getConfiguration", path: Self.configurationPath) { handle, box in
            zoo_agetconfig(handle, 0, dataCompletion, box)
        }
        return try EnsembleConfiguration(parsing: node.string)
    }

    /// Reads the configuration and sets a one-shot watch that fires when it changes.
    func getConfigurationAndWatch() async throws -> (EnsembleConfiguration, NodeWatch) {
        let signal = OneShotSignal<WatchedEvent>()
        let node: NodeData = try await performWatching("getConfiguration", path: Self.configurationPath, kind: .data, deliver: { signal.deliver($0) }) {
            handle, watcher, box in
            zoo_awgetconfig(handle, nodeWatcher, watcher, dataCompletion, box)
        }
        return (try EnsembleConfiguration(parsing: node.string), NodeWatch(signal: signal))
    }

    /// The ensemble's configuration as a level-triggered stream: the current one, then one after
    /// every reconfiguration, and a fresh one after every reconnect and new session. Ends with
    /// `.closed` when the client closes; a configuration that cannot be read ends it with that
    /// error.
    public func configurationUpdates() -> EnsembleConfigurationUpdates {
        EnsembleConfigurationUpdates(client: self)
    }

    // MARK: - Changing the ensemble

    /// Adds and removes servers (an incremental reconfiguration). A client that follows the
    /// ensemble (``Configuration/followsEnsembleChanges``) takes the new configuration's client
    /// addresses as its server list at once; one that does not keeps its list.
    ///
    /// - Parameters:
    ///   - joining: the servers to add, as their configuration lines
    ///     (``EnsembleConfiguration/Server/configurationLine``); they must be running already and
    ///     know the current ensemble.
    ///   - leaving: the ids of the servers to remove.
    ///   - version: apply only if the current configuration is at this version (`nil`: whatever
    ///     it is).
    /// - Returns: the new configuration.
    /// - Throws: `.reconfigDisabled` (the ensemble does not allow it, or this client may not),
    ///   `.newConfigNoQuorum` (the new servers are not connected and in sync yet),
    ///   `.reconfigInProgress`, `.badVersion` (the configuration changed since `version`),
    ///   `.badArguments` (for example fewer than two servers would remain), `.connectionLoss`
    ///   (it may or may not have been applied), `.sessionExpired`, `.closed`.
    @discardableResult
    public func reconfigure(
        joining: [EnsembleConfiguration.Server] = [], leaving: [Int] = [], ifVersion version: Int64? = nil
    ) async throws -> EnsembleConfiguration {
        guard !joining.isEmpty || !leaving.isEmpty else {
            throw ZooKeeperError(.badArguments, path: Self.configurationPath, message: "a reconfiguration needs servers joining or leaving")
        }
        let joiningText = joining.isEmpty ? nil : joining.map(\.configurationLine).joined(separator: ",")
        let leavingText = leaving.isEmpty ? nil : leaving.map(String.init).joined(separator: ",")
        return try await reconfigure(joining: joiningText, leaving: leavingText, members: nil, version: version)
    }

    /// Replaces the ensemble's membership with `members` (a non-incremental reconfiguration).
    /// - Throws: as ``reconfigure(joining:leaving:ifVersion:)``.
    @discardableResult
    public func reconfigure(members: [EnsembleConfiguration.Server], ifVersion version: Int64? = nil) async throws -> EnsembleConfiguration {
        guard !members.isEmpty else {
            throw ZooKeeperError(.badArguments, path: Self.configurationPath, message: "a reconfiguration needs at least one member")
        }
        return try await reconfigure(
            joining: nil, leaving: nil, members: members.map(\.configurationLine).joined(separator: ","), version: version)
    }

    private func reconfigure(joining: String?, leaving: String?, members: String?, version: Int64?) async throws -> EnsembleConfiguration {
        let node: NodeData = try await perform("reconfigure", path: Self.configurationPath) { handle, box in
            zoo_areconfig(handle, joining, leaving, members, version ?? -1, dataCompletion, box)
        }
        let configuration = try EnsembleConfiguration(parsing: node.string)
        // The client's own server list follows only when it follows the ensemble.
        if self.configuration.followsEnsembleChanges { apply(configuration) }
        return configuration
    }

    // MARK: - Following the ensemble

    /// Starts following the ensemble's configuration (once per client): every configuration read
    /// replaces the server list when it names client addresses. Holds the client only while it
    /// reads, so a client that is dropped without ``close()`` is still released.
    func followEnsemble() {
        let reference = WeakClient(self)
        Task {
            var delay = Duration.milliseconds(100)
            while !Task.isCancelled {
                let next: NodeWatch?
                do {
                    guard let client = reference.client else { return }
                    let (configuration, watch) = try await client.getConfigurationAndWatch()
                    client.apply(configuration)
                    next = watch
                    delay = .milliseconds(100)
                } catch let error as ZooKeeperError where error.code == .closed || error.code == .authFailed {
                    return
                } catch let error as ZooKeeperError where error.isTransient || error.code == .invalidState {
                    next = nil  // not connected: look again soon
                } catch {
                    // No configuration to follow (a standalone server, an unreadable one): the
                    // server list stays; look again after a while in case the ensemble changes.
                    reference.client?.logger.debug("not following the ensemble's configuration", metadata: ["zk.error": "\(error)"])
                    next = nil
                    delay = .seconds(30)
                }
                if let next {
                    _ = try? await next.triggered()
                } else {
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(30))
                }
            }
        }
    }

    /// Makes `configuration`'s client addresses the server list, if it names any and they differ.
    func apply(_ configuration: EnsembleConfiguration) {
        let servers = configuration.clientServers
        guard !servers.isEmpty else { return }
        let changed = currentServers.withLock { current -> Bool in
            guard Set(current) != Set(servers) else { return false }
            current = servers
            return true
        }
        guard changed else { return }
        let hosts = ConnectString(servers: servers).description
        logger.info(
            "following the ensemble's new configuration", metadata: ["zk.servers": "\(hosts)", "zk.config_version": "\(configuration.version.map { String($0, radix: 16) } ?? "none")"])
        let logger = self.logger
        withOpenHandleOnHandleQueue { handle in
            let rc = zoo_set_servers(handle, hosts)
            if rc != ZOK.rawValue {
                logger.warning("the C client refused the new server list", metadata: ["zk.servers": "\(hosts)", "zk.rc": "\(rc)"])
            }
        }
    }
}

/// A weak reference to a client, for tasks that must not keep it alive.
final class WeakClient: Sendable {
    private let reference: WeakBox
    init(_ client: ZooKeeperClient) { reference = WeakBox(client) }
    var client: ZooKeeperClient? { reference.value }

    private final class WeakBox: @unchecked Sendable {
        weak var value: ZooKeeperClient?
        init(_ value: ZooKeeperClient) { self.value = value }
    }
}

/// The ensemble's configuration over time (see ``ZooKeeperClient/configurationUpdates()``).
public struct EnsembleConfigurationUpdates: AsyncSequence, Sendable {
    public typealias Element = EnsembleConfiguration
    public typealias Failure = any Error
    let client: ZooKeeperClient

    /// Iterates the configurations; each iterator follows the configuration on its own.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<EnsembleConfiguration, any Error>.AsyncIterator

        /// The next configuration; `nil` when the consuming task is cancelled.
        public mutating func next() async throws -> EnsembleConfiguration? { try await base.next() }

        /// The next configuration, resuming on `actor`'s executor.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(any Error) -> EnsembleConfiguration? {
            try await base.next(isolation: actor)
        }
    }

    /// Starts following the configuration.
    public func makeAsyncIterator() -> AsyncIterator {
        let client = self.client
        let path = ZooKeeperClient.configurationPath
        let stream = LevelTriggeredWatch<EnsembleConfiguration>.stream(client: client, path: path) { armed, deliver in
            let node: NodeData = try await client.performWatching("getConfiguration", path: path, kind: .data, armed: armed, deliver: deliver) { handle, watcher, box in
                zoo_awgetconfig(handle, nodeWatcher, watcher, dataCompletion, box)
            }
            return try EnsembleConfiguration(parsing: node.string)
        } read: {
            try await client.getConfiguration()
        }
        return AsyncIterator(base: stream.makeAsyncIterator())
    }
}
