import Synchronization

/// How many operations each batch carried: the rounds a coordinator ran, or the requests in which
/// a member forwarded operations to the coordinator (what `GET /admin/status` reports as
/// `cluster.commit.round.size` and `cluster.forward.batch.size`).
final class BatchSizes: Sendable {
    /// Batches by the number of operations they carried.
    private let batches = Mutex<[Int: Int]>([:])

    func record(batchOf size: Int) {
        batches.withLock { $0[size, default: 0] += 1 }
    }

    var summary: Summary { Summary(batches: batches.withLock { $0 }) }

    /// Count, mean and percentiles of the batch sizes.
    struct Summary: Sendable, Hashable, Codable {
        var count = 0
        var operations = 0
        var mean = 0.0
        var p50 = 0
        var p99 = 0
        var max = 0

        init(batches: [Int: Int]) {
            count = batches.values.reduce(0, +)
            operations = batches.reduce(0) { $0 + $1.key * $1.value }
            guard count > 0 else { return }
            mean = Double(operations) / Double(count)
            max = batches.keys.max() ?? 0
            func percentile(_ fraction: Double) -> Int {
                let rank = Int((Double(count) * fraction).rounded(.up))
                var seen = 0
                for (size, number) in batches.sorted(by: { $0.key < $1.key }) {
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
