import Foundation

/// Where versions come from: a local directory (or `file://` URL) laid out
/// `<root>/<db>/<version>/<data files>`, as sequins reads its sources.
///
/// Database and version names must match `^[-_a-zA-Z0-9]+$` (others are ignored); versions are
/// ordered as strings; data files are the regular files whose names do not start with `_` or `.`.
public struct SourceRoot: Sendable, Hashable {
    /// The directory, as an absolute path.
    public let directory: String
    /// sequins' `require_success_file`: a version counts only once `<version>/_SUCCESS` exists.
    public var requireSuccessFile: Bool

    /// - Throws: ``SourceError`` for a scheme other than `file://` (sequins' `hdfs://` and `s3://`
    ///   sources are not supported by this demo).
    public init(_ source: String, requireSuccessFile: Bool = false) throws(SourceError) {
        var path = source
        if let schemeEnd = source.range(of: "://") {
            let scheme = source[..<schemeEnd.lowerBound]
            guard scheme == "file" else {
                throw SourceError(
                    "source \(source): the \(scheme):// scheme is not supported (kv reads local directories or file:// URLs)")
            }
            path = String(source[schemeEnd.upperBound...])
        }
        guard !path.isEmpty else { throw SourceError("source is empty: set `source` or pass --source") }
        if !path.hasPrefix("/") {
            path = FileManager.default.currentDirectoryPath + "/" + path
        }
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        directory = path
        self.requireSuccessFile = requireSuccessFile
    }

    /// Whether `name` is a valid database or version name.
    public static func isValidName(_ name: some StringProtocol) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            }
    }

    /// The databases in the source, sorted.
    /// - Throws: ``SourceError`` when the root cannot be listed.
    public func databases() throws(SourceError) -> [String] {
        try subdirectories(of: directory).filter(Self.isValidName)
    }

    /// The versions of `database` that are complete (see ``requireSuccessFile``), sorted as strings.
    public func versions(of database: String) throws(SourceError) -> [String] {
        let databaseDirectory = directory + "/" + database
        return try subdirectories(of: databaseDirectory).filter { version in
            Self.isValidName(version)
                && (!requireSuccessFile || FileManager.default.fileExists(atPath: databaseDirectory + "/" + version + "/_SUCCESS"))
        }
    }

    /// The data files of a version, as absolute paths sorted by name.
    public func dataFiles(database: String, version: String) throws(SourceError) -> [String] {
        let versionDirectory = path(database: database, version: version)
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: versionDirectory) } catch {
            throw SourceError("cannot list \(versionDirectory): \(error.localizedDescription)")
        }
        return names.sorted().filter { name in
            guard !name.hasPrefix("_"), !name.hasPrefix(".") else { return false }
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: versionDirectory + "/" + name, isDirectory: &isDirectory) && !isDirectory.boolValue
        }.map { versionDirectory + "/" + $0 }
    }

    /// The directory of a version (shown as `path` in the status).
    public func path(database: String, version: String) -> String {
        directory + "/" + database + "/" + version
    }

    private func subdirectories(of path: String) throws(SourceError) -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
            throw SourceError("cannot list \(path): \(error.localizedDescription)")
        }
        return names.filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path + "/" + name, isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted()
    }
}

/// A source that cannot be read.
public struct SourceError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
