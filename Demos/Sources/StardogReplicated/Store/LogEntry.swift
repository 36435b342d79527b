extension LocalStore {
    /// One line of a database's `tx.log`: a committed transaction as JSON,
    /// `{"seq":…,"txId":"…","add":"…","remove":"…"}`.
    struct LogEntry: Codable, Hashable {
        var seq: Int
        var txId: String
        var add: String
        var remove: String

        /// Appends the entry as one JSON line (what `JSONDecoder` reads back). Written by hand:
        /// every member writes a line per transaction, and `JSONEncoder` took a tenth of a
        /// member's CPU for it.
        func appendLine(to line: inout [UInt8]) {
            line.append(contentsOf: #"{"seq":"#.utf8)
            line.append(contentsOf: String(seq).utf8)
            for (key, value) in [(#","txId":"#, txId), (#","add":"#, add), (#","remove":"#, remove)] {
                line.append(contentsOf: key.utf8)
                Self.appendJSONString(value, to: &line)
            }
            line.append(contentsOf: "}\n".utf8)
        }

        /// `text` as a JSON string: quoted, with `"`, `\` and control characters escaped (other
        /// characters, non-ASCII included, as their UTF-8 bytes). The runs between escapes are
        /// copied whole.
        static func appendJSONString(_ text: String, to line: inout [UInt8]) {
            line.append(UInt8(ascii: "\""))
            var text = text
            text.withUTF8 { bytes in
                var run = 0
                for index in bytes.indices {
                    let byte = bytes[index]
                    guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                    line.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<index]))
                    run = index + 1
                    switch byte {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                        line.append(UInt8(ascii: "\\"))
                        line.append(byte)
                    case UInt8(ascii: "\n"): line.append(contentsOf: #"\n"#.utf8)
                    case UInt8(ascii: "\r"): line.append(contentsOf: #"\r"#.utf8)
                    case UInt8(ascii: "\t"): line.append(contentsOf: #"\t"#.utf8)
                    default:
                        let hex = Array("0123456789abcdef".utf8)
                        line.append(contentsOf: #"\u00"#.utf8)
                        line.append(hex[Int(byte >> 4)])
                        line.append(hex[Int(byte & 0xf)])
                    }
                }
                line.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run...]))
            }
            line.append(UInt8(ascii: "\""))
        }
    }
}
