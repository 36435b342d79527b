import Crypto

/// Which partition a document belongs to.
public enum ShardingStrategy: Sendable, Hashable {
    /// Sensei's default `FieldModShardingStrategy`: `abs(uid) % partitionCount` (uids are integers).
    case uidModulo
    /// For uids that are not integers: the first 8 bytes of the uid's MD5, big-endian, modulo.
    case uidHash

    init?(configurationValue: String) {
        switch configurationValue.lowercased() {
        case "mod", "modulo", "com.senseidb.indexing.shardingstrategy$fieldmodshardingstrategy", "fieldmodshardingstrategy": self = .uidModulo
        case "hash": self = .uidHash
        default: return nil
        }
    }

    /// The partition of a document whose uid is `uid` (its JSON text for a string uid).
    /// - Returns: nil when the modulo strategy meets a uid that is not an integer.
    public func partition(uid: String, partitionCount: Int) -> Int? {
        precondition(partitionCount > 0)
        switch self {
        case .uidModulo:
            guard let value = Int64(uid) else { return nil }
            // Math.abs(Long.MIN_VALUE) is negative in Java; the magnitude is what Sensei meant.
            return Int(value.magnitude % UInt64(partitionCount))
        case .uidHash:
            let digest = Array(Insecure.MD5.hash(data: Array(uid.utf8)))
            let value = digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return Int(value % UInt64(partitionCount))
        }
    }
}
