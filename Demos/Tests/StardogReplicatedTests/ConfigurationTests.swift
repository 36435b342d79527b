import Foundation
import Glibc
import Testing

@testable import StardogReplicated

@Suite struct ConfigurationTests {
    let minimal = "pack.enabled=true\npack.zookeeper.address=zk1:2181,zk2:2181\n"

    @Test func defaultsAreStardogs() throws {
        let configuration = try StardogConfiguration(properties: "pack.enabled=true\npack.zookeeper.address=127.0.0.1:2181,localhost:2182\n", directory: "/srv/stardog")
        #expect(configuration.zookeeperAddress == "127.0.0.1:2181,localhost:2182")
        #expect(configuration.joinRetryCount == 20)
        #expect(configuration.joinRetryDelay == .seconds(3))
        #expect(configuration.joinUnlockedAttempts == 3)
        #expect(!configuration.joinNeverLocks)
        #expect(configuration.zookeeperUser == "admin" && configuration.zookeeperPassword == "admin")
        #expect(configuration.httpPort == 5820)
        #expect(configuration.nodeAddress == "127.0.0.1:5820")
        #expect(configuration.home == "/srv/stardog")
    }

    @Test func everyKeyIsRead() throws {
        let text = minimal + """
            pack.node.address=10.0.0.7
            pack.zookeeper.auth=ops:pa:ss
            pack.node.join.retry.count=15
            pack.node.join.retry.delay=1m
            pack.node.join.unlocked.attempts=2
            pack.node.join.lock.never=TRUE
            pack.session.timeout=4s
            pack.connection.timeout=1500ms
            pack.node.commit.timeout=2.5s
            pack.cluster.name=prod-1
            stardog.home=data
            stardog.http.port=6000
            query.timeout=1h
            """
        let configuration = try StardogConfiguration(properties: text, directory: "/etc/stardog")
        #expect(configuration.nodeAddress == "10.0.0.7:6000")
        #expect(configuration.zookeeperUser == "ops" && configuration.zookeeperPassword == "pa:ss")
        #expect(configuration.joinRetryCount == 15 && configuration.joinRetryDelay == .seconds(60))
        #expect(configuration.joinUnlockedAttempts == 2 && configuration.joinNeverLocks)
        #expect(configuration.sessionTimeout == .seconds(4) && configuration.connectionTimeout == .milliseconds(1500))
        #expect(configuration.commitTimeout == .milliseconds(2500))
        #expect(configuration.clusterName == "prod-1")
        #expect(configuration.home == "/etc/stardog/data")
        #expect(configuration.ignoredKeys == ["query.timeout"])
    }

    @Test(arguments: [
        ("pack.enabled=true\npack.zookeeper.address=zk:2181\npack.node.join.retry.cuont=3\n", "unknown configuration key pack.node.join.retry.cuont"),
        ("pack.enabled=true\npack.zookeeper.address=zk:2181\nstardog.prot=1\n", "unknown configuration key stardog.prot"),
        ("pack.zookeeper.address=zk:2181\n", "pack.enabled must be true"),
        ("pack.enabled=yes\npack.zookeeper.address=zk:2181\n", "pack.enabled: 'yes' is not true or false"),
        ("pack.enabled=true\n", "pack.zookeeper.address is required"),
        ("pack.enabled=true\npack.zookeeper.address=zk:2181\npack.node.join.retry.delay=3\n", "pack.node.join.retry.delay: '3' is not a duration"),
        ("pack.enabled=true\npack.zookeeper.address=zk:2181\npack.node.join.retry.count=0\n", "pack.node.join.retry.count: '0' is not a whole number"),
        ("pack.enabled=true\npack.zookeeper.address=zk:2181\npack.zookeeper.auth=admin\n", "pack.zookeeper.auth: expected user:password"),
        ("pack.enabled=true\npack.zookeeper.address=zk:2181\nstardog.http.port=70000\n", "stardog.http.port: '70000'"),
        ("pack.enabled=true\npack.zookeeper.address=zk:2181\npack.cluster.name=a/b\n", "pack.cluster.name: 'a/b'"),
        ("pack.enabled=true\npack.zookeeper.address=zk:2181\npack.node.address=host:port\n", "pack.node.address: 'host:port'"),
        // Nodes on other machines than their ZooKeeper cannot all be 127.0.0.1.
        ("pack.enabled=true\npack.zookeeper.address=127.0.0.1:2181,192.0.2.7:2181\n", "pack.node.address is 127.0.0.1 (loopback) while ZooKeeper is at 192.0.2.7"),
        ("pack.enabled=true\npack.zookeeper.address=127.0.0.1:2181,zk2.invalid:2181\n", "pack.node.address is 127.0.0.1 (loopback) while ZooKeeper is at zk2.invalid"),
    ])
    func badSettingsNameTheProblem(text: String, message: String) {
        #expect {
            try StardogConfiguration(properties: text)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    /// Every node on one machine, with ZooKeeper named by that machine's own name or address
    /// rather than 127.0.0.1: nodes at 127.0.0.1 reach each other, so it is not refused.
    @Test func aZooKeeperOnThisMachineByItsNameAllowsLoopbackNodes() throws {
        var name = [CChar](repeating: 0, count: 256)
        try #require(gethostname(&name, name.count) == 0)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(StardogConfiguration.isThisMachine("127.0.0.1") && !StardogConfiguration.isThisMachine("192.0.2.7"))
        var resolved: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, nil, &resolved) == 0 else {
            print("this machine's name \(host) does not resolve here: only its addresses are checked")
            return
        }
        freeaddrinfo(resolved)
        _ = try StardogConfiguration(properties: "pack.enabled=true\npack.zookeeper.address=\(host):2181\n")
        #expect(StardogConfiguration.isThisMachine(host))
    }

    @Test func databaseNamesFollowStardogsRules() throws {
        for good in ["db", "People_2", "a-b"] { try DatabaseName.validate(good) }
        for bad in ["", "9lives", "has space", "admin", "Transaction", "é", String(repeating: "a", count: 65), "a/b"] {
            #expect(throws: ReplicatedError.self, "\(bad)") { try DatabaseName.validate(bad) }
        }
    }
}
