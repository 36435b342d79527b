/// Which adjacent segments of a partition to merge, from their document counts alone (a pure
/// function), as Lucene's log merge policy: a segment's level is the power of `factor` its size
/// reaches (1–9 documents: level 0, 10–99: level 1, … for a factor of 10), and when `factor`
/// adjacent segments share a level they are merged into one of a higher level. Without deletions
/// each document is rewritten at most once per level, so about log(`factor`, documents) times,
/// whether batches are large or arrive one document at a time. Should deletions leave the levels
/// out of order so that segments pile up past `maxSegments`, the `factor` adjacent segments with
/// the fewest documents together are merged instead.
public struct MergePolicy: Sendable, Hashable {
    public var factor: Int
    public var maxSegments: Int

    public init(factor: Int = 10, maxSegments: Int? = nil) {
        precondition(factor >= 2)
        self.factor = factor
        self.maxSegments = max(maxSegments ?? 4 * factor, 1)
    }

    /// The level of a segment of `documents` documents: the largest `n` with `factor`ⁿ ≤ documents.
    public func level(_ documents: Int) -> Int {
        var level = 0
        var bound = factor
        while documents >= bound {
            level += 1
            let (next, overflow) = bound.multipliedReportingOverflow(by: factor)
            if overflow { break }
            bound = next
        }
        return level
    }

    /// The adjacent segments (indices into `counts`, oldest first) to merge next, or nil.
    public func nextMerge(counts: [Int]) -> Range<Int>? {
        // The lowest level with `factor` adjacent segments: the cheapest merge first.
        var best: (level: Int, range: Range<Int>)?
        var start = 0
        while start < counts.count {
            let level = level(counts[start])
            var end = start + 1
            while end < counts.count && self.level(counts[end]) == level { end += 1 }
            if end - start >= factor, best.map({ level < $0.level }) ?? true { best = (level, start..<(start + factor)) }
            start = end
        }
        if let best { return best.range }
        guard counts.count > maxSegments else { return nil }
        let width = min(factor, counts.count)
        var smallest = 0
        var smallestSize = Int.max
        for start in 0...(counts.count - width) {
            let size = counts[start..<(start + width)].reduce(0, +)
            if size < smallestSize { (smallest, smallestSize) = (start, size) }
        }
        return smallest..<(smallest + width)
    }
}
