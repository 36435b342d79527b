/// One holder's advertisement of one partition of a version: the name of an ephemeral node under
/// the version's node, `<partition>@<holder>` with the partition zero-padded to five digits, for
/// example `00007@10.0.0.5:9599`. Pure.
///
/// The holder is whatever identifies a member to its peers (sequins uses its `host:port`, so a
/// node that lacks a partition knows where to proxy a request for it). The name carries it, so a
/// single children read tells who holds what.
public struct PartitionAdvertisement: Sendable, Hashable {
    /// The partition number.
    public var partition: Int
    /// Who holds it.
    public var holder: String

    /// An advertisement of `partition` by `holder`.
    /// - Precondition: `partition >= 0`.
    public init(partition: Int, holder: String) {
        precondition(partition >= 0, "a partition number is not negative")
        self.partition = partition
        self.holder = holder
    }

    /// Parses a node name; `nil` for a name that is not an advertisement.
    public init?(name: String) {
        guard let at = name.firstIndex(of: "@"), let partition = Int(name[..<at]), partition >= 0 else { return nil }
        self.partition = partition
        holder = String(name[name.index(after: at)...])
    }

    /// The node name: `00007@10.0.0.5:9599`.
    public var name: String {
        let digits = String(partition)
        return String(repeating: "0", count: max(0, 5 - digits.count)) + digits + "@" + holder
    }

    /// The partition number of an advertisement's node name, read without allocating.
    static func partition(ofName name: String) -> Int? {
        var value = 0
        var digits = 0
        for byte in name.utf8 {
            if byte == UInt8(ascii: "@") { return digits > 0 ? value : nil }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 18 else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return nil
    }
}
