/// The `Content-Type` sequins' answers carry: sequins sets none, so Go's `net/http` sniffs one
/// from the first 512 bytes of the value with the WHATWG MIME-sniffing rules (`text/plain;
/// charset=utf-8` for text, `application/octet-stream` for binary, a few recognised formats).
/// This is the same rule, with the signature table of the Go release sequins is built with here
/// (Debian's 1.19). sequins' own `content_type` setting has never been read by its code.
public enum ContentSniffing {
    /// How many leading bytes decide.
    public static let sniffLength = 512

    /// The content type of a value that starts with `bytes`. Pure; looks at `sniffLength` bytes at most.
    public static func contentType(of bytes: UnsafeRawBufferPointer) -> String {
        let data = UnsafeRawBufferPointer(rebasing: bytes.prefix(sniffLength))
        var firstNonWhitespace = 0
        while firstNonWhitespace < data.count, isWhitespace(data[firstNonWhitespace]) { firstNonWhitespace += 1 }
        // Only the signatures that can match this first byte (and the tags, after a '<'), in table order.
        let byFirstByte = data.isEmpty ? candidates.unanchored : candidates.byFirstByte[Int(data[0])]
        let tags = firstNonWhitespace < data.count && data[firstNonWhitespace] == UInt8(ascii: "<") ? candidates.afterLessThan : []
        var (next, nextTag) = (0, 0)
        while next < byFirstByte.count || nextTag < tags.count {
            let index: Int
            if nextTag >= tags.count || (next < byFirstByte.count && byFirstByte[next] < tags[nextTag]) {
                index = byFirstByte[next]
                next += 1
            } else {
                index = tags[nextTag]
                nextTag += 1
            }
            if let type = signatures[index].match(data, firstNonWhitespace: firstNonWhitespace) { return type }
        }
        return "application/octet-stream"
    }

    /// Indices into ``signatures`` worth trying, by the data's first byte.
    struct Candidates: Sendable {
        /// Per first byte: the signatures anchored on that byte, those anchored on none, and text.
        var byFirstByte: [[Int]]
        /// The signatures anchored on no first byte (and text).
        var unanchored: [Int]
        /// The tags (HTML, `<?xml`) that start at the first byte that is not whitespace.
        var afterLessThan: [Int]
    }

    static let candidates: Candidates = {
        var unanchored: [Int] = []
        var afterLessThan: [Int] = []
        var anchored: [(index: Int, byte: UInt8)] = []
        for (index, signature) in signatures.enumerated() {
            switch signature {
            case .html: afterLessThan.append(index)
            case .masked(_, _, true, _): afterLessThan.append(index)
            case .masked(let mask, let pattern, false, _) where mask[0] == 0xFF: anchored.append((index, pattern[0]))
            case .exact(let prefix, _): anchored.append((index, prefix[0]))
            default: unanchored.append(index)
            }
        }
        let byFirstByte = (0..<256).map { byte in
            (anchored.filter { $0.byte == UInt8(byte) }.map(\.index) + unanchored).sorted()
        }
        return Candidates(byFirstByte: byFirstByte, unanchored: unanchored, afterLessThan: afterLessThan)
    }()

    /// The content type of `bytes` (see ``contentType(of:)-(UnsafeRawBufferPointer)``).
    public static func contentType(of bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { contentType(of: $0) }
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x09 || byte == 0x0A || byte == 0x0C || byte == 0x0D || byte == 0x20
    }

    enum Signature: Sendable {
        /// An HTML tag, case-insensitive, after leading whitespace, followed by a space or `>`.
        case html([UInt8])
        /// `data[i] & mask[i] == pattern[i]` for every i (after leading whitespace if `skipWhitespace`).
        case masked(mask: [UInt8], pattern: [UInt8], skipWhitespace: Bool, type: String)
        /// A prefix of the data.
        case exact([UInt8], type: String)
        /// An ISO base media file whose `ftyp` box names an `mp4` brand.
        case mp4
        /// No binary byte after leading whitespace.
        case text

        func match(_ data: UnsafeRawBufferPointer, firstNonWhitespace: Int) -> String? {
            switch self {
            case .html(let tag):
                let rest = UnsafeRawBufferPointer(rebasing: data[firstNonWhitespace...])
                guard rest.count >= tag.count + 1 else { return nil }
                for (index, expected) in tag.enumerated() {
                    var byte = rest[index]
                    if expected >= UInt8(ascii: "A") && expected <= UInt8(ascii: "Z") { byte &= 0xDF }
                    if byte != expected { return nil }
                }
                let terminator = rest[tag.count]
                return terminator == UInt8(ascii: " ") || terminator == UInt8(ascii: ">") ? "text/html; charset=utf-8" : nil
            case .masked(let mask, let pattern, let skipWhitespace, let type):
                let rest = skipWhitespace ? UnsafeRawBufferPointer(rebasing: data[firstNonWhitespace...]) : data
                guard rest.count >= mask.count else { return nil }
                for index in mask.indices where rest[index] & mask[index] != pattern[index] { return nil }
                return type
            case .exact(let prefix, let type):
                guard data.count >= prefix.count else { return nil }
                for index in prefix.indices where data[index] != prefix[index] { return nil }
                return type
            case .mp4:
                guard data.count >= 12 else { return nil }
                let boxSize = Int(data[0]) << 24 | Int(data[1]) << 16 | Int(data[2]) << 8 | Int(data[3])
                guard boxSize % 4 == 0, data.count >= boxSize, data[4] == 0x66, data[5] == 0x74, data[6] == 0x79, data[7] == 0x70 else {
                    return nil
                }
                var start = 8
                while start < boxSize {
                    // Bytes 12..<16 are the minor version, not a brand.
                    if start != 12, data[start] == 0x6D, data[start + 1] == 0x70, data[start + 2] == 0x34 { return "video/mp4" }
                    start += 4
                }
                return nil
            case .text:
                for byte in data[firstNonWhitespace...] {
                    if byte <= 0x08 || byte == 0x0B || (0x0E...0x1A).contains(byte) || (0x1C...0x1F).contains(byte) { return nil }
                }
                return "text/plain; charset=utf-8"
            }
        }
    }

    private static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// In the order they are tried; text last.
    static let signatures: [Signature] = {
        let htmlTags = [
            "<!DOCTYPE HTML", "<HTML", "<HEAD", "<SCRIPT", "<IFRAME", "<H1", "<DIV", "<FONT", "<TABLE", "<A", "<STYLE", "<TITLE", "<B",
            "<BODY", "<BR", "<P", "<!--",
        ]
        var signatures = htmlTags.map { Signature.html(bytes($0)) }
        signatures += [
            .masked(mask: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF], pattern: bytes("<?xml"), skipWhitespace: true, type: "text/xml; charset=utf-8"),
            .exact(bytes("%PDF-"), type: "application/pdf"),
            .exact(bytes("%!PS-Adobe-"), type: "application/postscript"),
            // Byte order marks.
            .masked(mask: [0xFF, 0xFF, 0x00, 0x00], pattern: [0xFE, 0xFF, 0x00, 0x00], skipWhitespace: false, type: "text/plain; charset=utf-16be"),
            .masked(mask: [0xFF, 0xFF, 0x00, 0x00], pattern: [0xFF, 0xFE, 0x00, 0x00], skipWhitespace: false, type: "text/plain; charset=utf-16le"),
            .masked(mask: [0xFF, 0xFF, 0xFF, 0x00], pattern: [0xEF, 0xBB, 0xBF, 0x00], skipWhitespace: false, type: "text/plain; charset=utf-8"),
            // Images.
            .exact([0x00, 0x00, 0x01, 0x00], type: "image/x-icon"),
            .exact([0x00, 0x00, 0x02, 0x00], type: "image/x-icon"),
            .exact(bytes("BM"), type: "image/bmp"),
            .exact(bytes("GIF87a"), type: "image/gif"),
            .exact(bytes("GIF89a"), type: "image/gif"),
            .masked(
                mask: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], pattern: bytes("RIFF") + [0, 0, 0, 0] + bytes("WEBPVP"),
                skipWhitespace: false, type: "image/webp"),
            .exact([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], type: "image/png"),
            .exact([0xFF, 0xD8, 0xFF], type: "image/jpeg"),
            // Audio and video.
            .masked(
                mask: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF], pattern: bytes("FORM") + [0, 0, 0, 0] + bytes("AIFF"),
                skipWhitespace: false, type: "audio/aiff"),
            .masked(mask: [0xFF, 0xFF, 0xFF], pattern: bytes("ID3"), skipWhitespace: false, type: "audio/mpeg"),
            .masked(mask: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF], pattern: bytes("OggS") + [0], skipWhitespace: false, type: "application/ogg"),
            .masked(
                mask: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], pattern: bytes("MThd") + [0, 0, 0, 6], skipWhitespace: false,
                type: "audio/midi"),
            .masked(
                mask: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF], pattern: bytes("RIFF") + [0, 0, 0, 0] + bytes("AVI "),
                skipWhitespace: false, type: "video/avi"),
            .masked(
                mask: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF], pattern: bytes("RIFF") + [0, 0, 0, 0] + bytes("WAVE"),
                skipWhitespace: false, type: "audio/wave"),
            .mp4,
            .exact([0x1A, 0x45, 0xDF, 0xA3], type: "video/webm"),
            // Fonts: 34 bytes of anything, then "LP".
            .masked(
                mask: [UInt8](repeating: 0, count: 34) + [0xFF, 0xFF], pattern: [UInt8](repeating: 0, count: 34) + bytes("LP"), skipWhitespace: false,
                type: "application/vnd.ms-fontobject"),
            .exact([0x00, 0x01, 0x00, 0x00], type: "font/ttf"),
            .exact(bytes("OTTO"), type: "font/otf"),
            .exact(bytes("ttcf"), type: "font/collection"),
            .exact(bytes("wOFF"), type: "font/woff"),
            .exact(bytes("wOF2"), type: "font/woff2"),
            // Archives.
            .exact([0x1F, 0x8B, 0x08], type: "application/x-gzip"),
            .exact(bytes("PK") + [0x03, 0x04], type: "application/zip"),
            .exact(bytes("Rar!") + [0x1A, 0x07, 0x00], type: "application/x-rar-compressed"),
            .exact(bytes("Rar!") + [0x1A, 0x07, 0x01, 0x00], type: "application/x-rar-compressed"),
            .exact([0x00, 0x61, 0x73, 0x6D], type: "application/wasm"),
            .text,
        ]
        return signatures
    }()
}
