import Benchmark
import Coordination

/// The pure cores at the sizes issue 4 names: the assigner over 10k partitions and 1k members,
/// and the gate's bookkeeping over 100k advertisements. `swift package benchmark` in Benchmarks/.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .peakMemoryResident, .throughput],
        maxDuration: .seconds(5), maxIterations: 50)

    let members = (1...1000).map(String.init)
    let sequins = StaticPartitionAssigner(partitionCount: 10_000, replication: 3)
    let numeric = StaticPartitionAssigner(partitionCount: 10_000, replication: 3, strategy: .roundRobin(.numeric))
    let rendezvous = StaticPartitionAssigner(partitionCount: 10_000, replication: 3, strategy: .rendezvous)

    Benchmark("assigner sequins: one member's partitions (10k partitions × 1k members, R=3)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(sequins.partitions(for: "500", members: members))
        }
    }

    Benchmark("assigner sequins numeric order: one member's partitions (10k × 1k)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(numeric.partitions(for: "500", members: members))
        }
    }

    Benchmark("assigner sequins: one member with max_replication over 10k remote counts") { benchmark in
        let remote = Dictionary(uniqueKeysWithValues: (0..<10_000).map { ($0, $0 % 4) })
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(sequins.partitions(for: "500", members: members, maxReplication: 3, remoteHolders: remote))
        }
    }

    Benchmark("assigner rendezvous: one member's partitions (10k × 1k)", configuration: .init(maxIterations: 5)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(rendezvous.partitions(for: "500", members: members))
        }
    }

    let advertisements = (0..<100_000).map { PartitionAdvertisement(partition: $0 % 10_000, holder: "10.0.\($0 / 10_000).1:9599").name }

    Benchmark("gate: tally 100k advertisements over 10k partitions, then the ready check") { benchmark in
        for _ in benchmark.scaledIterations {
            let replication = PartitionReplication(advertisements: advertisements, partitionCount: 10_000)
            blackHole(replication.isReady(minReplication: 3))
        }
    }

    Benchmark("gate: missing partitions of a 10k-partition tally") { benchmark in
        let replication = PartitionReplication(advertisements: Array(advertisements.dropLast(5000)), partitionCount: 10_000)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(replication.missing(minReplication: 10))
        }
    }
}
