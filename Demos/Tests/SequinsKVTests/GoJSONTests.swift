import Testing

@testable import SequinsKV

/// The status documents as sequins (Go's encoding/json) writes them, byte for byte.
@Suite struct GoJSONTests {
    @Test func theStatusIsWrittenAsGoWritesIt() {
        let node = ClusterStatus.NodeVersionStatus(
            name: "10.0.0.1:9599", createdAt: "2026-12-06T19:00:00Z", activeAt: nil, current: true, state: .active,
            partitions: [0, 2], shardID: "1")
        let version = ClusterStatus.VersionStatus(
            path: "hdfs://namenode/data/<db>&x/v1", numPartitions: 3, targetReplication: 2, replicationHistogram: ["1": 2, "0": 1],
            averageReplication: 2.0 / 3.0, missingPartitions: 1, underreplicatedPartitions: 2, overreplicatedPartitions: 0,
            nodes: ["10.0.0.1:9599": node])
        let status = ClusterStatus(dbs: ["b": .init(versions: ["v1": version]), "a": .init(versions: [:])], shardID: nil)
        #expect(status.goJSON == #"""
            {"dbs":{"a":{"versions":{}},"b":{"versions":{"v1":{"path":"hdfs://namenode/data/\u003cdb\u003e\u0026x/v1","num_partitions":3,"target_replication":2,"replication_histogram":{"0":1,"1":2},"average_replication":0.6666667,"missing_partitions":1,"underreplicated_partitions":2,"overreplicated_partitions":0,"nodes":{"10.0.0.1:9599":{"name":"10.0.0.1:9599","created_at":"2026-12-06T19:00:00Z","active_at":"0001-01-01T00:00:00Z","current":true,"state":"ACTIVE","partitions":[0,2],"shard_id":"1"}}}}}},"shard_id":""}
            """#)
        var whole = version
        whole.averageReplication = 2
        var json = GoJSON()
        json.write(whole)
        #expect(json.text.contains(#""average_replication":2,"#), "a whole float32 has no fraction in Go")
        #expect(ClusterStatus.healthJSON(["db": ["v1": node]]).hasPrefix(#"{"db":{"v1":{"name":"10.0.0.1:9599","#))
    }

    @Test func stringsAreEscapedAsGoEscapesThem() {
        var json = GoJSON()
        json.string("a\"b\\c\n\u{1}</>&\u{2028}é")
        #expect(json.text == #""a\"b\\c\n\u0001\u003c/\u003e\u0026\u2028é""#)
    }
}
