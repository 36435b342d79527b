/// Snappy decompression, for SequenceFiles written with Hadoop's `SnappyCodec` (which sequins
/// reads): Hadoop frames the raw Snappy format in blocks (`BlockCompressorStream`): a 4-byte
/// big-endian uncompressed length, then 4-byte big-endian lengths each followed by one raw Snappy
/// chunk, until that many bytes have come out; blocks follow each other to the end of the data.
/// Pure; every malformed input is an error naming what is wrong, never a crash.
enum Snappy {
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// Decodes Hadoop's block framing of Snappy chunks.
    static func decompressHadoopBlocks(_ input: UnsafeRawBufferPointer) throws(Malformed) -> [UInt8] {
        var output: [UInt8] = []
        var cursor = 0
        while cursor < input.count {
            let blockLength = try readBigEndian32(input, at: &cursor)
            // A length is data, not a promise: memory is reserved only for what the rest of the
            // input can decode to (a raw Snappy chunk expands at most about 32 times).
            guard blockLength <= (input.count - cursor) * Self.maxExpansion else {
                throw Malformed(description: "a Snappy block claims \(blockLength) bytes from \(input.count - cursor) bytes of input")
            }
            let blockEnd = output.count + blockLength
            output.reserveCapacity(blockEnd)
            while output.count < blockEnd {
                let chunkLength = try readBigEndian32(input, at: &cursor)
                guard chunkLength <= input.count - cursor else { throw Malformed(description: "a Snappy chunk runs past the end of the data") }
                try decompressRaw(UnsafeRawBufferPointer(rebasing: input[cursor..<(cursor + chunkLength)]), appendingTo: &output)
                cursor += chunkLength
            }
            guard output.count == blockEnd else { throw Malformed(description: "a Snappy block decodes to more bytes than its header says") }
        }
        return output
    }

    /// Decodes one raw Snappy chunk (varint length, then literals and copies) onto `output`.
    static func decompressRaw(_ input: UnsafeRawBufferPointer, appendingTo output: inout [UInt8]) throws(Malformed) {
        var cursor = 0
        let length = try readVarint(input, at: &cursor)
        guard length <= input.count * Self.maxExpansion else {
            throw Malformed(description: "a Snappy chunk claims \(length) bytes from \(input.count) bytes")
        }
        let start = output.count
        let end = start + length
        output.reserveCapacity(end)
        while cursor < input.count {
            let tag = input[cursor]
            cursor += 1
            switch tag & 0x03 {
            case 0:  // literal
                var literalLength = Int(tag >> 2)
                if literalLength >= 60 {
                    let extra = literalLength - 59
                    guard cursor + extra <= input.count else { throw Malformed(description: "a literal's length is cut off") }
                    literalLength = 0
                    for index in 0..<extra { literalLength |= Int(input[cursor + index]) << (8 * index) }
                    cursor += extra
                }
                literalLength += 1
                guard literalLength <= input.count - cursor, output.count + literalLength <= end else {
                    throw Malformed(description: "a literal runs past the end")
                }
                output.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[cursor..<(cursor + literalLength)]))
                cursor += literalLength
            case 1:  // copy, 1-byte offset
                guard cursor < input.count else { throw Malformed(description: "a copy is cut off") }
                let copyLength = Int((tag >> 2) & 0x07) + 4
                let offset = Int(tag >> 5) << 8 | Int(input[cursor])
                cursor += 1
                try copy(offset: offset, length: copyLength, chunkStart: start, end: end, output: &output)
            case 2:  // copy, 2-byte offset
                guard cursor + 2 <= input.count else { throw Malformed(description: "a copy is cut off") }
                let offset = Int(input[cursor]) | Int(input[cursor + 1]) << 8
                cursor += 2
                try copy(offset: offset, length: Int(tag >> 2) + 1, chunkStart: start, end: end, output: &output)
            default:  // copy, 4-byte offset
                guard cursor + 4 <= input.count else { throw Malformed(description: "a copy is cut off") }
                var offset = 0
                for index in 0..<4 { offset |= Int(input[cursor + index]) << (8 * index) }
                cursor += 4
                try copy(offset: offset, length: Int(tag >> 2) + 1, chunkStart: start, end: end, output: &output)
            }
        }
        guard output.count == end else { throw Malformed(description: "a chunk decodes to \(output.count - start) bytes, its header says \(length)") }
    }

    /// Appends `length` bytes copied from `offset` back (overlapping copies repeat a pattern).
    private static func copy(offset: Int, length: Int, chunkStart: Int, end: Int, output: inout [UInt8]) throws(Malformed) {
        guard offset > 0, offset <= output.count - chunkStart else { throw Malformed(description: "a copy refers to before the start") }
        guard output.count + length <= end else { throw Malformed(description: "a copy runs past the end") }
        let from = output.count - offset
        for index in 0..<length { output.append(output[from + index]) }
    }

    /// The most a raw Snappy chunk can expand: a 3-byte copy yields at most 64 bytes.
    static let maxExpansion = 32

    private static func readVarint(_ input: UnsafeRawBufferPointer, at cursor: inout Int) throws(Malformed) -> Int {
        var value = 0
        var shift = 0
        while cursor < input.count, shift <= 28 {
            let byte = input[cursor]
            cursor += 1
            value |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        throw Malformed(description: "the uncompressed length is malformed")
    }

    private static func readBigEndian32(_ input: UnsafeRawBufferPointer, at cursor: inout Int) throws(Malformed) -> Int {
        guard cursor + 4 <= input.count else { throw Malformed(description: "a block or chunk length is cut off") }
        let value = Int(input[cursor]) << 24 | Int(input[cursor + 1]) << 16 | Int(input[cursor + 2]) << 8 | Int(input[cursor + 3])
        cursor += 4
        return value
    }
}

extension Snappy {
    /// Compresses `input` as one Hadoop block of one raw Snappy chunk (what `SnappyCodec` writes
    /// for a buffer; sequins reads one block per compressed section).
    static func compressHadoopBlock(_ input: [UInt8]) -> [UInt8] {
        guard !input.isEmpty else { return [] }  // as Hadoop: no block for nothing
        let chunk = compressRaw(input)
        var output: [UInt8] = []
        output.reserveCapacity(chunk.count + 8)
        appendBigEndian32(input.count, to: &output)
        appendBigEndian32(chunk.count, to: &output)
        output += chunk
        return output
    }

    /// A plain greedy Snappy compressor: a hash of 4 bytes finds an earlier occurrence within
    /// 64 KiB, which becomes a copy; the rest are literals. Valid Snappy, if not the tightest.
    static func compressRaw(_ input: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(input.count + input.count / 6 + 8)
        var length = input.count
        while length >= 0x80 {
            output.append(UInt8(length & 0x7F) | 0x80)
            length >>= 7
        }
        output.append(UInt8(length))
        let tableBits = 14
        var table = [Int](repeating: -1, count: 1 << tableBits)
        func load32(_ index: Int) -> UInt32 {
            UInt32(input[index]) | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2]) << 16 | UInt32(input[index + 3]) << 24
        }
        var index = 0
        var literalStart = 0
        while index + 4 <= input.count {
            let word = load32(index)
            let slot = Int((word &* 0x1E35_A7BD) >> UInt32(32 - tableBits))
            let candidate = table[slot]
            table[slot] = index
            guard candidate >= 0, index - candidate <= 0xFFFF, load32(candidate) == word else {
                index += 1
                continue
            }
            appendLiteral(input[literalStart..<index], to: &output)
            var matched = 4
            while index + matched < input.count, matched < 64, input[candidate + matched] == input[index + matched] { matched += 1 }
            let offset = index - candidate
            output.append(UInt8((matched - 1) << 2) | 0x02)
            output.append(UInt8(offset & 0xFF))
            output.append(UInt8(offset >> 8))
            index += matched
            literalStart = index
        }
        appendLiteral(input[literalStart...], to: &output)
        return output
    }

    private static func appendLiteral(_ bytes: ArraySlice<UInt8>, to output: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        let lengthMinusOne = bytes.count - 1
        if lengthMinusOne < 60 {
            output.append(UInt8(lengthMinusOne << 2))
        } else {
            var extra: [UInt8] = []
            var value = lengthMinusOne
            while value > 0 {
                extra.append(UInt8(value & 0xFF))
                value >>= 8
            }
            output.append(UInt8((59 + extra.count) << 2))
            output += extra
        }
        output += bytes
    }

    private static func appendBigEndian32(_ value: Int, to output: inout [UInt8]) {
        output += [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
}
