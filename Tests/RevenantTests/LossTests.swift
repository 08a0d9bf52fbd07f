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

/// Events the kernel dropped (a 1 MiB ring buffer and an exec storm) reach every reader:
/// the store, the audit log, who-spawned, timeline, export and verify.
@Suite(.serialized) struct LossTests {
    @Test(.kernel, .timeLimit(.minutes(3))) func lostEventsAreSurfacedEverywhere() async throws {
        try Kernel.check()
        let d = try DaemonUnderTest(name: "loss")
        try await d.start(["--ringbuf-mib", "1"])
        let pidFile = d.dir + "/sleeper.pid"
        let verifyOut = d.dir + "/verify.out"
        let verifier = spawn([revenantBinary, "verify", "--for", "8s", "--match", "no-such-program-\(getpid())", "--db", d.db],
                             wait: false, stdout: verifyOut, stderr: d.dir + "/verify.err")
        try await Task.sleep(for: .seconds(1))
        // Long arguments fill the ring between drains; the sleeper starts in the middle of it.
        let storm = """
            a=$(head -c 2000 /dev/zero | tr '\\0' x)
            for i in $(seq 2500); do /bin/true "$a"; done
            /bin/sleep 40 & echo $! > \(pidFile)
            for i in $(seq 2500); do /bin/true "$a"; done
            """
        #expect(spawn(["/bin/bash", "-c", storm]).status == 0)
        var st: Int32 = 0
        waitpid(verifier.pid, &st, 0)
        let sleeper = Int32((try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines))!
        defer { Glibc.kill(sleeper, SIGKILL) }
        try await d.settle()
        let gaps = try Store(path: d.db, readOnly: true).gaps()
        try #require(gaps.contains { $0.kind == .eventsLost && $0.lost > 0 }, "no loss forced: \(d.logText)")

        #expect(st >> 8 & 0xff == 2, "verify cannot tell over a window with losses")
        let verifyErr = (try? String(contentsOfFile: d.dir + "/verify.err", encoding: .utf8)) ?? ""
        #expect(verifyErr.contains("cannot tell:") && verifyErr.contains("events lost"), "\(verifyErr)")

        let w = try revenant(["who-spawned", String(sleeper), "--db", d.db])
        #expect(w.out.contains("! uncertain:") && w.out.contains("events dropped"), "\(w.out)\(w.err)")
        let wj = try revenant(["who-spawned", String(sleeper), "--db", d.db, "--json"])
        #expect(wj.out.contains("\"uncertain\":[{") && wj.out.contains("\"kind\":\"events-lost\""), "\(wj.out)")

        let t = try revenant(["timeline", "--match", "/bin/true", "--db", d.db])
        #expect(t.out.contains("TRACE GAP until"), "\(t.out)")
        let csv = try revenant(["export", "--db", d.db, "--format", "csv"])
        #expect(csv.out.contains("trace gap (events-lost)"))
        let jl = try revenant(["export", "--db", d.db, "--format", "jsonl"])
        #expect(jl.out.contains("\"type\":\"trace_gap\""))
        let ocsf = d.dir + "/export.jsonl"
        #expect(try revenant(["export", "--db", d.db, "--format", "ocsf", "--out", ocsf]).status == 0)
        #expect(try String(contentsOfFile: ocsf, encoding: .utf8).contains("revenant trace gap"))
        #expect(try revenant(["audit", "verify", ocsf]).status == 0)
        d.stop()
        let audit = try String(contentsOfFile: d.audit, encoding: .utf8)
        #expect(audit.contains("\"activity_name\":\"events lost\""), "the audit log records the loss")
        let valid = try ocsfValidate([d.audit, ocsf])
        #expect(valid.status == 0, "every record validates as OCSF: \(valid.err)\n\(valid.out)")
    }
}
