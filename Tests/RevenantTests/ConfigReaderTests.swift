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
