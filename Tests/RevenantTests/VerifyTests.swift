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

/// `revenant verify`: the "wait five minutes, check it stays dead" step as a command.
@Suite(.serialized) struct VerifyTests {
    /// A shell loop that starts `argv` every `every` seconds until killed.
    func loop(_ argv: String, every: String = "0.3") -> pid_t {
        spawn(["/bin/sh", "-c", "while true; do \(argv); sleep \(every); done"], wait: false).pid
    }
    func reap(_ pid: pid_t) { kill(pid, SIGKILL); var s: Int32 = 0; waitpid(pid, &s, 0) }

    @Test(.kernel) func throughTheDaemonsStore() async throws {
        try Kernel.check()
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try w.policy("rules:\n  - name: block-v1\n    match: { exe: \(w.path("v1")) }\n    action: kill\n")
        let d = try DaemonUnderTest(name: "verify")
        try await d.start(["--policy", policy])
        let marker = token("verify")

        let quiet = try revenant(["verify", "--for", "2s", "--match", marker, "--db", d.db])
        #expect(quiet.status == 0, "\(quiet.out)\(quiet.err)")
        #expect(quiet.out.contains("nothing matching \"\(marker)\" started in 2s"))
        #expect(quiet.err.isEmpty, "no countdown when stderr is not a terminal")

        // Respawns that the kernel kills at exec never ran: they are listed, and the window passes.
        let blockedLoop = loop("\(w.path("v1")) \(marker)")
        let held = try revenant(["verify", "--for", "2s", "--match", marker, "--db", d.db])
        reap(blockedLoop)
        #expect(held.status == 0, "\(held.out)")
        #expect(held.out.contains("blocked "))
        #expect(held.out.contains("blocked at exec)"))

        let live = loop("\(w.path("v2")) \(marker)")
        defer { reap(live) }
        let r = try revenant(["verify", "--for", "2s", "--match", marker, "--db", d.db])
        #expect(r.status == 1, "\(r.out)")
        #expect(r.out.contains("started "))
        #expect(r.out.contains("Respawned by  shell loop"))
        #expect(r.out.contains("stop it     kill \(live)"))
        d.stop()
    }

    @Test(.kernel) func withItsOwnBPFWhenNoDaemonRuns() async throws {
        try Kernel.check()
        let marker = token("verify-own")
        let l = loop("/bin/sh -c 'exit 0' \(marker)")
        defer { reap(l) }
        let r = try revenant(["verify", "--for", "2s", "--match", marker, "--db", "/nonexistent/revenant.db"])
        #expect(r.status == 1, "\(r.out)\(r.err)")
        #expect(r.out.contains("Respawned by  shell loop"))
        #expect(r.out.contains("(\(l))"), "the loop shell is named")
        let bad = try revenant(["verify", "--for", "soon", "--match", marker])
        #expect(bad.status == 2 && bad.err.contains("--for soon"))
    }
}
