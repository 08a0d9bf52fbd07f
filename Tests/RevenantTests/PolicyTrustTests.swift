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

/// A root daemon enforces only a policy no one else can change (sshd's StrictModes).
@Suite(.serialized, .root) struct PolicyTrustTests {
    @Test func policiesOthersCanChangeAreRefusedWithTheFix() throws {
        let dir = uniqueTempPath("trust")
        try FileManager.default.createDirectory(atPath: dir + "/d", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755); chmod(dir + "/d", 0o755)
        let file = dir + "/d/policy.yaml"
        try "rules: []\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        #expect(PolicyLoader.untrusted(file) == nil)
        _ = try PolicyLoader.read(file)

        chmod(file, 0o664)
        #expect(PolicyLoader.untrusted(file)?.contains("fix: chmod go-w '\(file)'") == true)
        chmod(file, 0o644)
        chown(file, 65534, 65534)
        #expect(PolicyLoader.untrusted(file)?.contains("fix: chown root '\(file)'") == true)
        #expect { try PolicyLoader.read(file) } throws: { e in (e as? PolicyError)?.description.hasPrefix(file + ": refused") == true }
        chown(file, 0, 0)
        chmod(dir + "/d", 0o777)
        #expect(PolicyLoader.untrusted(file)?.contains("directory \(dir)/d is writable by group or others") == true)
        // Sticky and root-owned, like /tmp: others cannot replace root's file in it.
        chmod(dir + "/d", 0o1777)
        #expect(PolicyLoader.untrusted(file) == nil)
    }

    @Test func aHardLinkOfAProtectedProgramIsRefused() throws {
        let su = "/usr/bin/su"
        try #require(FileManager.default.fileExists(atPath: su), "no \(su) on this host")
        let dir = "/usr/local/lib/rvtest-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let alias = dir + "/innocent"
        try #require(link(su, alias) == 0, "cannot hard-link \(su) into \(dir) (errno \(errno)): another filesystem?")
        let rule = PolicyRule(name: "r", match: PolicyMatch(exe: alias), action: .kill)
        let why = PolicyCompiler.danger(rule, context: PolicyLoader.safetyContext())
        #expect(why?.contains("same file as") == true, "\(why ?? "accepted")")
    }
}
