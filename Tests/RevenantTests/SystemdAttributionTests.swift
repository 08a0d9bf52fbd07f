import Foundation
import Glibc
import RevenantHost
import RevenantKernel
import RevenantStore
import RevenantQuery
import RevenantOutputs
import RevenantDaemon
import RevenantTestSupport
import Testing

/// A real systemd 252 as PID 1 of its own PID+mount namespace, on an overlay of / (see
/// scripts/systemd-ns.sh), drives `Restart=always`, a double-forking `Type=forking` service,
/// a timer, and rc.local starting a `while true` loop. The daemon on the host records them; who-spawned must
/// read the unit files through `/proc/<systemd>/root`, where alone they exist.
@Suite(.serialized) struct SystemdAttributionTests {
    static let units: [String: String] = [
        "rvtest.target": "[Unit]\nDescription=revenant test target\nDefaultDependencies=no\n",
        "training-worker.service": """
            [Unit]
            Description=training worker
            DefaultDependencies=no
            StartLimitIntervalSec=0

            [Service]
            ExecStart=/usr/bin/python3 /opt/rvtest/training_worker.py
            Restart=always
            RestartSec=1

            [Install]
            WantedBy=rvtest.target

            """,
        "forked-worker.service": """
            [Unit]
            DefaultDependencies=no
            StartLimitIntervalSec=0

            [Service]
            Type=forking
            ExecStart=/bin/sh -c 'nohup /usr/bin/python3 /opt/rvtest/forked_worker.py >/dev/null 2>&1 &'
            Restart=always
            RestartSec=1

            """,
        // Debian's rc-local.service, without the default dependencies that would boot the overlay.
        "rc-local.service": """
            [Unit]
            DefaultDependencies=no
            ConditionFileIsExecutable=/etc/rc.local

            [Service]
            Type=forking
            ExecStart=/etc/rc.local start
            RemainAfterExit=yes
            GuessMainPID=no

            """,
        "sweep.service": "[Unit]\nDefaultDependencies=no\n\n[Service]\nExecStart=/usr/bin/python3 /opt/rvtest/sweep.py\n",
        "sweep.timer": """
            [Unit]
            DefaultDependencies=no

            [Timer]
            OnActiveSec=1
            OnUnitActiveSec=2
            AccuracySec=100ms

            """,
    ]

    static let rcLocal = "#!/bin/sh -e\n# started at boot\n/opt/rvtest/loop.sh &\nexit 0\n"
    static let loop = "#!/bin/sh\nwhile true; do\n    /usr/bin/python3 /opt/rvtest/rc_worker.py\n    sleep 1\ndone\n"

    /// The namespaced systemd's root: the units, rc.local and its loop script, the workers.
    static func writeTree(_ dir: String) throws {
        let etc = dir + "/upper/etc/systemd/system"
        try FileManager.default.createDirectory(atPath: etc + "/rvtest.target.wants", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/upper/opt/rvtest", withIntermediateDirectories: true)
        for (name, text) in Self.units { try text.write(toFile: "\(etc)/\(name)", atomically: true, encoding: .utf8) }
        for u in ["training-worker.service", "forked-worker.service", "sweep.timer", "rc-local.service"] {
            try FileManager.default.createSymbolicLink(atPath: "\(etc)/rvtest.target.wants/\(u)", withDestinationPath: "../\(u)")
        }
        for w in ["training_worker.py", "forked_worker.py", "sweep.py", "rc_worker.py"] {
            try "import time\ntime.sleep(1)\n".write(toFile: "\(dir)/upper/opt/rvtest/\(w)", atomically: true, encoding: .utf8)
        }
        for (path, text) in [("/etc/rc.local", Self.rcLocal), ("/opt/rvtest/loop.sh", Self.loop)] {
            try text.write(toFile: dir + "/upper" + path, atomically: true, encoding: .utf8)
            chmod(dir + "/upper" + path, 0o755)
        }
    }

    static func argv(_ w: String) -> [String] { ["/usr/bin/python3", "/opt/rvtest/\(w)"] }

    static func line(of needle: String, in unit: String) -> Int {
        (units[unit]!.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0 == needle } ?? -2) + 1
    }

    @Test(.kernel, .timeLimit(.minutes(3))) func unitsAndATimerInANamespacedSystemd() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: "/lib/systemd/systemd"), "systemd is not installed")
        let dir = uniqueTempPath("sdns")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeTree(dir)

        let d = try DaemonUnderTest(name: "systemd")
        // An audit rule: its launches are attributed by the daemon, which then watches the
        // namespaced manager's configuration under its root.
        let policy = d.dir + "/policy.yaml"
        try "rules:\n  - name: watch-training\n    match: { script: /opt/rvtest/training_worker.py }\n    action: audit\n"
            .write(toFile: policy, atomically: true, encoding: .utf8)
        try await d.start(["--policy", policy])
        let boot = try sh([packageRoot + "/scripts/systemd-ns.sh", "start", dir, "rvtest.target"])
        defer { _ = try? sh([packageRoot + "/scripts/systemd-ns.sh", "stop", dir]) }
        try #require(boot.status == 0, "systemd did not boot: \(boot.err)")
        let systemd = try #require(Int(boot.out.trimmingCharacters(in: .whitespacesAndNewlines)))

        let argv = Self.argv
        var counts: [Int] = []
        for _ in 0..<60 {
            try await Task.sleep(for: .seconds(1))
            let store = try? Store(path: d.db, readOnly: true)
            counts = ["training_worker.py", "forked_worker.py", "sweep.py", "rc_worker.py"].map { (try? store?.instances(argv: argv($0)).count) ?? 0 }
            if counts.allSatisfy({ $0 >= 3 }) { break }
        }
        try #require(counts.allSatisfy { $0 >= 3 }, "instances seen (worker, forked, sweep, rc.local loop): \(counts)")
        try await d.settle()

        func respawn(_ w: String) throws -> [String: Any] {
            let latest = try #require(try Store(path: d.db, readOnly: true).instances(argv: argv(w)).first)
            let j = try whoSpawnedJSON(latest.record.id.pid, db: d.db, extra: ["--id", latest.record.id.description])
            return try #require(j["respawned_by"] as? [String: Any], "\(w): no respawned_by")
        }

        // A change inside the namespace, to the unit a finding named: recorded with its writer.
        for _ in 0..<100 where !d.logText.contains("respawn finding: /usr/bin/python3 /opt/rvtest/training_worker.py") {
            try await Task.sleep(for: .milliseconds(100))
        }
        try await Task.sleep(for: .milliseconds(500))
        #expect(try sh(["/usr/bin/nsenter", "-t", String(systemd), "-m", "-p", "-r", "-w", "/bin/sh", "-c",
                        "echo '# edited in the namespace' >> /etc/systemd/system/training-worker.service"]).status == 0)

        // An operator's restart: who-spawned names it under "started by".
        #expect(try sh([packageRoot + "/scripts/systemd-ns.sh", "ctl", dir, "restart", "training-worker.service"]).status == 0)
        try await Task.sleep(for: .seconds(2))
        try await d.settle()

        // Restart=always: the unit file's line, read inside the namespace's root.
        let r = try respawn("training_worker.py")
        let configured = (r["configured_by"] as? [[String: Any]])?.first
        #expect((configured?["command"] as? String)?.hasPrefix("/bin/sh -c echo") == true
                && (configured?["path"] as? String) == "/proc/\(systemd)/root/etc/systemd/system/training-worker.service",
                "the edit inside the namespace, under its root: \(r["configured_by"] ?? "none")")
        let started = (r["started_by"] as? [[String: Any]])?.first?["command"] as? String
        #expect(started?.hasSuffix("systemctl restart training-worker.service") == true, "\(r["started_by"] ?? "none")")
        #expect(r["mechanism"] as? String == "systemd service")
        #expect(r["unit"] as? String == "training-worker.service")
        #expect((r["spawner"] as? [String: Any])?["pid"] as? Int == systemd)
        #expect(r["config_root"] as? String == "/proc/\(systemd)/root")
        let src = try #require(r["source"] as? [String: Any])
        #expect(src["file"] as? String == "/etc/systemd/system/training-worker.service")
        #expect(src["line"] as? Int == Self.line(of: "Restart=always", in: "training-worker.service"))
        #expect((src["notes"] as? [String])?.contains("pulled in by rvtest.target.wants (enabled)") == true)
        #expect((r["settings"] as? [String: String]) == ["Restart": "always", "RestartSec": "1"])
        let rem = r["remediation"] as? [String] ?? []
        #expect(rem.first == "systemctl disable --now training-worker.service")
        #expect(rem.contains { $0.contains("cannot be masked") })

        try Self.otherRespawners(respawn, systemd: systemd)
        let text = try revenant(["who-spawned", String(try Store(path: d.db, readOnly: true).instances(argv: argv("sweep.py"))[0].record.id.pid), "--db", d.db])
        #expect(text.out.contains("Respawned by  systemd timer sweep.service"))
        #expect(text.out.contains("/etc/systemd/system/sweep.timer:5  OnActiveSec=1"))
        d.stop()
    }

    /// A double fork inside a unit, a timer, and rc.local's loop: each answered by its own configuration.
    static func otherRespawners(_ respawn: (String) throws -> [String: Any], systemd: Int) throws {
        // Double fork inside a unit: the shell is gone, the cgroup and the lineage still name systemd.
        let f = try respawn("forked_worker.py")
        #expect(f["mechanism"] as? String == "systemd service")
        #expect(f["unit"] as? String == "forked-worker.service")
        #expect((f["spawner"] as? [String: Any])?["pid"] as? Int == systemd)
        let fsrc = try #require(f["source"] as? [String: Any])
        #expect(fsrc["file"] as? String == "/etc/systemd/system/forked-worker.service")
        #expect(fsrc["line"] as? Int == Self.line(of: "Restart=always", in: "forked-worker.service"))

        // The timer, not the service, is what brings the sweep back.
        let t = try respawn("sweep.py")
        #expect(t["mechanism"] as? String == "systemd timer")
        #expect(t["unit"] as? String == "sweep.service")
        let tsrc = try #require(t["source"] as? [String: Any])
        #expect(tsrc["file"] as? String == "/etc/systemd/system/sweep.timer")
        #expect(tsrc["line"] as? Int == Self.line(of: "OnActiveSec=1", in: "sweep.timer"))
        #expect((tsrc["notes"] as? [String])?.contains("timer pulled in by rvtest.target.wants (enabled)") == true)
        #expect((t["remediation"] as? [String])?.first?.hasPrefix("systemctl disable --now sweep.timer") == true)

        // rc.local started a `while true` loop: the loop shell respawns, rc.local launched it.
        let l = try respawn("rc_worker.py")
        #expect(l["mechanism"] as? String == "shell loop")
        #expect(l["launcher_mechanism"] as? String == "rc.local")
        #expect((l["spawner"] as? [String: Any])?["argv"] as? [String] == ["/bin/sh", "/opt/rvtest/loop.sh"])
        let lsrc = try #require(l["source"] as? [String: Any])
        #expect(lsrc["file"] as? String == "/opt/rvtest/loop.sh")
        #expect(lsrc["line"] as? Int == 3)
        let lrem = l["remediation"] as? [String] ?? []
        let loopPid = (l["spawner"] as? [String: Any])?["pid"] as? Int ?? -1
        #expect(lrem.first?.hasPrefix("kill \(loopPid)") == true, "the loop shell before its child")
        #expect(lrem.contains("# started at boot by /etc/rc.local:3: /opt/rvtest/loop.sh &"))
    }
}
