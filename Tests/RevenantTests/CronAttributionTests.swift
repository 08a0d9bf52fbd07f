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
