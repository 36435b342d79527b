/// The queue of contenders under a lock, election or semaphore node, and the decision a
/// contender takes from it. Pure: children names in, a decision out.
///
/// Contender nodes are named as Apache Curator names them, so that Swift and Java processes can
/// share one lock: `_c_<uuid>-<lock name><10-digit sequence>`, where the lock name is `lock-`
/// (Curator's `InterProcessMutex` and `LeaderSelector`), `latch-` (`LeaderLatch`), `__READ__` and
/// `__WRIT__` (`InterProcessReadWriteLock`) or `lease-` (`InterProcessSemaphoreV2`). The protection
/// prefix `_c_<uuid>-` makes a create whose reply was lost findable again; nodes without it
/// (`lock-0000000003`) are contenders too. Contenders are ordered by the sequence the server
/// appended, whatever their lock name, as Curator orders them.
package enum LockQueue {
    package typealias Kind = DistributedLock.Kind

    /// The lock names this library and Curator use, and the kind of contender each is.
    package static let lockNames: [(name: String, kind: Kind)] = [
        ("__WRIT__", .write), ("__READ__", .read), ("lock-", .exclusive), ("latch-", .exclusive), ("lease-", .exclusive),
    ]

    private static let lockNameBytes: [(bytes: [UInt8], kind: Kind)] = lockNames.map { (Array($0.name.utf8), $0.kind) }

    /// One node of the queue.
    package struct Contender: Sendable, Hashable {
        package var name: String
        package var sequence: Int64
        package var kind: Kind
        /// The protection id in the name (`_c_<id>-`), if it has one.
        package var guid: String?
    }

    /// What a contender does next.
    package enum Decision: Sendable, Hashable {
        /// It holds the lock (or one of the leases, or leads).
        case acquired
        /// It waits for this node to go.
        case wait(for: String)
        /// Its own node is not in the queue (deleted, or its session expired).
        case missing
    }

    /// Parses a contender node name; `nil` for a name that is not a contender (no known lock
    /// name followed by a sequence).
    ///
    /// Every contender parses the whole queue on every children read, so this works on the name's
    /// UTF-8 bytes (all the markers are ASCII) rather than through Foundation's string search.
    package static func parse(_ name: String) -> Contender? {
        var utf8 = name
        return utf8.withUTF8 { bytes in
            for (marker, kind) in lockNameBytes {
                guard let start = lastOccurrence(of: marker, in: bytes) else { continue }
                let sequenceBytes = UnsafeBufferPointer(rebasing: bytes[(start + marker.count)...])
                // The server's 10 digits (a wrapped counter is negative: "-2147483647").
                guard sequenceBytes.count >= 10, let sequence = Int64(String(decoding: sequenceBytes, as: UTF8.self)) else { continue }
                var guid: String?
                let head = UnsafeBufferPointer(rebasing: bytes[..<start])
                if head.count > 4, head.starts(with: "_c_".utf8), head.last == UInt8(ascii: "-") {
                    guid = String(decoding: UnsafeBufferPointer(rebasing: head[3..<(head.count - 1)]), as: UTF8.self)
                }
                return Contender(name: name, sequence: sequence, kind: kind, guid: guid)
            }
            return nil
        }
    }

    /// Where the last occurrence of `marker` starts in `bytes`.
    private static func lastOccurrence(of marker: [UInt8], in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard bytes.count >= marker.count else { return nil }
        var start = bytes.count - marker.count
        while start >= 0 {
            if bytes[start] == marker[0], bytes[start..<(start + marker.count)].elementsEqual(marker) { return start }
            start -= 1
        }
        return nil
    }

    /// The contenders among `children`, in queue order.
    package static func queue(_ children: [String]) -> [Contender] {
        children.compactMap(parse).sorted { ($0.sequence, $0.name) < ($1.sequence, $1.name) }
    }

    /// Decides for the contender named `ours`, as Curator's recipes decide:
    /// - exclusive: it holds when fewer than `maxHolders` contenders are ahead of it, else it
    ///   waits for the one `maxHolders` places ahead;
    /// - write: it holds when it is first of all, else it waits for the one just ahead;
    /// - read: it holds when no writer is ahead of it, else it waits for the first writer.
    package static func decide(children: [String], ours: String, maxHolders: Int = 1) -> Decision {
        let queue = queue(children)
        guard let index = queue.firstIndex(where: { $0.name == ours }) else { return .missing }
        switch queue[index].kind {
        case .exclusive:
            return index < maxHolders ? .acquired : .wait(for: queue[index - maxHolders].name)
        case .write:
            return index == 0 ? .acquired : .wait(for: queue[index - 1].name)
        case .read:
            guard let writer = queue[..<index].first(where: { $0.kind == .write }) else { return .acquired }
            return .wait(for: writer.name)
        }
    }

    /// The node name prefix for a contender (the server appends the sequence): `_c_<guid>-<lock name>`.
    package static func prefix(guid: String, lockName: String) -> String {
        "_c_\(guid)-\(lockName)"
    }

    /// The contender created with `guid`, if it is among `children` (to recover a create whose
    /// reply was lost).
    package static func find(guid: String, in children: [String]) -> String? {
        children.first { $0.hasPrefix("_c_\(guid)-") }
    }
}

extension DistributedLock.Kind {
    /// The lock name of the kind's contender nodes (Curator's).
    var lockName: String {
        switch self {
        case .exclusive: return "lock-"
        case .read: return "__READ__"
        case .write: return "__WRIT__"
        }
    }
}
