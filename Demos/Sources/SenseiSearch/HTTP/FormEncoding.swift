/// `application/x-www-form-urlencoded`, as Jetty's `getParameter` reads a query string or a form
/// body for Sensei: pairs split on `&`, the name from the value on the first `=`, `+` is a space
/// and `%XX` a byte; the bytes are UTF-8 (a malformed escape is kept as it is). Pure.
public enum FormEncoding {
    /// The pairs of `text`, in order (a name may repeat; a pair without `=` has an empty value).
    public static func decode(_ text: some StringProtocol) -> [(name: String, value: String)] {
        text.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            guard let equals = pair.firstIndex(of: "=") else { return (decodeComponent(pair), "") }
            return (decodeComponent(pair[..<equals]), decodeComponent(pair[pair.index(after: equals)...]))
        }
    }

    /// One name or value: `+` → space, `%XX` → the byte.
    public static func decodeComponent(_ text: some StringProtocol) -> String {
        let bytes = Array(text.utf8)
        guard bytes.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "%") }) else { return String(text) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
                index += 1
            } else if byte == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(byte)
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
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
