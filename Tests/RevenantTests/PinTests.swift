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

/// `run --pin`: kill at exec outlives the daemon (kill -9, a restart) with no gap, and the
/// next daemon replaces the pinned programs instead of adding to them.
@Suite(.serialized) struct PinTests {
    private func links() throws -> Int {
        try sh(["/usr/sbin/bpftool", "link", "list"]).out.split(separator: "\n").filter { $0.first?.isNumber == true }.count
    }

    @Test(.kernel, .timeLimit(.minutes(3))) func killAtExecHoldsThroughACrashAndARestart() async throws {
        try Kernel.check()
        let pinDir = "/sys/fs/bpf/rvtest-\(getpid())"
        defer { Tracer.unpin(pinDir) }
        let d = try DaemonUnderTest(name: "pin")
        let victim = d.dir + "/v1-worker"
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: victim)
        let policy = d.dir + "/policy.yaml"
        try "rules:\n  - name: block-v1\n    match: { exe: \(victim) }\n    action: kill\n".write(toFile: policy, atomically: true, encoding: .utf8)
        chmod(policy, 0o644); chmod(d.dir, 0o755)
        let baseline = try links()
        let args = ["--policy", policy, "--pin", "--pin-dir", pinDir]
        try await d.start(args)
        try await until(10) { d.logText.contains("programs pinned") }
        #expect(Tracer.pinned(pinDir) == 3, "fork, exec and exit pinned")

        // Execs of the blocked program every 20 ms through a crash and a restart: none runs.
        let results = d.dir + "/results"
        let loop = spawn(["/bin/bash", "-c", "for i in $(seq 400); do \(victim); echo $? >> \(results); sleep 0.02; done"], wait: false)
        try await Task.sleep(for: .seconds(1))
        d.kill9()
        try await Task.sleep(for: .seconds(2))
        let again = try DaemonUnderTest(name: "pin2", db: d.db, audit: d.audit)
        try await again.start(args)
        try await until(10) { again.logText.contains("programs pinned") }
        var st: Int32 = 0
        waitpid(loop.pid, &st, 0)
        let codes = try String(contentsOfFile: results, encoding: .utf8).split(separator: "\n")
        #expect(codes.count == 400)
        #expect(codes.allSatisfy { $0 == "137" }, "every exec killed: \(Dictionary(grouping: codes, by: { $0 }).mapValues(\.count))")
        #expect(try links() == baseline + 3, "the restarted daemon replaced the pinned programs, it did not add to them")

        // A graceful stop keeps them; unpin ends them.
        again.stop()
        #expect(killedBy9(spawn([victim]).status), "still killed with no daemon")
        #expect(try revenant(["unpin", "--pin-dir", pinDir]).out.contains("removed 3"))
        #expect(spawn([victim]).status == 0, "runs once unpinned")
        #expect(try links() == baseline)
    }
}
