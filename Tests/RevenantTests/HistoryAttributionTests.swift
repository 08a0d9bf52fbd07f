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

/// A day of one host's history in one store, through the real daemon and the real managers:
/// the same worker under supervisord, then a unit in a namespaced systemd, then cron while the
/// unit still runs it; inline loops in a unit and in rc.local; a loop reading its commands from
/// standard input with `/etc/shadow` as its operand. Every answer is asked after the fact.
@Suite(.serialized) struct HistoryAttributionTests {
    static let loopUnit = """
        [Unit]
        DefaultDependencies=no
        StartLimitIntervalSec=0

        [Service]
        ExecStart=/bin/sh -c 'i=0; while true; do i=$$((i+1)); /usr/bin/python3 /opt/rvtest/varying.py --id $$i; sleep 1; done'
        Restart=always

        """
    static let rcLocal = "#!/bin/sh -e\n# boot\n( while true; do /usr/bin/python3 /opt/rvtest/inline_worker.py; sleep 1; done ) &\nexit 0\n"

    /// supervisord from a config that is not the default one, running the worker as `shared`.
    static func supervisordConf(host: String, worker: String) throws -> String {
    let conf = host + "/supervisord.conf"
    try """
        [supervisord]
        nodaemon=true
        logfile=\(host)/supervisord.log
        pidfile=\(host)/supervisord.pid
        [unix_http_server]
        file=\(host)/supervisor.sock
        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
        [program:shared]
        command=/usr/bin/python3 \(worker) --id 1
        autorestart=true
        startsecs=0
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        return conf
    }

    /// The namespaced systemd's units: the worker's, an inline loop's, rc.local's, all wanted by rvtest.target.
    static func writeUnits(ns: String, worker: String) throws {
        let etc = ns + "/upper/etc/systemd/system"
        try FileManager.default.createDirectory(atPath: etc + "/rvtest.target.wants", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: ns + "/upper/opt/rvtest", withIntermediateDirectories: true)
        let units = [
            "rvtest.target": "[Unit]\nDefaultDependencies=no\n",
            "shared.service": "[Unit]\nDefaultDependencies=no\nStartLimitIntervalSec=0\n\n[Service]\nExecStart=/usr/bin/python3 \(worker) --id 2\nRestart=always\nRestartSec=1\n",
            "loop.service": Self.loopUnit,
            "rc-local.service": "[Unit]\nDefaultDependencies=no\n\n[Service]\nType=forking\nExecStart=/etc/rc.local start\nRemainAfterExit=yes\nGuessMainPID=no\n",
        ]
        for (name, text) in units { try text.write(toFile: "\(etc)/\(name)", atomically: true, encoding: .utf8) }
        for u in ["shared.service", "loop.service", "rc-local.service"] {
            try FileManager.default.createSymbolicLink(atPath: "\(etc)/rvtest.target.wants/\(u)", withDestinationPath: "../\(u)")
    }
    for w in ["varying.py", "inline_worker.py"] {
        try "import time\ntime.sleep(1)\n".write(toFile: "\(ns)/upper/opt/rvtest/\(w)", atomically: true, encoding: .utf8)
    }
    try Self.rcLocal.write(toFile: ns + "/upper/etc/rc.local", atomically: true, encoding: .utf8)
    chmod(ns + "/upper/etc/rc.local", 0o755)
    }

    @Test(.kernel, .timeLimit(.minutes(6))) func oneStoreSeveralRespawnersEachAnsweredRight() async throws {
        try Kernel.check()
        for tool in ["/usr/sbin/cron", "/usr/bin/supervisord", "/lib/systemd/systemd"] {
            try #require(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is not installed: run scripts/install-deps.sh test")
        }
        // Outside /tmp: the namespaced systemd mounts its own /tmp, and sees the host's /var/tmp.
        let host = "/var/tmp/rvtest-history-\(getpid())"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: host) }
        chmod(host, 0o755)
        let worker = host + "/shared_worker.py"
        try "import time\ntime.sleep(1)\n".write(toFile: worker, atomically: true, encoding: .utf8)
        let program = "/usr/bin/python3 " + worker

        let d = try DaemonUnderTest(name: "history")
        try await d.start()
        func count(_ p: String) -> Int {
            (try? Store(path: d.db, readOnly: true).instances(program: Program(executable: "/usr/bin/python3", script: p)).count) ?? 0
        }
        func waitFor(_ what: String, seconds: Int, _ ok: () -> Bool) async throws {
            for _ in 0..<(seconds * 2) where !ok() { try await Task.sleep(for: .milliseconds(500)) }
            try #require(ok(), "\(what): not seen in \(seconds) s")
        }

        // Morning: supervisord, from a config that is not the default one.
        let conf = try Self.supervisordConf(host: host, worker: worker)
        let sup = spawn(["/usr/bin/supervisord", "-c", conf], wait: false)
        try await waitFor("supervisord's instances", seconds: 20) { count(worker) >= 3 }
        kill(sup.pid, SIGTERM)
        var st: Int32 = 0
        waitpid(sup.pid, &st, 0)
        let bySupervisord = count(worker)

        // Then a unit in a namespaced systemd, with an inline loop unit and rc.local's inline loop.
        let ns = host + "/sdns"
        try Self.writeUnits(ns: ns, worker: worker)
        let boot = try sh([packageRoot + "/scripts/systemd-ns.sh", "start", ns, "rvtest.target"])
        defer { _ = try? sh([packageRoot + "/scripts/systemd-ns.sh", "stop", ns]) }
        try #require(boot.status == 0, "systemd did not boot: \(boot.err)")
        let systemd = try #require(Int(boot.out.trimmingCharacters(in: .whitespacesAndNewlines)))
        try await waitFor("the unit's instances", seconds: 30) { count(worker) >= bySupervisord + 3 }

        // And cron, at the same time as the unit: two respawners of one program at once.
        let cronFile = "/etc/cron.d/rvtest-history-\(getpid())"
        let job = "pgrep -f no-such-[r]vtest >/dev/null || nohup /usr/bin/python3 \(worker) --id 3 >/dev/null 2>&1 &"
        try "* * * * * root \(job)\n".write(toFile: cronFile, atomically: true, encoding: .utf8)
        defer { unlink(cronFile) }
        let cron = spawn(["/usr/sbin/cron", "-f", "-L", "0"], wait: false)
        defer { kill(cron.pid, SIGTERM); var s: Int32 = 0; waitpid(cron.pid, &s, 0) }

        // A loop that reads its commands from standard input: `/etc/shadow` is only its $0.
        let root = host + "/root"
        try "#!/bin/sh\nsleep 1\n".write(toFile: root, atomically: true, encoding: .utf8)
        chmod(root, 0o755)
        let stdinLoop = spawn(["/bin/sh", "-c", "printf 'while true; do \(root); sleep 1; done\\n' | exec /bin/bash -s /etc/shadow"], wait: false)
        defer {
            let kids = childrenOf(stdinLoop.pid)   // bash, before its parent goes and it is adopted
            kill(stdinLoop.pid, SIGKILL)
            for c in kids { kill(c, SIGKILL) }
            var s: Int32 = 0
            waitpid(stdinLoop.pid, &s, 0)
        }

        func byCron() -> [StoredProcess] {
            ((try? Store(path: d.db, readOnly: true).instances(argv: ["/usr/bin/python3", worker, "--id", "3"])) ?? [])
        }
        try await waitFor("cron's instances", seconds: 160) { byCron().count >= 2 }
        try await d.settle()
        let answers = Answers(db: d.db, worker: worker, program: program, conf: conf, cronFile: cronFile, systemd: systemd,
                              cron: cron.pid, supervisord: sup.pid, root: root)
        try answers.unitAndCron(cronInstances: byCron())
        try answers.supervisordAndLoops()
        try answers.stdinLoop()
        d.stop()
    }

    /// The answers asked after the fact, one respawner at a time.
    struct Answers {
        let db: String, worker: String, program: String, conf: String, cronFile: String
        let systemd: Int, cron: pid_t, supervisord: pid_t, root: String

        var store: Store { get throws { try Store(path: db, readOnly: true) } }

            func answer(_ p: StoredProcess) throws -> [String: Any] {
                let j = try whoSpawnedJSON(p.record.id.pid, db: db, extra: ["--id", p.record.id.description])
                let r = try #require(j["respawned_by"] as? [String: Any], "no respawned_by for \(p.record.id)")
                for c in r["remediation"] as? [String] ?? [] {
                    #expect((try sh(["/bin/sh", "-n", "-c", c])).status == 0, "remediation does not parse: \(c)")
                }
                return r
            }
            func spawner(_ r: [String: Any]) -> [String: Any] { r["spawner"] as? [String: Any] ?? [:] }
            func also(_ r: [String: Any]) -> [[String: Any]] { r["also_respawned_by"] as? [[String: Any]] ?? [] }

        func unitAndCron(cronInstances: [StoredProcess]) throws {
            let store = try store
            // The unit's instance: systemd, this unit's Restart= line; cron and supervisord after it.
            let unitInstance = try #require(try store.instances(argv: ["/usr/bin/python3", worker, "--id", "2"]).first)
            let u = try answer(unitInstance)
            #expect(u["mechanism"] as? String == "systemd service", "\(u)")
            #expect(u["unit"] as? String == "shared.service")
            #expect(spawner(u)["pid"] as? Int == systemd)
            #expect((u["source"] as? [String: Any])?["file"] as? String == "/etc/systemd/system/shared.service")
            #expect(u["program"] as? String == program)
            #expect((u["evidence"] as? [String])?.first?.contains("forked under systemd(\(systemd))") == true, "header and evidence name one spawner: \(u)")
            #expect(also(u).contains { $0["mechanism"] as? String == "cron" && ($0["source"] as? String) == "\(cronFile):1" }, "\(also(u))")
            #expect(also(u).contains { $0["mechanism"] as? String == "supervisord" && ($0["source"] as? String)?.hasPrefix(conf + ":") == true }, "\(also(u))")

            // Cron's instance: cron, its line, a remediation that stops the worker by its program.
            let c = try answer(try #require(cronInstances.first))
            #expect(c["mechanism"] as? String == "cron", "\(c)")
            #expect(spawner(c)["pid"] as? Int == Int(cron))
            #expect((c["source"] as? [String: Any])?["file"] as? String == cronFile)
            let crem = c["remediation"] as? [String] ?? []
            #expect(crem.contains { $0.hasPrefix("pkill -f -- '^/usr/bin/python3 \(worker.replacingOccurrences(of: ".", with: "\\."))( |$)'") }, "\(crem)")
            #expect(also(c).contains { $0["mechanism"] as? String == "systemd service" && $0["unit"] as? String == "shared.service" }, "\(also(c))")
        }

        func supervisordAndLoops() throws {
            let store = try store
            // The morning's instance, asked after supervisord is gone: supervisord, its own config.
            let morning = try #require(try store.instances(argv: ["/usr/bin/python3", worker, "--id", "1"]).first)
            let s = try answer(morning)
            #expect(s["mechanism"] as? String == "supervisord", "\(s)")
            #expect(spawner(s)["pid"] as? Int == Int(supervisord))
            #expect((s["source"] as? [String: Any])?["file"] as? String == conf)
            #expect((s["remediation"] as? [String])?.first == "supervisorctl -c '\(conf)' stop 'shared'")

            // A unit whose ExecStart is an inline loop, its worker's arguments changing every time.
            let varying = try #require(try store.instances(program: Program(executable: "/usr/bin/python3", script: "/opt/rvtest/varying.py")).first)
            let v = try answer(varying)
            #expect(v["mechanism"] as? String == "shell loop", "\(v)")
            #expect(v["launcher_mechanism"] as? String == "systemd service")
            #expect(v["unit"] as? String == "loop.service")
            let vsrc = try #require(v["source"] as? [String: Any], "\(v)")
            #expect(vsrc["file"] as? String == "/etc/systemd/system/loop.service")
            #expect((vsrc["text"] as? String)?.hasPrefix("ExecStart=/bin/sh -c 'i=0; while true") == true)
            #expect((v["command_lines"] as? [String])?.count ?? 0 >= 2, "one program, several command lines: \(v)")
            #expect((v["instances"] as? Int) ?? 0 >= 2)

            // rc.local's inline `( while … ) &`: a forked subshell, named by its comm, its line.
            let inline = try #require(try store.instances(program: Program(executable: "/usr/bin/python3", script: "/opt/rvtest/inline_worker.py")).first)
            let l = try answer(inline)
            #expect(l["mechanism"] as? String == "shell loop", "\(l)")
            #expect(l["launcher_mechanism"] as? String == "rc.local")
            #expect(spawner(l)["comm"] as? String == "rc.local")
            #expect((l["source"] as? [String: Any])?["file"] as? String == "/etc/rc.local")
            #expect((l["source"] as? [String: Any])?["line"] as? Int == 3)
            let text = try revenant(["who-spawned", String(inline.record.id.pid), "--db", db, "--id", inline.record.id.description])
            #expect(!text.out.contains("?("), "a spawner whose comm the kernel saw is never `?`: \(text.out)")
        }

        func stdinLoop() throws {
            let store = try store
            // `bash -s /etc/shadow`: the operand is not a script; no byte of the file is printed.
            let rootRun = try #require(try store.matching(root).first { $0.record.image?.filename == root }, "no run of \(root)")
            let h = try answer(rootRun)
            #expect(h["mechanism"] as? String == "shell loop", "\(h)")
            #expect(h["source"] == nil || h["source"] is NSNull, "no source line: \(h)")
            let shadow = try String(contentsOfFile: "/etc/shadow", encoding: .utf8).split(separator: "\n").map(String.init)
            let all = try revenant(["who-spawned", String(rootRun.record.id.pid), "--db", db, "--id", rootRun.record.id.description])
            let json = try revenant(["who-spawned", String(rootRun.record.id.pid), "--db", db, "--id", rootRun.record.id.description, "--json"])
            for line in shadow where line.contains(":") {
                #expect(!all.out.contains(line) && !json.out.contains(line), "a line of /etc/shadow was printed")
            }
        }
    }
}
