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

/// A worker whose very first act is to create `<its own path>.marker`.
struct MarkerWorker {
    let dir: String

    init() throws {
        dir = uniqueTempPath("worker")
        for v in ["v1", "v2"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(v)", withIntermediateDirectories: true)
        }
        let src = dir + "/worker.c"
        try """
            #include <fcntl.h>
            #include <string.h>
            #include <unistd.h>
            int main(int argc, char **argv) {
                char p[4096];
                strncpy(p, argv[0], sizeof(p) - 8); strcat(p, ".marker");
                int fd = open(p, O_CREAT | O_WRONLY | O_APPEND, 0644);
                write(fd, "x", 1);
                return 0;
            }
            """.write(toFile: src, atomically: true, encoding: .utf8)
        // The same program at two paths: two inodes, v1 blocklisted, v2 not.
        for v in ["v1", "v2"] {
            let r = spawn(["cc", "-O2", "-o", "\(dir)/\(v)/worker", src])
            try #require(r.status == 0, "cc failed")
            try "open(__file__ + '.marker', 'a').write('x')\n".write(toFile: "\(dir)/\(v)/training_worker.py", atomically: true, encoding: .utf8)
        }
    }

    func path(_ v: String) -> String { "\(dir)/\(v)/worker" }
    func script(_ v: String) -> String { "\(dir)/\(v)/training_worker.py" }
    func marker(_ p: String) -> Bool { FileManager.default.fileExists(atPath: p + ".marker") }
    func markerCount(_ p: String) -> Int { (try? Data(contentsOf: URL(fileURLWithPath: p + ".marker")).count) ?? 0 }

    func policy(_ rules: String, name: String = "policy.yaml") throws -> String {
        let p = dir + "/" + name
        try rules.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: dir) }
}

func killedBySignal9(_ status: Int32) -> Bool { (status & 0x7f) == 9 }

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

/// Attribution against real respawners, through the real daemon and store.
@Suite(.serialized) struct AttributionE2ETests {
    @Test(.kernel) func supervisordRespawnsAreAttributedToTheProgramSection() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/supervisord"), "supervisor is not installed")
        let w = try MarkerWorker()
        defer { w.cleanup() }
        try FileManager.default.createDirectory(atPath: w.dir + "/conf.d", withIntermediateDirectories: true)
        try "[supervisord]\nnodaemon=true\nsilent=true\nlogfile=\(w.dir)/s.log\npidfile=\(w.dir)/s.pid\n\n[include]\nfiles = conf.d/*.ini\n"
            .write(toFile: w.dir + "/supervisord.conf", atomically: true, encoding: .utf8)
        try "[program:training-worker]\ncommand=\(w.path("v2"))\nautorestart=true\nstartsecs=0\n"
            .write(toFile: w.dir + "/conf.d/worker.ini", atomically: true, encoding: .utf8)
        let d = try DaemonUnderTest(name: "attr-sup")
        try await d.start()
        let sup = spawn(["/usr/bin/supervisord", "-c", w.dir + "/supervisord.conf"], wait: false)
        try await Task.sleep(for: .seconds(3.5))
        try await d.settle()
        let store = try Store(path: d.db, readOnly: true)
        let latest = try #require(try store.instances(argv: [w.path("v2")]).first)
        let j = try whoSpawnedJSON(latest.record.id.pid, db: d.db, extra: ["--id", latest.record.id.description])
        kill(sup.pid, SIGTERM)
        var st: Int32 = 0
        waitpid(sup.pid, &st, 0)
        let r = try #require(j["respawned_by"] as? [String: Any])
        #expect(r["mechanism"] as? String == "supervisord")
        #expect((r["spawner"] as? [String: Any])?["pid"] as? Int == Int(sup.pid))
        let src = try #require(r["source"] as? [String: Any])
        #expect(src["file"] as? String == w.dir + "/conf.d/worker.ini")
        #expect(src["line"] as? Int == 2)
        let ctl = "supervisorctl -c '\(w.dir)/supervisord.conf'"   // the server that read that config
        #expect((r["remediation"] as? [String])?.contains("\(ctl) reread && \(ctl) update") == true, "\(r["remediation"] ?? "")")
        #expect((r["instances"] as? Int ?? 0) >= 2)
        #expect(r["confidence"] as? String == "high")
        d.stop()
    }

    @Test(.kernel) func aShellLoopScriptIsNamedWithItsLine() async throws {
        try Kernel.check()
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let script = w.dir + "/keepalive.sh"
        try "#!/bin/sh\n# keep the worker up\ni=0\nwhile [ $i -lt 4 ]; do\n  \(w.path("v2"))\n  i=$((i+1)); sleep 0.2\ndone\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        let d = try DaemonUnderTest(name: "attr-loop")
        try await d.start()
        let loop = spawn(["/bin/sh", script])
        #expect(loop.status == 0)
        try await d.settle()
        let store = try Store(path: d.db, readOnly: true)
        let latest = try #require(try store.instances(argv: [w.path("v2")]).first)
        let j = try whoSpawnedJSON(latest.record.id.pid, db: d.db, extra: ["--id", latest.record.id.description])
        let r = try #require(j["respawned_by"] as? [String: Any])
        #expect(r["mechanism"] as? String == "shell loop")
        #expect((r["spawner"] as? [String: Any])?["pid"] as? Int == Int(loop.pid))
        let src = try #require(r["source"] as? [String: Any])
        #expect(src["file"] as? String == script)
        #expect(src["line"] as? Int == 5)
        #expect((r["remediation"] as? [String])?.first?.hasPrefix("kill \(loop.pid)") == true)
        #expect(r["instances"] as? Int == 4)
        // timeline shows each start.
        let t = try revenant(["timeline", String(latest.record.id.pid), "--db", d.db])
        #expect(t.status == 0)
        #expect(t.out.contains("4 instances"))
        d.stop()
    }
}

/// The deny tier needs BPF LSM, which this machine's kernel refuses: boot Debian's own kernel
/// under qemu with `lsm=…,bpf`, this host's root shared read-only, and run the daemon there.
@Suite struct DenyOnStockKernelTests {
    @Test(.kernel, .timeLimit(.minutes(10))) func execveFailsWithEPERMAndNothingRuns() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64"), "qemu-system-x86 is not installed: run scripts/install-deps.sh test")
        let dir = uniqueTempPath("qemu")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let guest = dir + "/guest.sh"
        try """
            set -u
            B=\(revenantBinary)
            D=/run/deny; mkdir -p $D/v1 $D/v2
            cp /bin/echo $D/v1/worker; cp /bin/echo $D/v2/worker
            echo 'print("script ran")' > $D/v1/worker.py
            printf 'rules:\\n  - name: deny-v1\\n    match: { exe: %s }\\n    action: deny\\n  - name: deny-v1-script\\n    match: { script: %s }\\n    action: deny\\n' $D/v1/worker $D/v1/worker.py > $D/policy.yaml
            $B run --db $D/db --audit-log $D/audit.jsonl --policy $D/policy.yaml 2>$D/log &
            daemon=$!
            for i in $(seq 600); do grep -q "policy loaded" $D/log && break; kill -0 $daemon || break; sleep 0.2; done
            cat $D/log
            $D/v1/worker ran > $D/v1.out 2>$D/v1.err; echo "V1-STATUS=$?"; cat $D/v1.err
            [ -s $D/v1.out ] && echo V1-RAN || echo V1-DID-NOT-RUN
            $D/v2/worker ran > $D/v2.out; echo "V2-STATUS=$?"; [ -s $D/v2.out ] && echo V2-RAN
            /usr/bin/python3 $D/v1/worker.py > $D/py.out 2>$D/py.err; echo "PY-STATUS=$?"; cat $D/py.err
            [ -s $D/py.out ] && echo PY-RAN || echo PY-DID-NOT-RUN
            sleep 1
            kill $daemon; wait $daemon
            grep -i "denied exec" $D/log
            echo "AUDIT-DENIED=$(grep -c 'denied exec of' $D/audit.jsonl)"
            exit 0
            """.write(toFile: guest, atomically: true, encoding: .utf8)
        // The guest runs for tens of seconds: block a Dispatch thread, not the test pool.
        let (status, text): (Int32, String) = try await withCheckedThrowingContinuation { cont in
            DispatchQueue.global().async {
                do {
                    let p = Process()
                    p.executableURL = URL(fileURLWithPath: packageRoot + "/scripts/qemu-run.sh")
                    p.arguments = [guest]
                    let out = Pipe()
                    p.standardOutput = out
                    p.standardError = FileHandle.nullDevice
                    try p.run()
                    let data = out.fileHandleForReading.readDataToEndOfFile()
                    p.waitUntilExit()
                    cont.resume(returning: (p.terminationStatus, String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\r", with: "")))
                } catch {
                    cont.resume(throwing: error)
                }
            }
        }
        let p = (terminationStatus: status, ())
        #expect(p.terminationStatus == 0, "qemu-run: \(text.suffix(2000))")
        #expect(text.contains("lsm=active"), "the deny program must attach on a BPF-LSM kernel")
        #expect(text.contains("Operation not permitted"))
        #expect(text.contains("V1-STATUS=126"))
        #expect(text.contains("V1-DID-NOT-RUN"))
        #expect(text.contains("V2-RAN"), "the v2 copy runs")
        #expect(text.contains("denied exec (rule \"deny-v1\")"))
        // A script given to an interpreter: argv captured at syscall entry, the interpreter refused.
        #expect(text.contains("PY-STATUS=126"))
        #expect(text.contains("PY-DID-NOT-RUN"))
        #expect(text.contains("denied exec (rule \"deny-v1-script\")"))
        // Each caller was a bare fork of the shell (lazy forks: announced by the deny itself),
        // so each denial has its audit record with the caller's lineage.
        #expect(text.contains("AUDIT-DENIED=2"), "\(text.suffix(2000))")
    }
}

/// Real cron: a /etc/cron.d job in the double-fork form operators write. Cron's granularity is
/// one minute, so this waits for two ticks (up to about two and a half minutes).
@Suite struct CronAttributionTests {
    @Test(.kernel, .timeLimit(.minutes(5))) func cronDNohupJobAndAUserCrontabAreAttributedToTheirLines() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/cron"), "cron is not installed: run scripts/install-deps.sh test")
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let worker = w.dir + "/v2/cron_worker.py"
        try "import time\ntime.sleep(2)\n".write(toFile: worker, atomically: true, encoding: .utf8)
        let job = "pgrep -f no-such-[r]vtest-process >/dev/null || nohup /usr/bin/python3 \(worker) >/dev/null 2>&1 &"
        let cronFile = "/etc/cron.d/rvtest-\(getpid())"
        try "# revenant test job\n* * * * * root \(job)\n".write(toFile: cronFile, atomically: true, encoding: .utf8)
        defer { unlink(cronFile) }
        // And a user's crontab, installed with crontab(1) as an operator would, running the worker directly.
        let userWorker = w.dir + "/v2/user_worker.py"
        try "import time\ntime.sleep(2)\n".write(toFile: userWorker, atomically: true, encoding: .utf8)
        try #require(try sh(["/usr/bin/crontab", "-l", "-u", "daemon"]).status != 0, "user daemon already has a crontab: not touching it")
        let userTab = w.dir + "/daemon.crontab"
        try "# worker\n* * * * * /usr/bin/python3 \(userWorker)\n".write(toFile: userTab, atomically: true, encoding: .utf8)
        try #require(try sh(["/usr/bin/crontab", "-u", "daemon", userTab]).status == 0)
        defer { _ = try? sh(["/usr/bin/crontab", "-u", "daemon", "-r"]) }
        chmod(w.dir, 0o755); chmod(w.dir + "/v2", 0o755)
        let d = try DaemonUnderTest(name: "cron")
        try await d.start()
        let cron = spawn(["/usr/sbin/cron", "-f", "-L", "0"], wait: false)
        defer { kill(cron.pid, SIGTERM); var s: Int32 = 0; waitpid(cron.pid, &s, 0) }
        try await Task.sleep(for: .seconds(1))
        try #require(kill(cron.pid, 0) == 0, "cron did not stay up (another cron running?)")
        // The user's worker is respawned by a shell loop at the same time: two respawners at once.
        let loop = spawn(["/bin/sh", "-c", "while true; do /usr/bin/python3 \(userWorker); sleep 20; done"], wait: false)
        defer { kill(loop.pid, SIGKILL); var s: Int32 = 0; waitpid(loop.pid, &s, 0) }
        let argv = ["/usr/bin/python3", worker]
        var found: [StoredProcess] = []
        for _ in 0..<160 where found.count < 2 {
            try await Task.sleep(for: .seconds(1))
            found = (try? Store(path: d.db, readOnly: true).instances(argv: argv)) ?? []
        }
        try #require(found.count >= 2, "cron ran the job \(found.count) times in 160 s")
        try await d.settle()
        let latest = found[0]
        let j = try whoSpawnedJSON(latest.record.id.pid, db: d.db, extra: ["--id", latest.record.id.description])
        let anc = try #require(j["ancestry"] as? [[String: Any]])
        #expect((anc.first?["argv"] as? [String])?.last == job, "the job's shell forked the worker")
        #expect(anc.first?["exited"] as? Bool == true, "and exited before it: a double fork")
        let r = try #require(j["respawned_by"] as? [String: Any])
        #expect(r["mechanism"] as? String == "cron")
        #expect((r["spawner"] as? [String: Any])?["pid"] as? Int == Int(cron.pid))
        #expect(r["command"] as? String == job)
        let src = try #require(r["source"] as? [String: Any])
        #expect(src["file"] as? String == cronFile)
        #expect(src["line"] as? Int == 2)
        #expect((r["remediation"] as? [String])?.first == "sed -i '2s/^/# /' '\(cronFile)'   # cron re-reads it within a minute")

        let users = try Store(path: d.db, readOnly: true).instances(argv: ["/usr/bin/python3", userWorker])
        let byCron = users.filter { $0.record.parent.map { $0.pid != loop.pid } ?? false }
        let byLoop = users.filter { $0.record.parent?.pid == loop.pid }
        try #require(byCron.count >= 2, "the user crontab ran \(byCron.count) times")
        try #require(byLoop.count >= 2, "the loop ran \(byLoop.count) times")
        let u = try #require(try whoSpawnedJSON(byCron[0].record.id.pid, db: d.db, extra: ["--id", byCron[0].record.id.description])["respawned_by"] as? [String: Any])
        #expect((u["evidence"] as? [String])?.first?.contains("forked under cron(\(cron.pid))") == true, "header and evidence name one spawner: \(u)")
        let alsoLoop = try #require((u["also_respawned_by"] as? [[String: Any]])?.first, "the loop is listed after cron: \(u)")
        #expect(alsoLoop["mechanism"] as? String == "shell loop")
        #expect((alsoLoop["spawner"] as? [String: Any])?["pid"] as? Int == Int(loop.pid))
        let l = try #require(try whoSpawnedJSON(byLoop[0].record.id.pid, db: d.db, extra: ["--id", byLoop[0].record.id.description])["respawned_by"] as? [String: Any])
        #expect(l["mechanism"] as? String == "shell loop", "this instance's own respawner: \(l)")
        #expect((l["spawner"] as? [String: Any])?["pid"] as? Int == Int(loop.pid))
        #expect((l["also_respawned_by"] as? [[String: Any]])?.contains { $0["mechanism"] as? String == "cron" } == true, "\(l)")
        #expect(u["mechanism"] as? String == "cron")
        #expect((u["spawner"] as? [String: Any])?["pid"] as? Int == Int(cron.pid))
        let spool = "/var/spool/cron/crontabs/daemon"
        let installed = try String(contentsOfFile: spool, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let usrc = try #require(u["source"] as? [String: Any])
        #expect(usrc["file"] as? String == spool)
        #expect(usrc["line"] as? Int == (installed.firstIndex { $0.hasSuffix(userWorker) } ?? -2) + 1, "crontab(1) adds a header: the line is the spool file's")
        #expect((u["settings"] as? [String: String])?["user"] == "daemon")
        #expect((u["remediation"] as? [String])?.first?.hasPrefix("crontab -u daemon -l | grep -vxF '* * * * * /usr/bin/python3 \(userWorker)'") == true)
        d.stop()
    }
}

@Suite(.serialized) struct AuditLogTests {
    @Test(.kernel) func blockedRespawnIsAnOCSFRecordInAnIntactChain() async throws {
        try Kernel.check()
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try w.policy("rules:\n  - name: block-v1\n    match: { exe: \(w.path("v1")) }\n    action: kill\n")
        let d = try DaemonUnderTest(name: "audit")
        try await d.start(["--policy", policy])
        let v1 = spawn([w.path("v1")])
        #expect(killedBySignal9(v1.status))
        try await d.settle()
        d.stop()
        let lines = try String(contentsOfFile: d.audit, encoding: .utf8).split(separator: "\n").map(String.init)
        let objs = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let events = objs.compactMap { (($0["unmapped"] as? [String: Any])?["revenant"] as? [String: Any])?["event"] as? String }
        #expect(events.first == "start")
        #expect(events.contains("policy loaded"))
        #expect(events.last == "stop")
        let blocked = try #require(objs.first { (($0["unmapped"] as? [String: Any])?["revenant"] as? [String: Any])?["event"] as? String == "blocked" })
        #expect(blocked["class_uid"] as? Int == 1007)
        #expect(blocked["activity_id"] as? Int == 1)
        #expect(blocked["disposition_id"] as? Int == 2)
        let proc = try #require(blocked["process"] as? [String: Any])
        #expect(proc["pid"] as? Int == Int(v1.pid))
        #expect((proc["file"] as? [String: Any])?["path"] as? String == w.path("v1"))
        let ext = try #require((blocked["unmapped"] as? [String: Any])?["revenant"] as? [String: Any])
        #expect(((ext["ancestry"] as? [[String: Any]])?.first?["pid"] as? Int) == Int(getpid()))
        #expect((proc["lineage"] as? [String])?.isEmpty == false)
        #expect(ext["rule"] as? [String] == ["block-v1"])
        #expect(ext["tier"] as? String == "kill-at-exec")

        let ok = try revenant(["audit", "verify", d.audit])
        #expect(ok.status == 0, "\(ok.err)")
        let ocsf = try ocsfValidate([d.audit])
        #expect(ocsf.status == 0, "every record validates as OCSF: \(ocsf.err)\n\(ocsf.out)")
        // Change one record in the middle: verify names the record after it.
        var tampered = lines
        tampered[1] = tampered[1].replacingOccurrences(of: "policy loaded", with: "policy-loaded")
        try (tampered.joined(separator: "\n") + "\n").write(toFile: d.audit, atomically: true, encoding: .utf8)
        let bad = try revenant(["audit", "verify", d.audit])
        #expect(bad.status == 1)
        #expect(bad.err.contains(":3: record 3 changed"), "\(bad.err)")
    }

    @Test func rotationKeepsTheChain() throws {
        let dir = uniqueTempPath("audit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/audit.jsonl"
        let log = try AuditLog(path: path, maxBytes: 2_000, keep: 3)
        for i in 0..<40 { try log.append(.daemon("tick", timeMs: Int64(i), detail: "record \(i)")) }
        log.close()
        // A restart continues the chain.
        let again = try AuditLog(path: path, maxBytes: 2_000, keep: 3)
        try again.append(.daemon("start", timeMs: 99))
        again.close()
        let files = [path + ".3", path + ".2", path + ".1", path].filter { FileManager.default.fileExists(atPath: $0) }
        #expect(files.count == 4, "rotated into 3 kept files plus the current one")
        let input = try files.map { f in (name: f, lines: try String(contentsOfFile: f, encoding: .utf8).components(separatedBy: "\n")) }
        #expect(AuditChain.verify(input) == nil)
        #expect(!FileManager.default.fileExists(atPath: path + ".4"), "older files beyond `keep` are dropped")
    }
}
