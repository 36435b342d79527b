/// A canonical Huffman code over bytes, with codes of at most ``maxLength`` bits, so that a
/// value decodes with one table lookup per byte. A partition's values share one code, built from
/// their byte frequencies: text and JSON take about 60–70 % of their size, and a GET decodes only
/// its own value (sequins' Sparkey decompresses a whole 4 KiB block instead). Pure.
public struct HuffmanCode: Sendable, Hashable {
    public static let maxLength = 12

    /// Code length per byte value (0: the byte never occurs and has no code).
    public let lengths: [UInt8]
    /// Per byte: its code, right-aligned.
    private let codes: [UInt16]
    /// Per ``maxLength``-bit prefix: the byte it starts with, and that code's length (`symbol | length << 8`).
    private let table: [UInt16]

    /// The optimal code for `frequencies` (256 counts), limited to ``maxLength`` bits.
    public init(frequencies: [Int]) {
        precondition(frequencies.count == 256)
        self.init(validLengths: Self.limitedLengths(frequencies))
    }

    /// The code with these lengths (as stored); nil when they do not form a prefix code.
    public init?(lengths: [UInt8]) {
        guard lengths.count == 256, lengths.allSatisfy({ $0 <= Self.maxLength }) else { return nil }
        let kraft = lengths.reduce(0) { $0 + ($1 == 0 ? 0 : 1 << (Self.maxLength - Int($1))) }
        guard kraft <= 1 << Self.maxLength, kraft > 0 else { return nil }
        self.init(validLengths: lengths)
    }

    private init(validLengths lengths: [UInt8]) {
        self.lengths = lengths
        // Canonical codes: by length, then by byte value.
        var codes = [UInt16](repeating: 0, count: 256)
        var table = [UInt16](repeating: 0, count: 1 << Self.maxLength)
        var code = 0
        var previousLength = 0
        let order = (0..<256).filter { lengths[$0] > 0 }.sorted { (lengths[$0], $0) < (lengths[$1], $1) }
        for symbol in order {
            let length = Int(lengths[symbol])
            code <<= (length - previousLength)
            previousLength = length
            codes[symbol] = UInt16(code)
            let first = code << (Self.maxLength - length)
            let entry = UInt16(symbol) | UInt16(length) << 8
            for prefix in first..<(first + (1 << (Self.maxLength - length))) { table[prefix] = entry }
            code += 1
        }
        self.codes = codes
        self.table = table
    }

    /// How many bytes `bytes` take once encoded.
    public func encodedSize(_ frequencies: [Int]) -> Int {
        (zip(frequencies, lengths).reduce(0) { $0 + $1.0 * Int($1.1) } + 7) / 8
    }

    /// Appends `bytes` encoded (most significant bit first, the last byte padded with zeros).
    /// Every byte must have a code.
    public func encode(_ bytes: UnsafeRawBufferPointer, appendingTo output: inout [UInt8]) {
        var buffer: UInt64 = 0
        var bits = 0
        for byte in bytes {
            let length = Int(lengths[Int(byte)])
            precondition(length > 0, "byte \(byte) has no code")
            buffer = buffer << UInt64(length) | UInt64(codes[Int(byte)])
            bits += length
            while bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: buffer >> UInt64(bits)))
            }
        }
        if bits > 0 { output.append(UInt8(truncatingIfNeeded: buffer << UInt64(8 - bits))) }
    }

    /// Decodes `count` bytes from `encoded` into `output` (which holds at least `count` bytes).
    /// Returns false when `encoded` is too short or holds a prefix that is no code.
    public func decode(_ encoded: UnsafeRawBufferPointer, count: Int, into output: UnsafeMutableRawBufferPointer) -> Bool {
        var buffer: UInt64 = 0
        var bits = 0
        var next = 0
        for index in 0..<count {
            while bits < Self.maxLength {
                let byte: UInt64 = next < encoded.count ? UInt64(encoded[next]) : 0
                next += 1
                buffer = buffer << 8 | byte
                bits += 8
            }
            let entry = table[Int(truncatingIfNeeded: buffer >> UInt64(bits - Self.maxLength)) & ((1 << Self.maxLength) - 1)]
            let length = Int(entry >> 8)
            guard length > 0 else { return false }
            output[index] = UInt8(truncatingIfNeeded: entry)
            bits -= length
        }
        // Reading past the end is padding: it must not have been needed by a whole code.
        return (next - encoded.count) * 8 <= bits
    }

    /// Huffman code lengths for `frequencies`, limited to ``maxLength``: optimal lengths from the
    /// tree, then the longest ones cut to the limit and shorter ones lengthened (least frequent
    /// first) until the code is a prefix code again.
    static func limitedLengths(_ frequencies: [Int]) -> [UInt8] {
        var lengths = [UInt8](repeating: 0, count: 256)
        let used = (0..<256).filter { frequencies[$0] > 0 }
        if used.count == 1 {
            lengths[used[0]] = 1
            return lengths
        }
        guard !used.isEmpty else { return lengths }
        // The tree: repeatedly merge the two lightest nodes; a symbol's depth is its length.
        struct Node { var weight: Int; var symbols: [Int] }
        var nodes = used.map { Node(weight: frequencies[$0], symbols: [$0]) }
        var depth = [Int](repeating: 0, count: 256)
        while nodes.count > 1 {
            nodes.sort { $0.weight > $1.weight }
            let a = nodes.removeLast()
            let b = nodes.removeLast()
            for symbol in a.symbols + b.symbols { depth[symbol] += 1 }
            nodes.append(Node(weight: a.weight + b.weight, symbols: a.symbols + b.symbols))
        }
        let limit = maxLength
        for symbol in used { depth[symbol] = min(depth[symbol], limit) }
        var kraft = used.reduce(0) { $0 + (1 << (limit - depth[$1])) }
        // Too many short codes: lengthen the least frequent among the longest ones below the limit.
        let byRarity = used.sorted { (frequencies[$0], $0) < (frequencies[$1], $1) }
        while kraft > 1 << limit {
            let candidate = byRarity.filter { depth[$0] < limit }.max { depth[$0] < depth[$1] }!
            kraft -= 1 << (limit - depth[candidate] - 1)
            depth[candidate] += 1
        }
        for symbol in used { lengths[symbol] = UInt8(depth[symbol]) }
        return lengths
    }
}
