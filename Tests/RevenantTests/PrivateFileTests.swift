import Foundation
import Glibc
import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import RevenantTestSupport
import Testing

/// Files that hold every command line on the host: owner-only, whatever the umask.
@Suite(.serialized) struct PrivateFileTests {
    @Test func storeAndAuditLogAreOwnerOnlyUnderAnOpenUmask() throws {
        let dir = uniqueTempPath("modes") + "/state"
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let old = umask(0)
        defer { umask(old) }
        let s = try Store(path: dir + "/revenant.db")
        _ = try s.beginRun(boot: "b", bootEpochNs: 0, version: "t", nowWallNs: 1)
        let log = try AuditLog(path: dir + "/audit.jsonl")
        try log.append(.daemon("start", timeMs: 1))
        log.close()
        func mode(_ p: String) throws -> Int { (try FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as? Int) ?? -1 }
        #expect(try mode(dir) == 0o750)
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: dir + "/revenant.db" + suffix) {
            #expect(try mode(dir + "/revenant.db" + suffix) == 0o600, "revenant.db\(suffix)")
        }
        #expect(try mode(dir + "/audit.jsonl") == 0o640)
        // A store left world-readable by an older revenant is tightened when opened.
        chmod(dir + "/revenant.db", 0o644)
        _ = try Store(path: dir + "/revenant.db")
        #expect(try mode(dir + "/revenant.db") == 0o600)
    }
}
