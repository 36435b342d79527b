import CZooKeeper

extension ZooKeeperClient {
    // MARK: - Create

    /// Creates a node and returns its path (with the sequence suffix for sequential modes) and ``Stat``.
    ///
    /// - Parameters:
    ///   - path: the node's path; for sequential modes, the prefix the server appends the
    ///     sequence number to.
    ///   - data: the node's data.
    ///   - mode: persistent, ephemeral, sequential, container or TTL (``CreateMode``).
    ///   - acl: who may do what with the node. Default: open to anyone.
    ///   - parents: what to do when the parent is missing: fail (`.none`), or create the missing
    ///     ancestors as persistent or container nodes first (with the same `acl`).
    /// - Throws: `.nodeExists`, `.noNode` (missing parent), `.noChildrenForEphemerals`, `.noAuth`,
    ///   `.invalidACL`, `.invalidPath`, `.dataTooLarge`, `.unimplemented` (TTL on a server without
    ///   extended types), `.connectionLoss` (the node may or may not exist), `.sessionExpired`,
    ///   `.closed`, `CancellationError`.
    @discardableResult
    public func create(
        _ path: String, data: [UInt8] = [], mode: CreateMode = .persistent, acl: [ACL] = ACL.openUnsafe,
        parents: ParentCreation = .none
    ) async throws -> CreatedNode {
        try ZooKeeperPath.validate(path, isSequential: mode.isSequential)
        try checkDataSize(data.count, path: path)
        try mode.validateTTL(path: path)
        guard !acl.isEmpty else { throw ZooKeeperError(.invalidACL, path: path, message: "the ACL list is empty") }
        do {
            return try await createNode(path, data: data, mode: mode, acl: acl)
        } catch let error as ZooKeeperError where error.code == .noNode && parents != .none {
            try await createAncestors(of: path, as: parents == .container ? .container : .persistent, acl: acl)
            return try await createNode(path, data: data, mode: mode, acl: acl)
        }
    }

    /// Creates `path` (as `mode`) and every missing ancestor (containers when `mode` is
    /// `.container`, persistent nodes otherwise: an ephemeral node cannot have children),
    /// succeeding if they already exist.
    ///
    /// One request when the node or its parent exists (the usual case: a path created once and
    /// used many times); the ancestors are looked for only when the parent is missing.
    /// - Throws: `.badArguments` for a sequential `mode` (every call, and every retry, would create
    ///   another node: use ``create(_:data:mode:acl:parents:)``); what a create throws.
    public func createPath(_ path: String, mode: CreateMode = .persistent, acl: [ACL] = ACL.openUnsafe) async throws {
        try ZooKeeperPath.validate(path)
        guard !mode.isSequential else {
            throw ZooKeeperError(.badArguments, path: path, message: "createPath cannot make a sequential node (each call or retry would make another); use create")
        }
        let ancestorMode: CreateMode = mode == .container ? .container : .persistent
        do {
            try await createNode(path, data: [], mode: mode, acl: acl)
            return
        } catch let error as ZooKeeperError where error.code == .nodeExists {
            return
        } catch let error as ZooKeeperError where error.code == .noNode {}
        try await createAncestors(of: path, as: ancestorMode, acl: acl)
        do {
            try await createNode(path, data: [], mode: mode, acl: acl)
        } catch let error as ZooKeeperError where error.code == .nodeExists {}
    }

    /// Creates the missing ancestors of `path`, from the nearest up: a create whose own parent is
    /// missing fails with `.noNode` and the next one up is tried, until one is created or found;
    /// the ones below it are then created in order. Usually only the nearest is missing, and this
    /// is one request where creating every ancestor from the root would be one per level.
    private func createAncestors(of path: String, as mode: CreateMode, acl: [ACL]) async throws {
        let ancestors = ZooKeeperPath.ancestors(of: path)
        var firstToCreate = 0
        for index in ancestors.indices.reversed() {
            do {
                try await createNode(ancestors[index], data: [], mode: mode, acl: acl)
                firstToCreate = index + 1
                break
            } catch let error as ZooKeeperError where error.code == .nodeExists {
                firstToCreate = index + 1
                break
            } catch let error as ZooKeeperError where error.code == .noNode {
                continue
            }
        }
        for ancestor in ancestors[firstToCreate...] {
            do {
                try await createNode(ancestor, data: [], mode: mode, acl: acl)
            } catch let error as ZooKeeperError where error.code == .nodeExists {}
        }
    }

    @discardableResult
    private func createNode(_ path: String, data: [UInt8], mode: CreateMode, acl: [ACL]) async throws -> CreatedNode {
        let flags = mode.cFlags
        let ttl = mode.ttlMilliseconds
        // The C client serializes the request (ACL included) during the call.
        return try await perform("create", path: path) { handle, box in
            path.withCString { cPath in
                withCACLVector(acl) { acl in
                    withBytes(data) { bytes, length in
                        ttl >= 0
                            ? zoo_acreate2_ttl(handle, cPath, bytes, length, acl, flags, ttl, createCompletion, box)
                            : zoo_acreate2(handle, cPath, bytes, length, acl, flags, createCompletion, box)
                    }
                }
            }
        }
    }

    // MARK: - Read

    /// The node's ``Stat``, or `nil` if it does not exist.
    /// - Throws: `.invalidPath`, `.connectionLoss`, `.sessionExpired`, `.closed`, `CancellationError`.
    public func exists(_ path: String) async throws -> Stat? {
        try ZooKeeperPath.validate(path)
        return try await perform("exists", path: path) { handle, box in
            path.withCString { cPath in
                zoo_aexists(handle, cPath, 0, existsCompletion, box)
            }
        }
    }

    /// The node's data and ``Stat``.
    /// - Throws: `.noNode`, `.noAuth`, `.invalidPath`, `.connectionLoss`, `.sessionExpired`, `.closed`, `CancellationError`.
    public func getData(_ path: String) async throws -> NodeData {
        try ZooKeeperPath.validate(path)
        return try await perform("getData", path: path) { handle, box in
            path.withCString { cPath in
                zoo_aget(handle, cPath, 0, dataCompletion, box)
            }
        }
    }

    /// The names of the node's children (unsorted, as the server returns them) and its ``Stat``.
    /// - Throws: `.noNode`, `.noAuth`, `.invalidPath`, `.connectionLoss`, `.sessionExpired`, `.closed`, `CancellationError`.
    public func getChildren(_ path: String) async throws -> NodeChildren {
        try ZooKeeperPath.validate(path)
        return try await perform("getChildren", path: path) { handle, box in
            path.withCString { cPath in
                zoo_aget_children2(handle, cPath, 0, childrenCompletion, box)
            }
        }
    }

    // MARK: - Write

    /// Replaces the node's data; with `version`, only if the node is at that version.
    /// - Throws: `.noNode`, `.badVersion`, `.noAuth`, `.invalidPath`, `.dataTooLarge`,
    ///   `.connectionLoss` (the write may or may not have happened), `.sessionExpired`, `.closed`, `CancellationError`.
    @discardableResult
    public func setData(_ path: String, data: [UInt8], version: Int32? = nil) async throws -> Stat {
        try ZooKeeperPath.validate(path)
        try checkDataSize(data.count, path: path)
        let version = version ?? -1
        return try await perform("setData", path: path) { handle, box in
            path.withCString { cPath in
                withBytes(data) { bytes, length in
                    zoo_aset(handle, cPath, bytes, length, version, statCompletion, box)
                }
            }
        }
    }

    /// Deletes the node; with `version`, only if the node is at that version.
    /// - Throws: `.noNode`, `.badVersion`, `.notEmpty`, `.noAuth`, `.invalidPath`, `.connectionLoss`,
    ///   `.sessionExpired`, `.closed`, `CancellationError`.
    public func delete(_ path: String, version: Int32? = nil) async throws {
        try ZooKeeperPath.validate(path)
        let version = version ?? -1
        try await perform("delete", path: path) { handle, box in
            path.withCString { cPath in
                zoo_adelete(handle, cPath, version, voidCompletion, box)
            }
        } as Void
    }

    /// Makes sure the server this client is connected to has seen every write the leader had
    /// committed when the sync was processed (so a following read is not stale).
    public func sync(_ path: String = "/") async throws {
        try ZooKeeperPath.validate(path)
        try await perform("sync", path: path) { handle, box in
            path.withCString { cPath in
                zoo_async(handle, cPath, syncCompletion, box)
            }
        } as Void
    }

    // MARK: - Tolerating a missing node

    /// The names of the node's children (unsorted), or none when the node does not exist.
    /// - Throws: as ``getChildren(_:)``, except `.noNode`.
    public func childrenIfExists(_ path: String) async throws -> [String] {
        do {
            return try await getChildren(path).names
        } catch let error as ZooKeeperError where error.code == .noNode {
            return []
        }
    }

    /// Deletes the node if it exists; with `version`, only if it is at that version.
    /// - Returns: `false` when there was no node to delete.
    /// - Throws: as ``delete(_:version:)``, except `.noNode`.
    @discardableResult
    public func deleteIfExists(_ path: String, version: Int32? = nil) async throws -> Bool {
        do {
            try await delete(path, version: version)
            return true
        } catch let error as ZooKeeperError where error.code == .noNode {
            return false
        }
    }

    /// Deletes `path` and every node under it, deepest first. Succeeds when `path` does not exist.
    /// For `/`, deletes everything but the root itself and the server's `/zookeeper` subtree.
    ///
    /// The tree is read one level at a time and each level's requests are pipelined, so the cost
    /// is about two round trips per level, not per node. It is not atomic: nodes created under
    /// `path` while it runs make a delete fail with `.notEmpty`, and the tree is then read again
    /// (up to `attempts` times).
    /// - Throws: `.notEmpty` when nodes kept appearing; `.noAuth`, `.invalidPath`, `.connectionLoss`,
    ///   `.sessionExpired`, `.closed`, `CancellationError` (part of the tree may be gone then).
    public func deleteRecursively(_ path: String, attempts: Int = 5) async throws {
        try ZooKeeperPath.validate(path)
        var attempt = 1
        while true {
            do {
                try await deleteTreeOnce(path)
                return
            } catch let error as ZooKeeperError where error.code == .notEmpty && attempt < attempts {
                attempt += 1
            }
        }
    }

    private func deleteTreeOnce(_ root: String) async throws {
        var levels: [[String]] = [[root]]
        while let level = levels.last, !level.isEmpty {
            let replies = level.map { ($0, submitGetChildren($0)) }
            var next: [String] = []
            for (parent, reply) in replies {
                do {
                    // The server's own subtree cannot be deleted.
                    next += try await reply.value().names.map { ZooKeeperPath.join(parent, $0) }.filter { $0 != "/zookeeper" }
                } catch let error as ZooKeeperError where error.code == .noNode {}
            }
            levels.append(next)
        }
        for level in levels.reversed() where !level.isEmpty && !(level == ["/"]) {
            let replies = level.map { submitDelete($0) }
            for reply in replies {
                do {
                    try await reply.value()
                } catch let error as ZooKeeperError where error.code == .noNode {}
            }
        }
    }

    // MARK: - ACL

    /// The node's ACL and ``Stat``.
    public func getACL(_ path: String) async throws -> (acl: [ACL], stat: Stat) {
        try ZooKeeperPath.validate(path)
        let (acl, stat): ([ACL], Stat) = try await perform("getACL", path: path) { handle, box in
            path.withCString { cPath in
                zoo_aget_acl(handle, cPath, aclCompletion, box)
            }
        }
        return (acl, stat)
    }

    /// Replaces the node's ACL; with `version` (the ACL version, ``Stat/aversion``), only at that version.
    public func setACL(_ path: String, acl: [ACL], version: Int32? = nil) async throws {
        try ZooKeeperPath.validate(path)
        guard !acl.isEmpty else { throw ZooKeeperError(.invalidACL, path: path, message: "the ACL list is empty") }
        let version = version ?? -1
        try await perform("setACL", path: path) { handle, box in
            path.withCString { cPath in
                withCACLVector(acl) { acl in
                    zoo_aset_acl(handle, cPath, version, UnsafeMutablePointer(mutating: acl), voidCompletion, box)
                }
            }
        } as Void
    }

    // MARK: - Helpers

    func checkDataSize(_ count: Int, path: String) throws(ZooKeeperError) {
        if count > configuration.maxDataSize {
            throw ZooKeeperError(
                .dataTooLarge, path: path,
                message: "\(count) bytes of data exceed the limit of \(configuration.maxDataSize) bytes (the server's jute.maxbuffer)")
        }
    }
}

/// Calls `body` with a C pointer to `bytes` and their length (empty data is a zero-length, non-null buffer).
@inline(__always)
func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>, Int32) -> R) -> R {
    if bytes.isEmpty {
        return "".withCString { body($0, 0) }
    }
    return bytes.withUnsafeBufferPointer { buffer in
        buffer.withMemoryRebound(to: CChar.self) { body($0.baseAddress!, Int32($0.count)) }
    }
}
