import Synchronization

/// How many operations the coordinator's rounds carried (what `GET /admin/status` reports as
/// `cluster.commit.round.size`).
final class RoundStatistics: Sendable {
    /// Rounds by the number of operations they carried.
    private let rounds = Mutex<[Int: Int]>([:])

    func record(roundOf size: Int) {
        rounds.withLock { $0[size, default: 0] += 1 }
    }

    var summary: Summary { Summary(rounds: rounds.withLock { $0 }) }

    /// Count, mean and percentiles of the round sizes.
    struct Summary: Sendable, Hashable, Codable {
        var count = 0
        var operations = 0
        var mean = 0.0
        var p50 = 0
        var p99 = 0
        var max = 0

        init(rounds: [Int: Int]) {
            count = rounds.values.reduce(0, +)
            operations = rounds.reduce(0) { $0 + $1.key * $1.value }
            guard count > 0 else { return }
            mean = Double(operations) / Double(count)
            max = rounds.keys.max() ?? 0
            func percentile(_ fraction: Double) -> Int {
                let rank = Int((Double(count) * fraction).rounded(.up))
                var seen = 0
                for (size, number) in rounds.sorted(by: { $0.key < $1.key }) {
                    seen += number
                    if seen >= rank { return size }
                }
                return max
            }
            p50 = percentile(0.5)
            p99 = percentile(0.99)
        }
    }
}
