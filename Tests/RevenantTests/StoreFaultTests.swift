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

/// Enforcement never depends on the store or the audit log: full, unopenable or removed, the
/// daemon keeps killing at exec, says so at critical level, and records the gap once it can.
@Suite(.serialized) struct StoreFaultTests {
    private func blockPolicy(in dir: String) throws -> (victim: String, policy: String) {
        let victim = dir + "/v1-worker"
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: victim)
        let policy = dir + "/policy.yaml"
        try "rules:\n  - name: block-v1\n    match: { exe: \(victim) }\n    action: kill\n".write(toFile: policy, atomically: true, encoding: .utf8)
        chmod(policy, 0o644); chmod(dir, 0o755)
        return (victim, policy)
    }

    @Test(.kernel, .timeLimit(.minutes(2))) func aFullFilesystemAtStartStopsNothing() async throws {
        try Kernel.check()
        let fs = try SmallFS("fullstart")
        try fs.fill()
        let d = try DaemonUnderTest(name: "fullstart", db: fs.mount + "/lib/revenant.db", audit: fs.mount + "/log/audit.jsonl")
        let (victim, policy) = try blockPolicy(in: d.dir)
        try await d.start(["--policy", policy])
        #expect(d.logText.contains("<2>STORE UNWRITABLE: cannot open the store"), "\(d.logText)")
        #expect(killedBy9(spawn([victim]).status), "killed at exec with no store")
        // A process that starts while the store cannot be written is answered for later.
        let sleeper = spawn(["/bin/sleep", "30"], wait: false)
        defer { Glibc.kill(sleeper.pid, SIGKILL); var st: Int32 = 0; waitpid(sleeper.pid, &st, 0) }
        try await Task.sleep(for: .seconds(3))
        fs.free()
        try await until(20) { d.logText.contains("store writable again") && d.logText.contains("audit log writable again") }
        #expect(d.logText.contains("store writable again"), "\(d.logText)")
        try await d.settle()
        let w = try revenant(["who-spawned", String(sleeper.pid), "--db", d.db])
        #expect(w.status == 0 && w.out.contains("sleep 30"), "\(w.out)\(w.err)")
        let store = try Store(path: d.db, readOnly: true)
        let gaps = try store.gaps()
        #expect(gaps.count == 1 && gaps.first?.kind == .storeUnwritable && gaps.first!.toWallNs > gaps.first!.fromWallNs, "\(gaps)")
        d.stop()
        let audit = (try? String(contentsOfFile: d.audit, encoding: .utf8)) ?? ""
        #expect(audit.contains("\"audit gap\""), "the audit log records its gap")
        #expect(try revenant(["audit", "verify", d.audit]).status == 0)
        let ocsf = try ocsfValidate([d.audit]); #expect(ocsf.status == 0, "every record validates as OCSF: \(ocsf.err)\n\(ocsf.out)")
    }

    @Test(.kernel, .timeLimit(.minutes(2))) func aStoreFilledWhileRunningKeepsEnforcing() async throws {
        try Kernel.check()
        let fs = try SmallFS("fillrun", kib: 4096)
        let d = try DaemonUnderTest(name: "fillrun", db: fs.mount + "/revenant.db", audit: fs.mount + "/audit.jsonl")
        let (victim, policy) = try blockPolicy(in: d.dir)
        try await d.start(["--policy", policy])
        try await d.settle()
        try fs.fill()
        // Enough history that the next batches need new pages.
        for _ in 0..<300 { spawn(["/bin/true"]) }
        let sleeper = spawn(["/bin/sleep", "30"], wait: false)
        defer { Glibc.kill(sleeper.pid, SIGKILL); var st: Int32 = 0; waitpid(sleeper.pid, &st, 0) }
        try await until(15) { d.logText.contains("STORE UNWRITABLE") }
        #expect(d.logText.contains("<2>STORE UNWRITABLE: store write failed"), "\(d.logText)")
        for _ in 0..<5 { #expect(killedBy9(spawn([victim]).status), "killed at exec with the store full") }
        #expect(d.process.isRunning)
        fs.free()
        try await until(20) { d.logText.contains("store writable again") }
        try await d.settle()
        let w = try revenant(["who-spawned", String(sleeper.pid), "--db", d.db])
        #expect(w.status == 0 && w.out.contains("sleep 30"), "\(w.out)\(w.err)")
        let gaps = try Store(path: d.db, readOnly: true).gaps()
        #expect(gaps.contains { $0.kind == .storeUnwritable }, "\(gaps)")
        d.stop()
        #expect(try revenant(["audit", "verify", d.audit]).status == 0)
        let ocsf = try ocsfValidate([d.audit]); #expect(ocsf.status == 0, "every record validates as OCSF: \(ocsf.err)\n\(ocsf.out)")
    }

    @Test(.kernel, .timeLimit(.minutes(2))) func aRemovedStoreIsReopenedWithTheLiveProcesses() async throws {
        try Kernel.check()
        let d = try DaemonUnderTest(name: "removed")
        let (victim, policy) = try blockPolicy(in: d.dir)
        let sleeper = spawn(["/bin/sleep", "60"], wait: false)
        defer { Glibc.kill(sleeper.pid, SIGKILL); var st: Int32 = 0; waitpid(sleeper.pid, &st, 0) }
        try await d.start(["--policy", policy])
        try await d.settle()
        for f in [d.db, d.db + "-wal", d.db + "-shm"] { unlink(f) }
        try await until(20) { d.logText.contains("store writable again") }
        #expect(d.logText.contains("removed or replaced"), "\(d.logText)")
        #expect(killedBy9(spawn([victim]).status))
        try await d.settle()
        // The new store knows the processes that were running before it existed.
        let w = try revenant(["who-spawned", String(sleeper.pid), "--db", d.db])
        #expect(w.status == 0 && w.out.contains("sleep 60"), "\(w.out)\(w.err)")
        d.stop()
    }
}
