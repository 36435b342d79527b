import CZooKeeper
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ZooKeeperClient {
    /// Runs `operations` as one atomic transaction: all are applied or none is.
    ///
    /// - Returns: one ``MultiResult`` per operation, in order.
    /// - Throws: the error of the operation that failed, with ``ZooKeeperError/failedOperationIndex``
    ///   and its path (for example `.badVersion` for a failed `check`); `.invalidPath`,
    ///   `.dataTooLarge` or `.badArguments` before anything is sent; `.connectionLoss` (the
    ///   transaction may or may not have been applied), `.sessionExpired`, `.closed`, `CancellationError`.
    @discardableResult
    public func multi(_ operations: [MultiOperation]) async throws -> [MultiResult] {
        if operations.isEmpty { return [] }
        for (index, operation) in operations.enumerated() {
            do {
                switch operation {
                case .create(let path, let data, let mode, let acl):
                    try ZooKeeperPath.validate(path, isSequential: mode.isSequential)
                    try checkDataSize(data.count, path: path)
                    if mode.hasTTL {
                        throw ZooKeeperError(.badArguments, path: path, message: "TTL nodes cannot be created in a multi with the 3.8 C client")
                    }
                    if acl.isEmpty { throw ZooKeeperError(.invalidACL, path: path, message: "the ACL list is empty") }
                case .setData(let path, let data, _):
                    try ZooKeeperPath.validate(path)
                    try checkDataSize(data.count, path: path)
                case .delete(let path, _), .check(let path, _):
                    try ZooKeeperPath.validate(path)
                }
            } catch var error as ZooKeeperError {
                error.failedOperationIndex = index
                throw error
            }
        }
        // The server takes one request of at most jute.maxbuffer bytes: a multi over it would be
        // cut off with the connection (and every other request in flight), not refused.
        let dataBytes = operations.reduce(0) { total, operation in
            switch operation {
            case .create(_, let data, _, _), .setData(_, let data, _): return total + data.count
            case .delete, .check: return total
            }
        }
        if dataBytes > configuration.maxDataSize {
            throw ZooKeeperError(
                .dataTooLarge,
                message: "the multi's \(operations.count) operations carry \(dataBytes) bytes of data, more than the \(configuration.maxDataSize) the server takes in one request (jute.maxbuffer)")
        }
        let buffers = MultiBuffers(operations)
        return try await perform("multi", path: nil, attachment: buffers) { handle, box in
            buffers.withOperations { ops in
                zoo_amulti(handle, Int32(operations.count), ops, buffers.results, multiCompletion, box)
            }
        }
    }
}

/// The C memory of one multi: what is only read during the call (`withOperations`) and what the
/// C client writes when the reply arrives (`results`, the created paths, the set stats), which
/// lives as long as the request box.
final class MultiBuffers: @unchecked Sendable {
    let operations: [MultiOperation]
    let results: UnsafeMutablePointer<zoo_op_result_t>
    private let pathBuffers: [UnsafeMutablePointer<CChar>?]
    private let stats: [UnsafeMutablePointer<CZooKeeper.Stat>?]
    /// How long a created node's path can come back: its path, a 10-digit sequence suffix and the
    /// terminating zero (a fixed size cut long paths short).
    static func pathBufferSize(for path: String) -> Int { path.utf8.count + 16 }

    init(_ operations: [MultiOperation]) {
        self.operations = operations
        results = .allocate(capacity: operations.count)
        results.initialize(repeating: zoo_op_result_t(err: 0, value: nil, valuelen: 0, stat: nil), count: operations.count)
        pathBuffers = operations.map { operation in
            guard case .create(let path, _, _, _) = operation else { return nil }
            let size = Self.pathBufferSize(for: path)
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            buffer.initialize(repeating: 0, count: size)
            return buffer
        }
        stats = operations.map { operation in
            guard case .setData = operation else { return nil }
            let stat = UnsafeMutablePointer<CZooKeeper.Stat>.allocate(capacity: 1)
            stat.initialize(to: CZooKeeper.Stat())
            return stat
        }
    }

    deinit {
        results.deallocate()
        for buffer in pathBuffers { buffer?.deallocate() }
        for stat in stats { stat?.deallocate() }
    }

    /// Builds the `zoo_op_t` array with C copies of paths, data and ACLs valid during `body`.
    func withOperations<R>(_ body: (UnsafePointer<zoo_op_t>) -> R) -> R {
        var allocations: [UnsafeMutableRawPointer] = []
        func copy(_ string: String) -> UnsafeMutablePointer<CChar> {
            let pointer = strdup(string)!
            allocations.append(UnsafeMutableRawPointer(pointer))
            return pointer
        }
        func copy(_ bytes: [UInt8]) -> UnsafeMutablePointer<CChar> {
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
            bytes.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(pointer).copyMemory(from: base, byteCount: bytes.count) }
            }
            allocations.append(UnsafeMutableRawPointer(pointer))
            return pointer
        }
        func copy(_ acls: [ACL]) -> UnsafeMutablePointer<ACL_vector> {
            let entries = UnsafeMutablePointer<CZooKeeper.ACL>.allocate(capacity: acls.count)
            for (index, acl) in acls.enumerated() {
                entries[index] = CZooKeeper.ACL(perms: acl.permissions.rawValue, id: Id(scheme: copy(acl.scheme), id: copy(acl.id)))
            }
            let vector = UnsafeMutablePointer<ACL_vector>.allocate(capacity: 1)
            vector.initialize(to: ACL_vector(count: Int32(acls.count), data: entries))
            allocations.append(UnsafeMutableRawPointer(entries))
            allocations.append(UnsafeMutableRawPointer(vector))
            return vector
        }
        defer { for allocation in allocations { allocation.deallocate() } }

        let ops = UnsafeMutablePointer<zoo_op_t>.allocate(capacity: operations.count)
        defer { ops.deallocate() }
        for (index, operation) in operations.enumerated() {
            var op = zoo_op_t()
            switch operation {
            case .create(let path, let data, let mode, let acl):
                zoo_create_op_init(
                    &op, copy(path), copy(data), Int32(data.count), copy(acl), mode.cFlags,
                    pathBuffers[index], Int32(Self.pathBufferSize(for: path)))
            case .delete(let path, let version):
                zoo_delete_op_init(&op, copy(path), version ?? -1)
            case .setData(let path, let data, let version):
                zoo_set_op_init(&op, copy(path), copy(data), Int32(data.count), version ?? -1, stats[index])
            case .check(let path, let version):
                zoo_check_op_init(&op, copy(path), version ?? -1)
            }
            ops[index] = op
        }
        return body(ops)
    }

    func outcome(rc: Int32) -> Result<[MultiResult], ZooKeeperError> {
        if rc != ZOK.rawValue {
            // The failing operation carries its own code; the ones after it say "runtime inconsistency".
            for index in operations.indices {
                let err = results[index].err
                if err != ZOK.rawValue && err != ZRUNTIMEINCONSISTENCY.rawValue {
                    var error = ZooKeeperError(rawCode: err, path: operations[index].path)
                    error.failedOperationIndex = index
                    return .failure(error)
                }
            }
            return .failure(ZooKeeperError(rawCode: rc, path: nil))
        }
        return .success(operations.indices.map { index in
            switch operations[index] {
            case .create:
                return .created(path: pathBuffers[index].map { String(cString: $0) } ?? "")
            case .delete:
                return .deleted
            case .setData:
                return .dataSet(Stat(UnsafePointer(stats[index])))
            case .check:
                return .checked
            }
        })
    }
}

let multiCompletion: void_completion_t = { rc, data in
    CompletionThreadExecutor.deliveringCompletion {
        let box: RequestBox<[MultiResult]> = takeBox(data)
        guard let buffers = box.attachment as? MultiBuffers else {
            return box.fail(rawCode: rc == ZOK.rawValue ? ZSYSTEMERROR.rawValue : rc)
        }
        box.resume(buffers.outcome(rc: rc))
    }
}
