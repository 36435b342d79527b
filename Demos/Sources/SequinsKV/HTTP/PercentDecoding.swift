/// Percent-decoding to raw bytes (keys are bytes, not necessarily UTF-8: `%00%00%00%2A`).
enum PercentDecoding {
    /// Decodes `%XX` escapes; a malformed escape is kept as is.
    static func decode(_ text: some StringProtocol) -> [UInt8] {
        decode(Array(text.utf8))
    }

    /// Decodes `%XX` escapes in UTF-8 bytes; a malformed escape is kept as is.
    static func decode<Bytes: Collection<UInt8>>(_ input: Bytes) -> [UInt8] {
        guard input.contains(UInt8(ascii: "%")) else { return Array(input) }
        let bytes = Array(input)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
