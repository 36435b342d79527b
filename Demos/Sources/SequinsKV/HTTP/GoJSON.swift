/// JSON written as Go's `encoding/json` writes sequins' status structs, so that what operators
/// and scripts read is byte for byte sequins': struct fields in declaration order, map keys
/// sorted, `/` as it is, `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026`, a whole float32
/// without a fraction.
struct GoJSON {
    private(set) var text = ""

    mutating func string(_ value: String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case "<": text += "\\u003c"
            case ">": text += "\\u003e"
            case "&": text += "\\u0026"
            case "\u{2028}": text += "\\u2028"
            case "\u{2029}": text += "\\u2029"
            case let control where control.value < 0x20:
                let hex = String(control.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }

    mutating func raw(_ literal: String) { text += literal }

    mutating func float32(_ value: Double) {
        let single = Float(value)
        text += single == single.rounded() && abs(single) < 1e21 ? String(Int64(single)) : "\(single)"
    }

    /// `{"k1":…,"k2":…}` with the fields in the given order.
    mutating func object(_ fields: [(String, (inout GoJSON) -> Void)]) {
        text += "{"
        for (index, (name, write)) in fields.enumerated() {
            if index > 0 { text += "," }
            string(name)
            text += ":"
            write(&self)
        }
        text += "}"
    }

    /// A Go map: keys sorted.
    mutating func map<Value>(_ entries: [String: Value], _ write: (inout GoJSON, Value) -> Void) {
        text += "{"
        for (index, key) in entries.keys.sorted().enumerated() {
            if index > 0 { text += "," }
            string(key)
            text += ":"
            write(&self, entries[key]!)
        }
        text += "}"
    }
}

extension ClusterStatus {
    /// sequins' `status` struct as Go writes it: `dbs`, `shard_id`.
    var goJSON: String {
        var json = GoJSON()
        json.object([("dbs", { $0.map(dbs) { $0.write($1) } }), ("shard_id", { $0.string(shardID ?? "") })])
        return json.text
    }

    /// sequins' `/healthz` body (database → version → this node's status) as Go writes it.
    static func healthJSON(_ body: [String: [String: NodeVersionStatus]]) -> String {
        var json = GoJSON()
        json.map(body) { json, versions in json.map(versions) { $0.write($1) } }
        return json.text
    }
}

extension GoJSON {
    mutating func write(_ database: ClusterStatus.DatabaseStatus) {
        object([("versions", { $0.map(database.versions) { $0.write($1) } })])
    }

    mutating func write(_ version: ClusterStatus.VersionStatus) {
        object([
            ("path", { $0.string(version.path) }),
            ("num_partitions", { $0.raw(String(version.numPartitions)) }),
            ("target_replication", { $0.raw(String(version.targetReplication)) }),
            ("replication_histogram", { $0.map(version.replicationHistogram) { $0.raw(String($1)) } }),
            ("average_replication", { $0.float32(version.averageReplication) }),
            ("missing_partitions", { $0.raw(String(version.missingPartitions)) }),
            ("underreplicated_partitions", { $0.raw(String(version.underreplicatedPartitions)) }),
            ("overreplicated_partitions", { $0.raw(String(version.overreplicatedPartitions)) }),
            ("nodes", { $0.map(version.nodes) { $0.write($1) } }),
        ])
    }

    mutating func write(_ node: ClusterStatus.NodeVersionStatus) {
        object([
            ("name", { $0.string(node.name) }),
            ("created_at", { $0.string(node.createdAt) }),
            // Go's omitempty does not leave out a zero time.Time: it writes the zero time.
            ("active_at", { $0.string(node.activeAt ?? "0001-01-01T00:00:00Z") }),
            ("current", { $0.raw(node.current ? "true" : "false") }),
            ("state", { $0.string(node.state.rawValue) }),
            ("partitions", { $0.raw("[" + node.partitions.map(String.init).joined(separator: ",") + "]") }),
            ("shard_id", { $0.string(node.shardID ?? "") }),
        ])
    }
}
