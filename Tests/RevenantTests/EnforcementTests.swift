import Dispatch
import Foundation
import Glibc
import RevenantCore
import RevenantHost
import RevenantKernel
import RevenantStore
import RevenantQuery
import RevenantOutputs
import RevenantDaemon
import RevenantTestSupport
import Testing

@Suite(.serialized) struct EnforcementTests {
    @Test(.kernel) func killAtExecStopsV1BeforeItsFirstInstructionAndSparesV2() async throws {
        try Kernel.check()
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try w.policy("""
            rules:
              - name: block-v1-binary
                match: { exe: \(w.path("v1")) }
                action: kill
              - name: block-v1-script
                match: { script: \(w.script("v1")) }
                action: kill
            """)
        let d = try DaemonUnderTest(name: "kill")
        try await d.start(["--policy", policy])
        for _ in 0..<3 {
            let v1 = spawn([w.path("v1")])
            #expect(killedBySignal9(v1.status), "status \(v1.status)")
            let py = spawn(["/usr/bin/python3", w.script("v1")])
            #expect(killedBySignal9(py.status))
        }
        #expect(!w.marker(w.path("v1")), "the blocklisted binary ran")
        #expect(!w.marker(w.script("v1")), "the blocklisted script ran")
        // The v2 copies (same content, other path) run normally.
        #expect(spawn([w.path("v2")]).status == 0)
        #expect(spawn(["/usr/bin/python3", w.script("v2")]).status == 0)
        #expect(w.marker(w.path("v2")))
        #expect(w.marker(w.script("v2")))
        // Run from its own directory by relative name: still v1, still killed.
        let rel = spawn(["/bin/sh", "-c", "cd \(w.dir)/v1 && exec /usr/bin/python3 training_worker.py"])
        #expect(killedBySignal9(rel.status))
        #expect(!w.marker(w.script("v1")))
        try await d.settle()
        #expect(d.logText.contains("killed at exec by the kernel (rule \"block-v1-binary\")"))
        // who-spawned works for a killed process, with the enforcement on its image.
        let store = try Store(path: d.db, readOnly: true)
        let v1Pid = spawn([w.path("v1")]).pid
        try await d.settle()
        let inc = try #require(try store.incarnations(pid: v1Pid).first)
        #expect(inc.record.image?.enforcement?.tier == .killAtExec)
        #expect(inc.record.image?.enforcement?.blocked == true)
        #expect(inc.record.exitStatus == .signaled(9, coreDumped: false))
        #expect(try store.ancestry(of: inc).first?.record.id.pid == getpid())
        d.stop()
    }

    @Test(.kernel) func denyFallsBackToKillAtExecWhereLSMIsAbsent() async throws {
        try Kernel.check()
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try w.policy("rules:\n  - name: deny-v1\n    match: { exe: \(w.path("v1")) }\n    action: deny\n")
        let d = try DaemonUnderTest(name: "deny")
        try await d.start(["--policy", policy])
        let lsm = d.logText.contains("lsm=active")
        let r = spawn([w.path("v1")])
        if lsm {
            // BPF LSM active: execve itself fails (posix_spawn reports it), nothing runs.
            #expect(r.status != 0)
        } else {
            #expect(d.logText.contains("deny rules are killed at exec"))
            #expect(killedBySignal9(r.status))
        }
        #expect(!w.marker(w.path("v1")))
        d.stop()
    }

    @Test(.kernel) func everyRespawnOfAShellLoopIsKilled() async throws {
        try Kernel.check()
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try w.policy("rules:\n  - name: block-v1\n    match: { exe: \(w.path("v1")) }\n    action: kill\n")
        let d = try DaemonUnderTest(name: "loop")
        try await d.start(["--policy", policy])
        // The operator's nightmare: a loop that restarts the worker whenever it dies.
        let loop = spawn(["/bin/sh", "-c", "i=0; while [ $i -lt 8 ]; do \(w.path("v1")); i=$((i+1)); sleep 0.1; done"])
        #expect(loop.status == 0)
        #expect(!w.marker(w.path("v1")), "a respawn ran")
        try await d.settle()
        let kills = d.logText.components(separatedBy: "killed at exec by the kernel (rule \"block-v1\")").count - 1
        #expect(kills == 8)
        d.stop()
    }

    @Test(.kernel) func everyRespawnUnderSupervisordIsKilled() async throws {
        try Kernel.check()
        let supervisord = "/usr/bin/supervisord"
        try #require(FileManager.default.isExecutableFile(atPath: supervisord), "supervisor is not installed: run scripts/install-deps.sh test")
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try w.policy("rules:\n  - name: block-v1\n    match: { exe: \(w.path("v1")) }\n    action: kill\n")
        let conf = w.dir + "/supervisord.conf"
        try """
            [supervisord]
            nodaemon=true
            silent=true
            logfile=\(w.dir)/supervisord.log
            pidfile=\(w.dir)/supervisord.pid
            [unix_http_server]
            file=\(w.dir)/supervisor.sock
            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
            [program:training-worker]
            command=\(w.path("v1"))
            autorestart=true
            startsecs=0
            startretries=100
            """.write(toFile: conf, atomically: true, encoding: .utf8)
        let d = try DaemonUnderTest(name: "supervisord")
        try await d.start(["--policy", policy])
        let sup = spawn([supervisord, "-c", conf], wait: false)
        try await Task.sleep(for: .seconds(4))
        kill(sup.pid, SIGTERM)
        var st: Int32 = 0
        waitpid(sup.pid, &st, 0)
        try await d.settle()
        #expect(!w.marker(w.path("v1")), "a respawn ran")
        let lines = d.logText.split(separator: "\n").filter { $0.contains("killed at exec by the kernel (rule \"block-v1\")") }
        #expect(lines.count >= 2, "supervisord respawned \(lines.count) times")
        #expect(lines.allSatisfy { $0.contains("supervisord(\(sup.pid))") }, "each attempt attributed to supervisord")
        d.stop()
    }

    @Test(.kernel) func killExistingAndReloadKeepThePolicyInForce() async throws {
        try Kernel.check()
        let w = try MarkerWorker()
        defer { w.cleanup() }
        // A v1 worker already running before the policy exists.
        let sleeper = w.dir + "/v1/sleeper.py"
        try "import time\ntime.sleep(60)\n".write(toFile: sleeper, atomically: true, encoding: .utf8)
        let running = spawn(["/usr/bin/python3", sleeper], wait: false)
        try await Task.sleep(for: .milliseconds(300))
        let policyText = """
            rules:
              - name: block-v1
                match: { exe: \(w.path("v1")) }
                action: kill
              - name: stop-sleeper
                match: { script: \(sleeper) }
                action: kill
                kill_existing: true
            """
        let policy = try w.policy(policyText)
        let d = try DaemonUnderTest(name: "reload")
        try await d.start(["--policy", policy])
        var st: Int32 = 0
        waitpid(running.pid, &st, 0)
        #expect(killedBySignal9(st), "kill_existing terminates the running match")
        // The daemon logs right after the kill: give the line a moment to land.
        for _ in 0..<40 where !d.logText.contains("kill_existing: killed") { try await Task.sleep(for: .milliseconds(50)) }
        #expect(d.logText.contains("kill_existing: killed"))

        // A broken policy on SIGHUP: rejected, the old one keeps enforcing.
        try "rules:\n  - name: x\n    match: { script: a.py }\n    action: kil\n".write(toFile: policy, atomically: true, encoding: .utf8)
        d.hangUp()
        for _ in 0..<100 where !d.logText.contains("policy reload rejected") {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(d.logText.contains("policy reload rejected"))
        #expect(d.logText.contains("unknown action \\\"kil\\\"") || d.logText.contains("unknown action \"kil\""))
        #expect(killedBySignal9(spawn([w.path("v1")]).status))
        #expect(!w.marker(w.path("v1")))

        // A valid audit-only policy: v1 runs again, and is recorded.
        try "rules:\n  - name: watch-v1\n    match: { exe: \(w.path("v1")) }\n    action: audit\n".write(toFile: policy, atomically: true, encoding: .utf8)
        d.hangUp()
        for _ in 0..<50 where d.logText.components(separatedBy: "policy loaded").count < 3 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(spawn([w.path("v1")]).status == 0)
        #expect(w.marker(w.path("v1")))
        try await d.settle()
        #expect(d.logText.contains("audited (rule \"watch-v1\")"))
        d.stop()
    }

    @Test func policyCheckNamesFileLineAndFix() throws {
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let bad = try w.policy("rules:\n  - name: x\n    match: { script: a.py }\n    action: kil\n", name: "bad.yaml")
        let r = try revenant(["policy", "check", bad])
        #expect(r.status == 1)
        #expect(r.err.contains("bad.yaml:4:13: unknown action \"kil\" (expected audit, kill, deny)"))
        let shell = try w.policy("rules:\n  - name: all-shells\n    match: { exe: /bin/bash }\n    action: kill\n", name: "shell.yaml")
        let s = try revenant(["policy", "check", shell])
        #expect(s.status == 1)
        #expect(s.err.contains("allow_dangerous: true"))
        let good = try revenant(["policy", "check", packageRoot + "/policy/sample.yaml"])
        #expect(good.status == 0)
        #expect(good.out.contains("2 rules, valid"))
    }
}
