import Foundation
import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import RevenantTestSupport
import Testing

/// Configuration readers over fixture trees (no root, no kernel).
struct Fixture {
    let root = uniqueTempPath("fix")
    func write(_ path: String, _ text: String) throws {
        let full = root + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }
    func link(_ path: String, to target: String) throws {
        let full = root + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: full, withDestinationPath: target)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: root) }
}

/// Whether `sh -n` accepts the command as printed.
func shellParses(_ command: String) -> Bool {
    (try? sh(["/bin/sh", "-n", "-c", command]).status) == 0
}
