import Foundation

/// Sensei's file gateway (`LinedFileDataProviderBuilder`, `sensei.gateway.file.path`): a file of
/// JSON lines that every node reads whole. Lines are numbered from 0; a reader resumes after the
/// last line it consumed. A line still being written (no newline yet) is left for later.
public struct FileGateway: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public struct Line: Sendable, Hashable {
        public var number: Int
        public var text: String
    }

    /// Where to continue: the byte offset of line `nextLine`.
    public struct Position: Sendable, Hashable, Codable {
        public var nextLine: Int = 0
        public var byteOffset: UInt64 = 0

        public init(nextLine: Int = 0, byteOffset: UInt64 = 0) {
            self.nextLine = nextLine
            self.byteOffset = byteOffset
        }
    }

    /// Reads up to `maxLines` complete lines from `position`.
    /// - Throws: when the file cannot be opened or read (a missing file reads as empty).
    public func read(from position: Position, maxLines: Int = 10_000) throws -> (lines: [Line], next: Position) {
        guard FileManager.default.fileExists(atPath: path) else { return ([], position) }
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: position.byteOffset)
        var lines: [Line] = []
        var next = position
        var pending: [UInt8] = []
        while lines.count < maxLines, let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            pending.append(contentsOf: chunk)
            var start = 0
            while lines.count < maxLines, let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = newline
                if end > start, pending[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                lines.append(Line(number: next.nextLine, text: String(decoding: pending[start..<end], as: UTF8.self)))
                next.nextLine += 1
                next.byteOffset += UInt64(newline + 1 - start)
                start = newline + 1
            }
            pending.removeFirst(start)
        }
        return (lines, next)
    }
}
