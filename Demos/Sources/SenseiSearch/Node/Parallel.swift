import Foundation

/// Work spread over every core (parsing a batch, indexing partitions, reading segments back).
enum Parallel {
    /// `transform` of every element, computed on every core, in order. Few elements (up to 64)
    /// are handed out one at a time, so that uneven ones (segments of different sizes) balance;
    /// more are cut into two chunks per core.
    static func map<Element: Sendable, Output>(_ elements: [Element], _ transform: @Sendable (Element) -> Output) -> [Output] {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        guard elements.count > 1, cores > 1 else { return elements.map(transform) }
        let chunks = elements.count <= 64 ? elements.count : cores * 2
        return [Output](unsafeUninitializedCapacity: elements.count) { buffer, initialized in
            let output = UnsafeSendableBuffer(buffer.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let range = (elements.count * chunk / chunks)..<(elements.count * (chunk + 1) / chunks)
                for index in range { (output.base + index).initialize(to: transform(elements[index])) }
            }
            initialized = elements.count
        }
    }
}

/// A buffer the workers of ``Parallel/map(_:_:)`` fill at disjoint indices.
private struct UnsafeSendableBuffer<Element>: @unchecked Sendable {
    let base: UnsafeMutablePointer<Element>
    init(_ base: UnsafeMutablePointer<Element>) { self.base = base }
}
