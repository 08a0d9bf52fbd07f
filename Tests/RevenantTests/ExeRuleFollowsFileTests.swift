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

/// Exe rules follow their file: an upgrade-style replace (a new file renamed over the old)
/// and a file created after the policy loaded are matched once the daemon resolves them again.
@Suite(.serialized) struct ExeRuleFollowsFileTests {
    @Test(.kernel, .timeLimit(.minutes(2))) func anUpgradedExecutableIsStillBlocked() async throws {
        try Kernel.check()
        let d = try DaemonUnderTest(name: "upgrade")
        let v1 = d.dir + "/v1-worker", v2 = d.dir + "/v2-worker"
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: v1)
        let policy = d.dir + "/policy.yaml"
        try "rules:\n  - name: block-v1\n    match: { exe: \(v1) }\n    action: kill\n  - name: block-v2\n    match: { exe: \(v2) }\n    action: kill\n"
            .write(toFile: policy, atomically: true, encoding: .utf8)
        chmod(policy, 0o644); chmod(d.dir, 0o755)
        try await d.start(["--policy", policy])
        #expect(killedBy9(spawn([v1]).status))
        var before = stat(), after = stat()
        stat(v1, &before)

        // What dpkg does: write the new version beside it, rename it over.
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: v1 + ".dpkg-new")
        #expect(rename(v1 + ".dpkg-new", v1) == 0)
        stat(v1, &after)
        #expect(before.st_ino != after.st_ino, "a new inode")
        try await until(10) { d.logText.contains("policy executable replaced") }
        #expect(d.logText.contains("policy executable replaced"), "\(d.logText)")
        #expect(killedBy9(spawn([v1]).status), "the upgraded file is still blocked")

        // Installed after the policy loaded.
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: v2)
        try await until(10) { d.logText.components(separatedBy: "policy executable replaced").count > 2 }
        #expect(killedBy9(spawn([v2]).status), "a file that appeared later is blocked")
        d.stop()
    }
}
