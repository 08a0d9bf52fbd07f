import Foundation

/// A fresh, unique path under the temporary directory (not created): `rvtest-NAME-PID-RANDOM`.
public func uniqueTempPath(_ name: String) -> String {
    NSTemporaryDirectory() + "rvtest-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}

/// A directory that exists for the life of the value and is removed with it.
public final class TempDir: @unchecked Sendable {
    public let path: String

    public init(_ name: String) throws {
        path = uniqueTempPath(name)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// `path/relative`, with its parent directories created.
    public func file(_ relative: String, _ text: String? = nil) throws -> String {
        let p = path + "/" + relative
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if let text { try text.write(toFile: p, atomically: true, encoding: .utf8) }
        return p
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A unique marker for a test's own processes (in argv, so the tracer's records can be told apart).
public func token(_ name: String) -> String { "rvtest-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

/// The package root, to find the built `revenant` binary and the scripts.
public let packageRoot: String = {
    var parts = #filePath.split(separator: "/").map(String.init)
    parts.removeLast(3)
    return "/" + parts.joined(separator: "/")
}()

public let revenantBinary = packageRoot + "/.build/debug/revenant"
