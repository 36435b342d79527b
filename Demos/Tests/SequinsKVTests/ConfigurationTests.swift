import DemoSupport
import Testing

@testable import SequinsKV

@Suite struct ConfigurationTests {
    @Test func anEmptyFileGivesSequinsDefaults() throws {
        let configuration = try SequinsConfiguration(toml: "")
        #expect(configuration == SequinsConfiguration())
        #expect(configuration.bind == "0.0.0.0:9599")
        #expect(configuration.localStore == "/var/sequins/")
        #expect(configuration.sharding.replication == 2)
        #expect(configuration.sharding.minReplication == 1)
        #expect(configuration.sharding.timeToConverge == .seconds(10))
        #expect(configuration.sharding.proxyTimeout == .milliseconds(100))
        #expect(configuration.sharding.effectiveProxyStageTimeout == .milliseconds(50))
        #expect(configuration.sharding.clusterName == "sequins")
        #expect(configuration.zk.servers == ["localhost:2181"])
        #expect(configuration.zk.sessionTimeout == .seconds(10))
    }

    @Test func readsEverySequinsSection() throws {
        let configuration = try SequinsConfiguration(
            toml: """
                source = "file:///data/sequins"
                bind = "127.0.0.1:9000"
                local_store = "/tmp/kv/"
                max_parallel_loads = 4
                throttle_loads = "5ms"
                refresh_period = "1m30s"
                require_success_file = true
                content_type = "application/json"

                [storage]
                compression = "none"
                block_size = 8192

                [s3]
                region = "us-west-2"

                [sharding]
                enabled = true
                replication = 3
                min_replication = 2
                max_replication = 4
                time_to_converge = "100ms"
                proxy_timeout = "600ms"
                proxy_stage_timeout = "200ms"
                cluster_name = "prod"
                advertised_hostname = "localhost"
                shard_id = "7"

                [zk]
                servers = ["zk1", "zk2:2182"]
                connect_timeout = "2s"
                session_timeout = "4s"

                [debug]
                bind = "localhost:6060"

                [test]
                upgrade_delay = "1s"
                allow_local_cluster = true
                version_remove_timeout = "5s"
                """)
        #expect(configuration.source == "file:///data/sequins")
        #expect(configuration.maxParallelLoads == 4)
        #expect(configuration.throttleLoads == .milliseconds(5))
        #expect(configuration.refreshPeriod == .seconds(90))
        #expect(configuration.requireSuccessFile)
        #expect(configuration.sharding.enabled)
        #expect(configuration.sharding.replication == 3)
        #expect(configuration.sharding.minReplication == 2)
        #expect(configuration.sharding.maxReplication == 4)
        #expect(configuration.sharding.timeToConverge == .milliseconds(100))
        #expect(configuration.sharding.effectiveProxyStageTimeout == .milliseconds(200))
        #expect(configuration.sharding.shardID == "7")
        #expect(configuration.zk.connectString == "zk1:2181,zk2:2182")
        #expect(configuration.zk.sessionTimeout == .seconds(4))
        #expect(configuration.test.effectiveVersionRemoveTimeout == .seconds(5))
        try configuration.validate()
    }

    @Test(arguments: [
        ("bogus = 1", "unknown configuration key bogus"),
        ("[sharding]\nreplicaton = 2", "unknown configuration key sharding.replicaton"),
        ("[zk]\nservers = \"zk1\"", "zk.servers must be an array of strings"),
        ("[sharding]\ntime_to_converge = \"ten seconds\"", "sharding.time_to_converge"),
        ("[sharding]\nreplication = \"two\"", "sharding.replication must be an integer"),
        ("source = [", "invalid TOML"),
    ])
    func badFilesNameTheKey(_ text: String, _ expected: String) {
        let error = #expect(throws: ConfigurationError.self) { try SequinsConfiguration(toml: text) }
        #expect(error?.description.contains(expected) == true, "\(error?.description ?? "no error")")
    }

    @Test func validationNamesTheInconsistentKey() throws {
        var configuration = SequinsConfiguration()
        configuration.source = "/data"
        configuration.localStore = "/var/kv"
        try configuration.validate()
        configuration.sharding.minReplication = 3
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        configuration.sharding.minReplication = 1
        configuration.localStore = "relative"
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        configuration.localStore = "/data/store"
        let error = #expect(throws: ConfigurationError.self) { try configuration.validate() }
        #expect(error?.description.contains("must not be inside the source") == true)
        configuration.localStore = "/var/kv"
        configuration.source = ""
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
    }

    @Test func goDurations() {
        #expect(GoDuration.parse("100ms") == .milliseconds(100))
        #expect(GoDuration.parse("1h2m3s") == .seconds(3723))
        #expect(GoDuration.parse("1.5s") == .milliseconds(1500))
        #expect(GoDuration.parse("0") == .zero)
        #expect(GoDuration.parse("10") == nil)
        #expect(GoDuration.parse("10 s") == nil)
        #expect(GoDuration.parse("") == nil)
    }
}
