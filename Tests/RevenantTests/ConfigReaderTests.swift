import Foundation
import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import RevenantTestSupport
import Testing

/// Configuration readers over fixture trees (no root, no kernel).
struct Fixture {
    let root = uniqueTempPath("fix")
    func write(_ path: String, _ text: String) throws {
        let full = root + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }
    func link(_ path: String, to target: String) throws {
        let full = root + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: full, withDestinationPath: target)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: root) }
}

/// Whether `sh -n` accepts the command as printed.
func shellParses(_ command: String) -> Bool {
    (try? sh(["/bin/sh", "-n", "-c", command]).status) == 0
}

@Suite struct ConfigReaderTests {
    @Test func systemdUnitWithDropInWantsAndTimer() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/etc/systemd/system/training-worker.service", """
            [Unit]
            Description=worker

            [Service]
            ExecStart=/usr/bin/python3 /opt/ai-video-codec/workers/training_worker.py
            Restart=on-failure
            RestartSec=10

            [Install]
            WantedBy=multi-user.target
            """)
        try f.write("/etc/systemd/system/training-worker.service.d/override.conf", "[Service]\nRestart=always\nRestartSec=360\n")
        try f.link("/etc/systemd/system/multi-user.target.wants/training-worker.service", to: "/etc/systemd/system/training-worker.service")
        try f.write("/lib/systemd/system/training-worker.timer", "[Timer]\nOnCalendar=hourly\n")
        let s = try #require(SystemdReader(root: f.root).unit("training-worker.service"))
        #expect(s.settings["Restart"] == "always")
        #expect(s.settings["RestartSec"] == "360")
        #expect(s.file == "/etc/systemd/system/training-worker.service.d/override.conf")
        #expect(s.line == 2)
        #expect(s.notes.contains("pulled in by multi-user.target.wants (enabled)"))
        #expect(s.notes.contains { $0.contains("training-worker.timer") })
        #expect(s.remediation.first == "systemctl disable --now training-worker.timer")
        #expect(s.remediation.contains("systemctl disable --now training-worker.service"))
        #expect(s.remediation.contains { $0.contains("cannot be masked") })
    }

    @Test func timerWithUnitNamesItsTriggerLine() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/etc/systemd/system/sweep.service", "[Service]\nExecStart=/opt/sweep\n")
        try f.write("/etc/systemd/system/nightly.timer", "[Unit]\nDescription=x\n\n[Timer]\nOnCalendar=*-*-* 03:00\nUnit=sweep.service\n")
        try f.write("/lib/systemd/system/sweep.timer", "[Timer]\nOnBootSec=5\n")
        try f.write("/etc/systemd/system/timers.target.wants/nightly.timer", "")
        let r = SystemdReader(root: f.root)
        let t = try #require(r.timer(for: "sweep.service"))
        #expect(t.file == "/etc/systemd/system/nightly.timer", "Unit= wins over the same-named timer further down the path")
        #expect(t.line == 5)
        #expect(t.settings["OnCalendar"] == "*-*-* 03:00")
        #expect(t.notes.contains("timer pulled in by timers.target.wants (enabled)"))
        #expect(t.remediation.first?.hasPrefix("systemctl disable --now nightly.timer") == true)
        #expect(r.timer(for: "other.service") == nil)
    }

    @Test func templatedUnit() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/lib/systemd/system/worker@.service", "[Service]\nExecStart=/opt/w %i\nRestart=always\n")
        let s = try #require(SystemdReader(root: f.root).unit("worker@3.service"))
        #expect(s.file == "/lib/systemd/system/worker@.service")
        #expect(s.line == 3)
        #expect(s.remediation.contains("systemctl mask worker@3.service   # so nothing can start it again"))
    }

    @Test func cronFilesUsersAndIgnoredNames() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/etc/crontab", "SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n")
        try f.write("/etc/cron.d/worker", "# respawn\n* * * * * root pgrep -f training_worker.py || nohup python3 /opt/w/training_worker.py &\n")
        try f.write("/etc/cron.d/worker.disabled", "* * * * * root python3 /opt/w/other.py\n")
        try f.write("/var/spool/cron/crontabs/alice", "MAILTO=\"\"\n*/5 * * * * /home/alice/bin/sync.sh\n")
        let r = CronReader(root: f.root)
        let s = try #require(r.find(command: "pgrep -f training_worker.py || nohup python3 /opt/w/training_worker.py &"))
        #expect(s.file == "/etc/cron.d/worker")
        #expect(s.line == 2)
        #expect(s.settings["user"] == "root")
        #expect(s.notes.contains { $0.contains("worker.disabled") })
        #expect(s.notes.contains { $0.contains("always finds something") && $0.contains("'[t]raining_worker.py'") })
        #expect(CronReader.selfMatchingPgrep("pgrep -f '[t]raining' || x") == nil)
        #expect(CronReader.selfMatchingPgrep("pgrep training || x") == nil, "without -f pgrep matches the name only")
        #expect(r.find(command: "python3 /opt/w/other.py") == nil, "cron ignores files with a dot in the name")
        let u = try #require(r.find(command: "/home/alice/bin/sync.sh"))
        #expect(u.file == "/var/spool/cron/crontabs/alice")
        #expect(u.line == 2)
        #expect(u.remediation.first == "crontab -u alice -l | grep -vxF '*/5 * * * * /home/alice/bin/sync.sh' | crontab -u alice -   # alice's crontab, not root's")
        #expect(!CronReader.cronDNameValid("a.b"))
        #expect(CronReader.cronDNameValid("php-sessionclean_2"))
    }

    @Test func supervisordIncludesAndDefaults() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/etc/supervisor/supervisord.conf", "[supervisord]\nlogfile=/var/log/s.log\n\n[include]\nfiles = conf.d/*.conf\n")
        try f.write("/etc/supervisor/conf.d/worker.conf", "[program:other]\ncommand=/bin/true\n\n[program:training-worker]\ncommand=/usr/bin/python3 /opt/w/training_worker.py\nautostart=true\nautorestart=true\n")
        let r = SupervisorReader(root: f.root)
        let s = try #require(r.find(supervisordArgv: ["/usr/bin/python3", "/usr/bin/supervisord"], cwd: "/",
                                     workerArgv: ["/usr/bin/python3", "/opt/w/training_worker.py"]))
        #expect(s.file == "/etc/supervisor/conf.d/worker.conf")
        #expect(s.line == 5)
        #expect(s.settings["program"] == "training-worker")
        #expect(s.settings["autorestart"] == "true")
        #expect(s.remediation.last == "supervisorctl reread && supervisorctl update")
        // An explicit -c wins over the defaults.
        try f.write("/srv/sup.conf", "[program:x]\ncommand=/opt/x --fast\n")
        let c = try #require(r.find(supervisordArgv: ["supervisord", "-c", "/srv/sup.conf"], cwd: "/", workerArgv: ["/opt/x", "--fast"]))
        #expect(c.file == "/srv/sup.conf" && c.line == 2)
        // supervisorctl must talk to the server that read that file, with paths under the root.
        #expect(c.remediation.first == "supervisorctl -c '\(f.root)/srv/sup.conf' stop 'x'")
        #expect(c.remediation.last == "supervisorctl -c '\(f.root)/srv/sup.conf' reread && supervisorctl -c '\(f.root)/srv/sup.conf' update")
        #expect(c.remediation.allSatisfy { shellParses($0) })
    }

    @Test func cronStopsTheWorkerByItsProgramNotTheJobLine() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/etc/cron.d/worker", "* * * * * root pgrep -f '[w]orker.py' || nohup python3 /opt/w/worker.py --id 3 &\n")
        let s = try #require(CronReader(root: f.root).find(command: "pgrep -f '[w]orker.py' || nohup python3 /opt/w/worker.py --id 3 &",
                                                       worker: ["python3", "/opt/w/worker.py", "--id", "3"]))
        #expect(s.remediation == ["sed -i '1s/^/# /' '\(f.root)/etc/cron.d/worker'   # cron re-reads it within a minute",
                                  "pkill -f -- '^python3 /opt/w/worker\\.py( |$)'   # then stop the instances it already started"])
        #expect(s.remediation.allSatisfy { shellParses($0) })
        // The pattern matches the instances, with any arguments, and not the job's shell.
        let pattern = try #require(programPattern(["python3", "/opt/w/worker.py", "--id", "3"]))
        let grep = { (line: String) in (try? sh(["/bin/grep", "-Eq", "--", pattern], input: line + "\n").status) == 0 }
        #expect(grep("python3 /opt/w/worker.py --id 4"))
        #expect(grep("python3 /opt/w/worker.py"))
        #expect(!grep("python3 /opt/w/worker.pyc"))
        #expect(!grep("/bin/sh -c pgrep -f '[w]orker.py' || nohup python3 /opt/w/worker.py --id 3 &"))
    }

    @Test func anInlineLoopInAUnitIsItsExecStartLine() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/etc/systemd/system/loop.service", "[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/sh -c 'while true; do /opt/w; sleep 1; done'\nRestart=always\n")
        let s = try #require(SystemdReader(root: f.root).unit("loop.service", line: "ExecStart"))
        #expect(s.line == 5)
        #expect(s.text.hasPrefix("ExecStart=/bin/sh -c 'while true"))
        #expect(s.settings["Restart"] == "always")
        #expect(SystemdReader(root: f.root).unit("loop.service")?.line == 6, "by default the Restart= line")
    }

    @Test func rcLocalLine() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/etc/rc.local", "#!/bin/sh\n# boot\n/opt/loop.sh &\nexit 0\n")
        let s = try #require(ScriptReader(root: f.root).find(in: "/etc/rc.local", command: ["/bin/bash", "/opt/loop.sh"]))
        #expect(s.line == 3)
    }

    @Test func environmentMarkersOfALiveProcessOnly() throws {
        let child = spawn(["/usr/bin/env", "TRIGGER_UNIT=sweep.timer", "SUPERVISOR_PROCESS_NAME=w", "SECRET=x", "/bin/sleep", "5"], wait: false)
        defer { kill(child.pid, SIGKILL); var s: Int32 = 0; waitpid(child.pid, &s, 0) }
        let r = ProcReader()
        var id = r.identity(child.pid)
        var m: [String: String] = [:]
        for _ in 0..<50 {
            usleep(20_000)
            id = r.identity(child.pid)
            if let id { m = r.markers(id) }
            if m["TRIGGER_UNIT"] != nil { break }
        }
        #expect(m == ["TRIGGER_UNIT": "sweep.timer", "SUPERVISOR_PROCESS_NAME": "w"], "markers only, never other variables")
        let stale = Identity(pid: child.pid, startTicks: (id?.startTicks ?? 0) + 1)
        #expect(r.markers(stale).isEmpty, "another incarnation of the PID gives nothing")
    }
}

/// Configuration is read as the process that uses it sees it, and nothing else.
@Suite struct SafeReadTests {
    @Test func aFIFOADeviceAndAHugeFileAreRefusedWithoutHanging() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/opt/ok.sh", "while true; do /opt/w; done\n")
        try FileManager.default.createDirectory(atPath: f.root + "/run", withIntermediateDirectories: true)
        #expect(mkfifo(f.root + "/run/fifo", 0o644) == 0)
        try f.link("/opt/zero", to: "/dev/zero")
        FileManager.default.createFile(atPath: f.root + "/opt/huge", contents: Data(repeating: 0x41, count: SafeRead.maxBytes + 1))
        #expect((try? SafeRead.lines("/opt/ok.sh", root: f.root).get())?.first == "while true; do /opt/w; done")
        #expect(SafeRead.lines("/run/fifo", root: f.root) == .failure(.notRegular("a FIFO")))
        // Resolved inside the root: the fixture has no /dev/zero of its own.
        #expect(SafeRead.lines("/opt/zero", root: f.root) == .failure(.missing))
        #expect(SafeRead.lines("/dev/zero") == .failure(.notRegular("a character device")))
        #expect(SafeRead.lines("/opt/huge", root: f.root) == .failure(.tooLarge))
        #expect(SafeRead.lines("/opt/none", root: f.root) == .failure(.missing))
    }

    @Test func anAbsoluteSymlinkStaysInsideTheRoot() throws {
        let f = Fixture(); defer { f.cleanup() }
        let host = uniqueTempPath("hostfile")
        try "host secret\n".write(toFile: host, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: host) }
        try f.link("/etc/rc.local", to: host)
        #expect(SafeRead.lines("/etc/rc.local", root: f.root) == .failure(.missing), "the root has no such file")
        try f.write(host, "container copy\n")
        #expect((try? SafeRead.lines("/etc/rc.local", root: f.root).get())?.first == "container copy")
    }

    @Test func aPathFromACommandLineIsReadOnlyIfItsUserCould() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/etc/shadow", "root:*:19000:0:99999:7:::\n")
        chmod(f.root + "/etc/shadow", 0o640)
        #expect(SafeRead.lines("/etc/shadow", root: f.root, user: (uid: 1000, gid: 1000)) == .failure(.notReadableBy(1000)))
        #expect((try? SafeRead.lines("/etc/shadow", root: f.root, user: (uid: 0, gid: 0)).get()) != nil)
    }

    /// A hostile loop: `bash -s /etc/shadow < loop.sh` respawning a program named `root`.
    @Test func aHostileLoopGetsNoSourceAndPrintsNothingOfTheFile() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/etc/shadow", "root:*:19000:0:99999:7:::\n")
        let shell = Build.record(500, 1_000, ["/bin/bash", "-s", "/etc/shadow"])
        let runs = (0..<3).map { i in
            Instance(process: Build.record(600 + Int32(i), 2_000 + UInt64(i), ["root"], parent: shell.id), ancestry: [shell],
                     startWallNs: Int64(2_000 + i) * 1_000_000_000, exitWallNs: nil)
        }
        let rep = Attributor.report(Attribution.analyze(runs), instances: runs, root: f.root, reader: ProcReader())
        #expect(rep.mechanism == "shell loop")
        #expect(rep.source == nil)
        let text = "\(rep.evidence) \(rep.remediation)"
        #expect(!text.contains("19000") && !text.contains("shadow:"), "\(text)")
        #expect(!rep.remediation.contains { $0.contains("/etc/shadow") })
    }

    @Test func aLoopScriptNamesTheLineThatRunsTheWorkerAndTheStopsParse() throws {
        let f = Fixture(); defer { f.cleanup() }
        let worker = ["/usr/bin/python3", "/opt/w/training_worker.py", "--name", "it's"]
        try f.write("/opt/loop.sh", "#!/bin/sh\nW=/opt/w/training_worker.py\nwhile true; do\n  /usr/bin/python3 /opt/w/training_worker.py --name \"it's\"\n  sleep 1\ndone\n")
        let shell = Build.record(500, 1_000, ["/bin/sh", "/opt/loop.sh"])
        let runs = (0..<3).map { i in
            Instance(process: Build.record(600 + Int32(i), 2_000 + UInt64(i), worker, parent: shell.id), ancestry: [shell],
                     startWallNs: Int64(2_000 + i) * 1_000_000_000, exitWallNs: nil)
        }
        let rep = Attributor.report(Attribution.analyze(runs), instances: runs, root: f.root, reader: ProcReader())
        #expect(rep.source?.file == "/opt/loop.sh")
        #expect(rep.source?.line == 4, "the line that runs it, not the assignment")
        let script = rep.remediation.joined(separator: "\n")
        let check = try sh(["/bin/sh", "-n", "-c", script])
        #expect(check.status == 0, "remediation parses as shell: \(script) \(check.err)")
        #expect(script.contains("pkill -f -- '^/usr/bin/python3 /opt/w/training_worker\\.py --name it'\\''s'"), "\(script)")
    }
}

@Suite struct SpawnerNameTests {
    /// A `( while … ) &` subshell forked by rc.local never exec'd: the kernel still named it.
    @Test func aForkedSubshellIsNamedByItsComm() {
        let sub = ProcessRecord(id: Identity(pid: 700, startNs: 1_000), parent: nil, comm: "rc.local")
        let runs = (0..<3).map { i in
            Instance(process: Build.record(800 + Int32(i), 2_000 + UInt64(i), ["/usr/bin/python3", "/opt/w.py"], parent: sub.id),
                     ancestry: [sub], startWallNs: Int64(2_000 + i) * 1_000_000_000, exitWallNs: nil)
        }
        let rep = Attributor.report(Attribution.analyze(runs), instances: runs, root: "/nonexistent", reader: ProcReader())
        #expect(rep.spawner?.name == "rc.local")
        #expect(rep.spawner?.comm == "rc.local")
    }
}

@Suite struct AcrossBootsTests {
    /// PID 1 is a new process every boot; the unit file is the respawner that stays.
    @Test func aUnitInTwoBootsIsOneRespawnerAndCronStaysApart() throws {
        let f = Fixture(); defer { f.cleanup() }
        try f.write("/etc/systemd/system/w.service", "[Service]\nExecStart=/usr/bin/python3 /opt/w.py\nRestart=always\n")
        try f.write("/etc/cron.d/w", "* * * * * root /usr/bin/python3 /opt/w.py --id 9\n")
        var runs: [Instance] = []
        for (boot, base) in [(0, 0), (1, 1_000)] {
            let pid1 = ProcessRecord(id: Identity(pid: 1, startNs: UInt64(boot * 7 + 1)), parent: nil, comm: "systemd")
            for i in 0..<3 {
                let w = Build.record(Int32(100 + base + i), UInt64(base + i + 10), ["/usr/bin/python3", "/opt/w.py"], cgroup: "w.service")
                runs.append(Instance(process: w, ancestry: [pid1], startWallNs: Int64(base + i) * 1_000_000_000, exitWallNs: nil))
            }
        }
        let cron = Build.record(500, 5, ["/usr/sbin/cron", "-f"])
        for i in 0..<2 {
            let job = Build.record(Int32(600 + i * 3), UInt64(600 + i), ["/usr/sbin/CRON", "-f"])
            let shell = Build.record(Int32(601 + i * 3), UInt64(600 + i), ["/bin/sh", "-c", "/usr/bin/python3 /opt/w.py --id 9"])
            let w = Build.record(Int32(602 + i * 3), UInt64(601 + i), ["/usr/bin/python3", "/opt/w.py", "--id", "9"])
            runs.append(Instance(process: w, ancestry: [shell, job, cron], startWallNs: Int64(500 + i) * 1_000_000_000, exitWallNs: nil))
        }
        let latest = runs[5].process.id   // the second boot's newest unit instance
        let rep = Attributor.report(grouping: runs, target: latest, root: f.root, reader: ProcReader())
        #expect(rep.mechanism == "systemd service")
        #expect(rep.spawner?.id == Identity(pid: 1, startNs: 8).description, "this instance's own PID 1")
        #expect(rep.instances == 6, "both boots' instances under the one unit: \(rep.evidence)")
        #expect(rep.also_respawned_by.map(\.mechanism) == ["cron"])
        #expect(rep.also_respawned_by.first?.source == "/etc/cron.d/w:1")
        #expect(rep.command_lines == ["/usr/bin/python3 /opt/w.py"])
    }
}

@Suite struct LineFileTests {
    @Test func linesAcrossChunksAndAtTheEnd() throws {
        let dir = uniqueTempPath("lines")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let long = String(repeating: "x", count: (1 << 20) + 17)   // longer than one read
        let lines = ["first", "", long, "ünïcode", "no newline at the end"]
        let path = dir + "/f"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(Array(LineFile(path: path)) == lines)
        #expect(Array(LineFile(path: dir + "/absent")).isEmpty)
        #expect(!LineFile(path: dir + "/absent").readable)
    }
}
