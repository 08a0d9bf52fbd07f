import Foundation
import RevenantTestSupport
import Testing

/// `make bench` at a tiny size, so the benchmark code cannot rot. No figure is asserted:
/// only that every row is produced (a contender that fails to start fails the script).
@Suite struct BenchSmokeTests {
    @Test(.kernel, .timeLimit(.minutes(4))) func everyBenchmarkRowAtATinySize() throws {
        try Kernel.check()
        for t in ["/usr/sbin/auditd", "/usr/bin/forkstat"] {
            try #require(FileManager.default.isExecutableFile(atPath: t), "\(t) is not installed: run scripts/install-deps.sh bench")
        }
        let env = ["N=200", "ROUNDS=1", "RATES=100", "RATE_SECS=1", "CPU_ROUNDS=2", "STORM_SECS=1", "KILL_N=10", "PKILL_N=2",
                   "STORE_PROCESSES=700", "TIMELINE_INSTANCES=200", "RSS_N=200", "DOCS=no"]
        // Signals unblocked (the test runner blocks some) and output to files: the script's own
        // background daemons must neither ignore SIGTERM nor hold a pipe open.
        let dir = uniqueTempPath("bench")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = spawn(["/usr/bin/env"] + env + [packageRoot + "/scripts/bench/run.sh", revenantBinary],
                      stdout: dir + "/out", stderr: dir + "/err")
        let r = (status: p.status, out: (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? "",
                 err: (try? String(contentsOfFile: dir + "/err", encoding: .utf8)) ?? "")
        #expect(r.status == 0, "\(r.err.suffix(2000))")
        for figure in ["exec loop slowdown, revenant-audit", "exec loop slowdown, revenant-kill", "exec loop slowdown, auditd",
                       "exec loop slowdown, forkstat", "exec loop slowdown, execsnoop", "exec loop cost from CPU accounting, execsnoop",
                       "at 100 exec/s, execsnoop", "at 100 exec/s, revenant / execsnoop", "exec loop cost from CPU accounting, revenant-audit",
                       "exec loop cost from CPU accounting, revenant-kill", "at 100 exec/s, revenant", "at 100 exec/s, auditd", "at 100 exec/s, revenant / auditd", "storm:",
                       "kill latency, kernel", "kill latency, userspace", "kill latency, pkill loop", "who-spawned,",
                       "timeline of one program", "export --format ocsf", "daemon RSS after 200 processes"] {
            #expect(r.out.contains("| \(figure)") || r.out.contains(figure), "row \(figure)")
        }
        #expect(!r.out.contains("| ? |"))
    }

    /// The paired A/B script at a tiny size: one build against itself, both orders.
    @Test(.kernel, .timeLimit(.minutes(2))) func abComparesTwoBuildsOnTheSameWork() throws {
        try Kernel.check()
        let dir = uniqueTempPath("ab")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = spawn(["/usr/bin/env", "N=300", "ROUNDS=2", packageRoot + "/scripts/bench/ab.sh", revenantBinary, revenantBinary],
                      stdout: dir + "/out", stderr: dir + "/err")
        let out = (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? ""
        #expect(p.status == 0, "\(((try? String(contentsOfFile: dir + "/err", encoding: .utf8)) ?? "").suffix(2000))")
        #expect(out.contains("round 1 (A started first)") && out.contains("round 2 (B started first)"), "\(out)")
        #expect(out.contains("B/A over 2 rounds"), "\(out)")
        #expect(!out.contains("nan") && !out.contains("inf"), "\(out)")
    }
}
