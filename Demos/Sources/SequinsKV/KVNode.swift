@_spi(Concurrency) import Coordination
import DemoSupport
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import UnixSignals
import Synchronization
import ZooKeeper

/// A `kv` node: sequins on the library. Mirrors `source` into `local_store`, shards and
/// replicates versions across the cluster found in ZooKeeper, and answers any key over HTTP.
///
/// ``run()`` owns the node's life: it opens the local store, joins the cluster (when
/// `sharding.enabled`), loads the versions found in the source, then serves HTTP and refreshes on
/// SIGHUP and every `refresh_period`, until graceful shutdown; it then leaves the cluster.
public final class KVNode: Service, Sendable {
    public let configuration: SequinsConfiguration
    let logger: Logger
    let source: SourceRoot
    /// The goforit flag file, when `goforit_flag_json_path` is set.
    let flagFile: FlagFile?
    /// Called once the node serves HTTP, with the bound port.
    let onServing: @Sendable (Int) -> Void

    /// Set to the bound port once the node serves HTTP.
    private let serving = Latch<Int>()
    let runtime = Mutex(Runtime())
    struct Runtime {
        var store: LocalStore?
        var preopened: PreopenedVersions?
        var cluster: ClusterMembership?
        var databases: [String: Database] = [:]
        var refreshTrigger: AsyncStream<Void>.Continuation?
    }
    let metrics = KVMetrics()

    /// - Throws: ``ConfigurationError`` for an invalid configuration, ``SourceError`` for a bad source.
    public init(configuration: SequinsConfiguration, logger: Logger, onServing: @escaping @Sendable (Int) -> Void = { _ in }) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        self.onServing = onServing
        source = try SourceRoot(configuration.source, requireSuccessFile: configuration.requireSuccessFile)
        flagFile = configuration.goforitFlagJSONPath.isEmpty ? nil : FlagFile(path: configuration.goforitFlagJSONPath, logger: logger)
    }

    /// The HTTP server is bound to `port`.
    func didStartServing(port: Int) {
        _ = serving.set(port)
        onServing(port)
    }

    var cluster: ClusterMembership? { runtime.withLock { $0.cluster } }
    var store: LocalStore? { runtime.withLock { $0.store } }
    public var shardID: String? { cluster?.shardID }
    func database(_ name: String) -> Database? { runtime.withLock { $0.databases[name] } }
    var databases: [Database] { runtime.withLock { state in state.databases.keys.sorted().compactMap { state.databases[$0] } } }

    /// The name other nodes use in the status page (sequins: `hostname:port`).
    var statusName: String {
        let port = SequinsConfiguration.splitHostPort(configuration.bind)?.port ?? 9599
        return Self.hostName(configuration) + ":\(port)"
    }

    static func hostName(_ configuration: SequinsConfiguration) -> String {
        configuration.sharding.advertisedHostname.isEmpty ? ProcessInfo.processInfo.hostName : configuration.sharding.advertisedHostname
    }

    /// The address in ZooKeeper: the advertised host's single IP address, or the host name
    /// itself if it resolves to none or several (sequins' rule), and the bind port.
    static func zooKeeperAddress(_ configuration: SequinsConfiguration) -> String {
        let host = hostName(configuration)
        let port = SequinsConfiguration.splitHostPort(configuration.bind)?.port ?? 9599
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        var addresses = Set<String>()
        if getaddrinfo(host, nil, &hints, &result) == 0 {
            var cursor = result
            while let info = cursor {
                var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                if getnameinfo(info.pointee.ai_addr, info.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                    addresses.insert(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
                }
                cursor = info.pointee.ai_next
            }
            freeaddrinfo(result)
        }
        let ip = addresses.count == 1 ? addresses.first! : host
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    // MARK: Service

    public func run() async throws {
        let store = try LocalStore(directory: configuration.localStore)
        runtime.withLock { $0.store = store }
        // The stored versions are read while the member list converges, not before: with a cold
        // page cache their reads would delay the pages of code the join itself needs.
        let preopen: @Sendable () -> Void = { [self] in
            let preopened = PreopenedVersions(store: store)
            runtime.withLock { $0.preopened = preopened }
        }
        var cluster: ClusterMembership?
        if configuration.sharding.enabled {
            let joined = try await ClusterMembership.connect(
                configuration: configuration, address: Self.zooKeeperAddress(configuration), logger: logger)
            cluster = joined
            do {
                let shardID = try await joined.join(
                    configuredShardID: configuration.sharding.shardID, store: store, timeToConverge: configuration.sharding.timeToConverge,
                    whileConverging: preopen)
                logger.info("joined the cluster", metadata: ["kv.shard_id": "\(shardID)", "kv.address": "\(joined.address)"])
            } catch {
                await joined.shutdown()
                throw ClusterError("cannot join the cluster at \(joined.root): \(error)")
            }
            runtime.withLock { $0.cluster = joined }
        } else {
            preopen()
        }
        let peerClient = PeerClient()
        let (flapping, flapSignal) = AsyncStream<Void>.makeStream()
        if configuration.test.flapThreshold > 0 {
            cluster?.watchForFlapping(threshold: configuration.test.flapThreshold) { flapSignal.yield() }
        }
        try await NodeLifetime(logger: logger).run { group in
            flagFile?.reload()
            await refreshAll(initialStartup: true)
            runtime.withLock { $0.preopened }?.dropRest()
            if let flagFile { group.addTask { try await flagFile.watch() } }
            let server = HTTPFrontEnd(node: self, peerClient: peerClient)
            group.addTask { try await server.run() }
            group.addTask {
                // Deleting the versions no longer served does not hold up serving (sequins deletes
                // them in the background too); it runs before any refresh, which may store more.
                await self.cleanUpStore()
                try await self.refreshLoop()
            }
            group.addTask {
                for await _ in flapping { throw ClusterError("Dying due to ZK flapping") }
            }
        } cleanUp: {
            logger.info("Shutting down...")  // sequins' line
            peerClient.shutdown()
            for database in databases {
                for version in database.versions { await version.close() }
            }
            await cluster?.shutdown()
        }
    }

    /// Refreshes on SIGHUP, every `refresh_period`, and when asked (``triggerRefresh()``).
    private func refreshLoop() async throws {
        let (triggers, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        runtime.withLock { $0.refreshTrigger = continuation }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    continuation.yield()
                }
            }
            let period = configuration.refreshPeriod
            if period > .zero {
                group.addTask {
                    while true {
                        try await Task.sleep(for: period)
                        continuation.yield()
                    }
                }
            }
            group.addTask {
                for await _ in triggers {
                    self.logger.info("refreshing from the source")
                    self.flagFile?.reload()
                    await self.refreshAll(initialStartup: false)
                    self.logger.info("refreshed from the source")
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Asks for a refresh, as SIGHUP does.
    public func triggerRefresh() {
        _ = runtime.withLock { $0.refreshTrigger }?.yield()
    }

    // MARK: Refresh

    /// sequins' `refreshAll`: new databases are backfilled, existing ones refreshed, databases gone
    /// from the source removed here. Runs one at a time: at start-up before the refresh loop, then
    /// only from that loop.
    ///
    /// While the `sequins.prevent_download` flag is on, a refresh does nothing at all, and the one
    /// at start-up takes versions from the local store only (a fresh node serves nothing).
    func refreshAll(initialStartup: Bool) async {
        var localOnly = false
        let preventDownload = FeatureFlags.name(FeatureFlags.preventDownload, clusterName: configuration.sharding.clusterName)
        if let flags = flagFile?.flags, flags.isEnabled(preventDownload) {
            guard initialStartup else {
                logger.notice("Not allowing remote refresh", metadata: ["kv.flag": "\(preventDownload)"])
                return
            }
            logger.notice("Kicking off initial local-only refresh", metadata: ["kv.flag": "\(preventDownload)"])
            localOnly = true
        }
        let names: [String]
        let source = self.source
        do { names = try await runOffPool { try source.databases() } } catch {
            logger.error("cannot list the source", metadata: ["kv.error": "\(error)"])
            return
        }
        for name in names {
            if let database = database(name) {
                await refresh(database)
            } else {
                let database = Database(name: name)
                runtime.withLock { $0.databases[name] = database }
                await backfill(database, localOnly: localOnly)
            }
        }
        let gone = runtime.withLock { state -> [Database] in
            let gone = state.databases.keys.filter { !names.contains($0) }
            return gone.compactMap { state.databases.removeValue(forKey: $0) }
        }
        for database in gone {
            logger.info("the database left the source; removing it", metadata: ["kv.db": "\(database.name)"])
            for version in database.removeAll() { await drop(version) }
        }
        metrics.databases.record(runtime.withLock { $0.databases.count })
        if let cluster, !localOnly {
            Task { try? await VersionGate.removeEmptyVersions(client: cluster.client, under: cluster.versionsRoot) }
        }
    }

    /// A new database: the newest of the last three versions that is ready is switched to at
    /// once; older ones are prepared too, in case their holders come back. `localOnly`: only
    /// versions the local store holds are considered.
    private func backfill(_ database: Database, localOnly: Bool) async {
        let versions: [String]
        do {
            if localOnly {
                let store = self.store
                versions = try await runOffPool { store?.storedVersions().filter { $0.database == database.name }.map(\.version) ?? [] }
            } else {
                versions = try await listVersions(database.name)
            }
        } catch {
            logger.error("cannot list versions", metadata: ["kv.db": "\(database.name)", "kv.error": "\(error)"])
            return
        }
        for name in versions.suffix(3).reversed() {
            guard let version = await newVersion(database: database, name: name) else { continue }
            if await switchVersion(database, to: version) { break }
        }
    }

    /// An existing database: the greatest source version newer than the current one, if any.
    private func refresh(_ database: Database) async {
        let versions: [String]
        do { versions = try await listVersions(database.name) } catch {
            logger.error("cannot list versions", metadata: ["kv.db": "\(database.name)", "kv.error": "\(error)"])
            return
        }
        guard let newest = database.candidates(from: versions).first else { return }
        if let existing = database.version(named: newest) {
            startBuild(existing)
            return
        }
        if let version = await newVersion(database: database, name: newest) {
            _ = await switchVersion(database, to: version)
        }
    }

    private func listVersions(_ database: String) async throws -> [String] {
        let source = self.source
        return try await runOffPool { try source.versions(of: database) }
    }

    /// Creates a version: lists its files, reads its advertisements, selects partitions, and
    /// reads back what the local store already has.
    private func newVersion(database: Database, name: String) async -> Version? {
        let metadata: Logger.Metadata = ["kv.db": "\(database.name)", "kv.version": "\(name)"]
        let files: [String]
        let (source, databaseName) = (self.source, database.name)
        do {
            files = try await runOffPool { try source.dataFiles(database: databaseName, version: name) }
            if let sparkey = files.first(where: { $0.hasSuffix(".spl") || $0.hasSuffix(".spi.sz") }) {
                throw SourceError("\(sparkey): Sparkey input is not supported by kv (only Hadoop SequenceFiles)")
            }
        } catch {
            logger.error("cannot read the version's files", metadata: metadata.merging(["kv.error": "\(error)"]) { $1 })
            return nil
        }
        let partitionCount = files.count
        let store = self.store
        var stored = try? await runOffPool { store?.manifest(database: databaseName, version: name) }
        if let found = stored, found.numPartitions != partitionCount, let store {
            // The source's version was written again with another number of files: what is stored
            // is another version by the same name. It goes, and the partitions are assigned anew.
            logger.warning(
                "the stored version has \(found.numPartitions) partitions and the source \(partitionCount): building it again",
                metadata: metadata)
            _ = try? await runOffPool { store.remove(database: databaseName, version: name) }
            stored = nil
        }
        var selected = Set(0..<partitionCount)
        var gate: VersionGate?
        var replication = PartitionReplication(counts: Array(repeating: 0, count: partitionCount))
        if let cluster, let shardID {
            let versionGate = VersionGate(
                client: cluster.client, versionPath: cluster.versionPath(database: database.name, version: name),
                partitionCount: partitionCount, holder: cluster.address)
            gate = versionGate
            // A version read back from the local store keeps its partitions and counts them as held
            // here: the other holders come with the gate's updates, and nothing waits for ZooKeeper.
            if stored == nil {
                do {
                    try await cluster.client.createPath(versionGate.versionPath)
                    replication = try await versionGate.currentReplication()
                } catch {
                    logger.error("cannot read the version's partitions in ZooKeeper", metadata: metadata.merging(["kv.error": "\(error)"]) { $1 })
                    return nil
                }
                let assigner = StaticPartitionAssigner(partitionCount: partitionCount, replication: configuration.sharding.replication)
                selected = Set(
                    assigner.partitions(
                        for: shardID, members: cluster.memberShardIDs, maxReplication: configuration.sharding.maxReplication,
                        remoteHolders: replication.remoteCounts(excluding: cluster.address)))
            }
        }
        if let stored {
            selected = Set(stored.selectedPartitions)
        }
        let version = Version(
            database: database.name, name: name, files: files, selected: selected,
            sourcePath: source.path(database: database.name, version: name), gate: gate)
        if let stored, let store {
            do {
                let partitions: [Int: PartitionFile]
                if let opening = runtime.withLock({ $0.preopened })?.take(database: databaseName, version: name) {
                    partitions = try await opening.value
                } else {
                    partitions = try await runOffPool { try store.openPartitions(database: databaseName, version: name, manifest: stored) }
                }
                let data = VersionData(partitionCount: partitionCount, partitions: partitions, createdAt: Date(timeIntervalSince1970: stored.createdAt))
                version.install(data)
                logger.info("mapped the version from the local store", metadata: metadata)
                checkPagesOnceServing(version, data)
            } catch {
                logger.warning("the stored version is unreadable; loading it again", metadata: metadata.merging(["kv.error": "\(error)"]) { $1 })
                _ = try? await runOffPool { store.remove(database: databaseName, version: name) }
            }
        }
        logger.info(
            "found a version", metadata: metadata.merging(["kv.partitions": "\(partitionCount)", "kv.selected": "\(selected.sorted())"]) { $1 })
        if let gate {
            let minReplication = configuration.sharding.minReplication
            version.apply(replication, minReplication: minReplication)
            if !version.isReady, stored != nil, let current = try? await gate.currentReplication() {
                // What this node holds is not enough: the other holders, read once before serving.
                version.apply(current, minReplication: minReplication)
            }
            let updates = gate.replication()
            version.adopt(
                Task { [weak version] in
                    do {
                        for try await replication in updates {
                            guard let version else { return }
                            version.apply(replication, minReplication: minReplication)
                        }
                    } catch {}
                })
        }
        return version
    }

    /// Prepares `version`, builds and advertises it, and switches to it once it is ready.
    /// Returns true if it was ready at once (and is now current).
    private func switchVersion(_ database: Database, to version: Version) async -> Bool {
        database.prepare(version)
        if version.data != nil, let gate = version.gate {
            // Written while the version serves, as sequins does: its readiness already counts what
            // this node holds, and after a crash the previous process's advertisements are waited out.
            version.adopt(Task { await self.advertise(version, gate: gate) })
        }
        startBuild(version)
        if version.isReady {
            await upgrade(database, to: version)
            return true
        }
        version.adopt(
            Task {
                await version.waitUntilReady()
                guard !Task.isCancelled, version.isReady else { return }
                await self.upgrade(database, to: version)
            })
        return false
    }

    /// Builds the version's selected partitions in the background (no-op if built or building).
    private func startBuild(_ version: Version) {
        guard version.beginBuild() else { return }
        version.adopt(Task { await self.build(version) })
    }

    private func build(_ version: Version) async {
        let metadata: Logger.Metadata = ["kv.db": "\(version.database)", "kv.version": "\(version.name)"]
        let started = ContinuousClock.now
        var builder = VersionBuilder(files: version.files, partitionCount: version.partitionCount, selected: version.selected)
        builder.maxParallelLoads = configuration.maxParallelLoads
        builder.throttle = configuration.throttleLoads
        let hang = configuration.test.hang
        if !hang.file.isEmpty && (hang.version.isEmpty || hang.version == version.name) {
            builder.afterFile = { file in
                if file.hasSuffix("/" + hang.file) { while true { sleep(3600) } }
            }
        }
        do {
            guard let store else { throw StoreError("the node has no local store to build into") }
            let partitions: [Int: PartitionFile]
            do {
                partitions = try await builder.build(into: store.versionDirectory(database: version.database, version: version.name))
                try Task.checkCancellation()
            } catch {
                // Nothing half-built stays in the store (a version without a manifest is never read back anyway).
                _ = try? await runOffPool { store.remove(database: version.database, version: version.name) }
                throw error
            }
            let createdAt = Date()
            let manifest = StoredVersionManifest(
                numPartitions: version.partitionCount, selectedPartitions: version.selected.sorted(),
                createdAt: createdAt.timeIntervalSince1970, sourcePath: version.sourcePath)
            try await runOffPool { try store.saveManifest(manifest, database: version.database, version: version.name) }
            let data = VersionData(partitionCount: version.partitionCount, partitions: partitions, createdAt: createdAt)
            version.install(data)
            _ = try? await runOffPool { releaseFreedMemory() }  // the readers' batches
            let elapsed = ContinuousClock.now - started
            metrics.loadDuration.record(elapsed)
            logger.info(
                "built the version",
                metadata: metadata.merging(["kv.records": "\(data.recordCount)", "kv.elapsed": "\(elapsed)"]) { $1 })
            if let gate = version.gate { await advertise(version, gate: gate) }
        } catch is CancellationError {
            return
        } catch {
            version.buildFailed()
            logger.error(
                "cannot build the version; still serving what this node had", metadata: metadata.merging(["kv.error": "\(error)"]) { $1 })
        }
    }

    /// Checks every page of a version read back from the local store, in the background once the
    /// node serves: damage is found (and its partition built again) before a lookup meets it, and
    /// a cold page cache fills at disk speed instead of page by page.
    private func checkPagesOnceServing(_ version: Version, _ data: VersionData) {
        let metadata: Logger.Metadata = ["kv.db": "\(version.database)", "kv.version": "\(version.name)"]
        version.adopt(
            Task {
                guard await self.serving.wait() != nil else { return }
                let started = ContinuousClock.now
                for (partition, file) in data.partitions.sorted(by: { $0.key < $1.key }) {
                    guard !Task.isCancelled else { return }
                    do {
                        try await runOffPool { try file.checkAllPages() }
                    } catch var damage as PartitionDamage {
                        damage.partition = partition
                        self.repair(version, damage)
                    } catch {}
                }
                self.logger.info("checked the stored version's pages", metadata: metadata.merging(["kv.elapsed": "\(ContinuousClock.now - started)"]) { $1 })
            })
    }

    /// Builds a damaged partition of `version` again from the source (once at a time) and serves
    /// the new file in its place; lookups that meet the damage meanwhile are not answered from it.
    func repair(_ version: Version, _ damage: PartitionDamage) {
        guard let partition = damage.partition, let store, version.beginRepair(partition) else { return }
        let metadata: Logger.Metadata = ["kv.db": "\(version.database)", "kv.version": "\(version.name)", "kv.partition": "\(partition)"]
        logger.error("\(damage); building the partition again from the source", metadata: metadata)
        var builder = VersionBuilder(files: version.files, partitionCount: version.partitionCount, selected: version.selected)
        builder.maxParallelLoads = configuration.maxParallelLoads
        builder.throttle = configuration.throttleLoads
        let directory = store.versionDirectory(database: version.database, version: version.name)
        // A scratch directory of its own: two partitions of one version can be repaired at once.
        let scratch = directory + "/.rebuilding-\(partition)"
        let name = LocalStore.partitionFileName(partition)
        version.adopt(
            Task {
                do {
                    _ = try await builder.build(into: scratch, writing: [partition])
                    // Renamed over the damaged file: lookups still reading its mapping keep it until they finish.
                    let file = try await runOffPool { () throws(StoreError) -> PartitionFile in
                        guard rename(scratch + "/" + name, directory + "/" + name) == 0 else {
                            throw StoreError("cannot move the rebuilt \(name) into \(directory): \(String(cString: strerror(errno)))")
                        }
                        return try PartitionFile(path: directory + "/" + name)
                    }
                    version.endRepair(partition, with: file)
                    self.logger.info("built the damaged partition again", metadata: metadata.merging(["kv.records": "\(file.count)"]) { $1 })
                } catch {
                    version.endRepair(partition, with: nil)
                    if !(error is CancellationError) {
                        self.logger.error("cannot build the damaged partition again", metadata: metadata.merging(["kv.error": "\(error)"]) { $1 })
                    }
                }
                _ = try? await runOffPool { try FileManager.default.removeItem(atPath: scratch) }
            })
    }

    /// Advertises the version's partitions. The gate waits for ZooKeeper while it is unreachable,
    /// and for this address's previous process's advertisements (after a crash) to expire.
    private func advertise(_ version: Version, gate: VersionGate) async {
        do {
            try await gate.advertise(version.selected.sorted(), waitingForOtherSession: gate.client.predecessorExpiryWait)
        } catch is CancellationError {
        } catch {
            logger.error("cannot advertise the version", metadata: ["kv.version": "\(version.name)", "kv.error": "\(error)"])
        }
    }

    /// The version is ready: switch clients to it if it is newer (after `test.upgrade_delay`).
    private func upgrade(_ database: Database, to version: Version) async {
        if configuration.test.upgradeDelay > .zero { try? await Task.sleep(for: configuration.test.upgradeDelay) }
        let keepPrevious = cluster != nil
        for (action, affected) in database.decide({ $0.upgrade(to: version.name, keepPrevious: keepPrevious) }) {
            switch action {
            case .activate:
                affected.setState(.active)
                metrics.versionSwitches.increment()
                // sequins' line, word for word: operators grep for it.
                logger.info("Switching to version \(affected.name) of \(database.name)!", metadata: ["kv.db": "\(database.name)", "kv.version": "\(affected.name)"])
            case .removeAfterTimeout:
                affected.setState(.removing)
                scheduleRemoval(database, affected)
            case .removeNow:
                await drop(affected)
            }
        }
    }

    /// Drops `version` once nobody has used it for the removal timeout.
    private func scheduleRemoval(_ database: Database, _ version: Version) {
        let timeout = configuration.test.effectiveVersionRemoveTimeout
        version.touch()
        // The version's own task: closing the version (shutdown, removal) cancels it.
        version.adopt(Task {
            while !Task.isCancelled {
                let idle = version.idleTime
                if idle < timeout {
                    try? await Task.sleep(for: timeout - idle)
                    continue
                }
                for (_, affected) in database.decide({ $0.removalTimedOut(version.name) }) { await self.drop(affected) }
                return
            }
        })
    }

    /// Withdraws and deletes a version.
    private func drop(_ version: Version) async {
        version.setState(.removing)
        await version.close()
        if let store {
            let (database, name) = (version.database, version.name)
            _ = try? await runOffPool { store.remove(database: database, version: name) }
        }
        logger.info("removed a version", metadata: ["kv.db": "\(version.database)", "kv.version": "\(version.name)"])
    }

    /// Deletes stored versions that no database references, complete or not (sequins'
    /// `cleanupStore` deletes every version directory it does not use, so a build a crash cut
    /// off does not stay on disk).
    private func cleanUpStore() async {
        guard let store else { return }
        let stored = (try? await runOffPool { store.versionDirectories() }) ?? []
        for (databaseName, versionName) in stored where database(databaseName)?.version(named: versionName) == nil {
            logger.info("Clearing defunct version \(versionName) of \(databaseName)", metadata: ["kv.db": "\(databaseName)", "kv.version": "\(versionName)"])  // sequins' line
            _ = try? await runOffPool { store.remove(database: databaseName, version: versionName) }
        }
    }
}
