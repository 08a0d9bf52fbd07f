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
import Synchronization
import Testing

/// Who wrote the files respawn mechanisms read, recorded by the daemon from fanotify with the
/// writer's fork-time ancestry, written by the real tools.
@Suite(.serialized) struct ConfigProvenanceTests {
    private func until(_ seconds: Int, _ cond: () throws -> Bool) async throws {
        for _ in 0..<(seconds * 10) where !(try cond()) { try await Task.sleep(for: .milliseconds(100)) }
    }

    @Test(.kernel, .timeLimit(.minutes(3))) func changesAreAttributedToTheirWriters() async throws {
        try Kernel.check()
        for tool in ["/usr/bin/crontab", "/usr/bin/dpkg-deb", "/usr/bin/dpkg"] {
            try #require(FileManager.default.isExecutableFile(atPath: tool), "\(tool) missing: run scripts/install-deps.sh test")
        }
        try #require(FileManager.default.fileExists(atPath: "/etc/supervisor/conf.d"), "supervisor is not installed: run scripts/install-deps.sh test")
        let d = try DaemonUnderTest(name: "provenance")
        try await d.start()
        // Marked right after the first read of /proc: wait for it before writing anything.
        try await until(10) { d.logText.contains("configuration sources watched") }
        try #require(d.logText.contains("configuration sources watched"), "\(d.logText)")
        let tag = "rvprov\(getpid())"

        // A user crontab installed from a shell.
        let cronFile = d.dir + "/cron"
        try "*/5 * * * * /usr/bin/true \(tag)\n".write(toFile: cronFile, atomically: true, encoding: .utf8)
        // From a login session: the shell runs under a loginuid its parent set, as sshd's child does.
        #expect(try sh(["/bin/sh", "-c", "echo 1000 > /proc/self/loginuid && /bin/bash -c 'crontab -u nobody \(cronFile); true'"]).status == 0)
        defer { _ = try? sh(["/usr/bin/crontab", "-u", "nobody", "-r"]) }
        // A supervisord config written by a script.
        let conf = "/etc/supervisor/conf.d/\(tag).conf"
        let script = d.dir + "/write-conf.sh"
        try "cat > \(conf) <<'EOF'\n[program:\(tag)]\ncommand=/usr/bin/sleep 1\nautostart=false\nEOF\n".write(toFile: script, atomically: true, encoding: .utf8)
        #expect(try sh(["/bin/sh", script]).status == 0)
        defer { unlink(conf) }
        // A unit installed by dpkg from a package built here.
        let pkg = d.dir + "/pkg"
        let unit = "/lib/systemd/system/\(tag).service"
        try FileManager.default.createDirectory(atPath: pkg + "/DEBIAN", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: pkg + "/lib/systemd/system", withIntermediateDirectories: true)
        try "Package: \(tag)\nVersion: 1.0\nArchitecture: all\nMaintainer: test <t@example.com>\nDescription: revenant provenance test\n"
            .write(toFile: pkg + "/DEBIAN/control", atomically: true, encoding: .utf8)
        try "[Service]\nExecStart=/usr/bin/sleep 1\n".write(toFile: pkg + unit, atomically: true, encoding: .utf8)
        #expect(try sh(["/usr/bin/dpkg-deb", "--build", "--root-owner-group", pkg, d.dir + "/\(tag).deb"]).status == 0)
        let install = try sh(["/usr/bin/dpkg", "-i", d.dir + "/\(tag).deb"])
        #expect(install.status == 0, "\(install.err)")
        defer { _ = try? sh(["/usr/bin/dpkg", "--purge", tag]) }

        // A drop-in directory created after start, and a user's unit directory that appears later.
        let dropIn = "/etc/systemd/system/\(tag).service.d"
        // Written a moment after the mkdir: a write within a millisecond races the new watch (README, bounds).
        #expect(try sh(["/bin/sh", "-c", "mkdir \(dropIn) && sleep 0.3 && printf '[Service]\\nRestart=always\\n' > \(dropIn)/override.conf"]).status == 0)
        defer { try? FileManager.default.removeItem(atPath: dropIn) }
        let home = "/home/\(tag)", userUnits = "/home/\(tag)/.config/systemd/user"
        try FileManager.default.createDirectory(atPath: userUnits, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        try await Task.sleep(for: .seconds(ConfigWatch.rescanSeconds + 1))
        #expect(try sh(["/bin/sh", "-c", "printf '[Service]\\nExecStart=/bin/true\\n' > \(userUnits)/\(tag).service"]).status == 0)

        let store = try Store(path: d.db, readOnly: true)
        var cron: [ConfigChange] = [], sup: [ConfigChange] = [], dpkg: [ConfigChange] = [], drop: [ConfigChange] = [], user: [ConfigChange] = []
        try await d.settle()
        try await until(20) {
            cron = try store.configChanges(path: "/var/spool/cron/crontabs/nobody")
            sup = try store.configChanges(path: conf)
            dpkg = try store.configChanges(path: unit)
            drop = try store.configChanges(path: dropIn + "/override.conf")
            user = try store.configChanges(path: "\(userUnits)/\(tag).service")
            return !cron.isEmpty && !sup.isEmpty && !dpkg.isEmpty && !drop.isEmpty && !user.isEmpty
        }
        #expect(drop.first?.command.hasPrefix("/bin/sh -c mkdir") == true, "the drop-in, in a directory made after start: \(drop)")
        #expect(user.first?.command.hasPrefix("/bin/sh -c printf") == true, "the user unit, in a directory that appeared later: \(user)")
        let c = try #require(cron.first, "the crontab was not recorded: \(d.logText)")
        #expect(c.command == "crontab -u nobody \(cronFile)", "\(c)")
        #expect(c.ancestry.hasPrefix("bash("), "the shell it ran from: \(c.ancestry)")
        #expect(c.loginuid == 1000 && c.session?.hasPrefix("bash(") == true && c.session?.contains(" from sh(") == true
                && c.session?.hasSuffix("loginuid 1000") == true, "the login session: \(c)")
        let s = try #require(sup.first, "the supervisord config was not recorded")
        #expect(s.command == "/bin/sh \(script)" || s.command == "sh \(script)", "\(s)")
        #expect(s.kind == .created || s.kind == .modified)
        let p = try #require(dpkg.first, "the unit was not recorded")
        #expect(p.command.contains("dpkg") && p.managedBy == "dpkg (a package)", "\(p)")
        #expect(c.managedBy == nil && s.managedBy == nil)

        d.stop()
        let audit = try String(contentsOfFile: d.audit, encoding: .utf8)
        #expect(audit.split(separator: "\n").contains { $0.contains("\"class_uid\":1001") && $0.contains(conf) }, "an OCSF File System Activity record")
        #expect(try revenant(["audit", "verify", d.audit]).status == 0)
        let ocsf = try ocsfValidate([d.audit]); #expect(ocsf.status == 0, "every record validates as OCSF: \(ocsf.err)\n\(ocsf.out)")
    }

    /// A cron line written by ansible-playbook (connection local), run by the real cron: who-spawned
    /// names ansible as the writer and says first that a change by hand would be rewritten.
    @Test(.kernel, .timeLimit(.minutes(4))) func aCronLineWrittenByAnsibleSaysWhoManagesIt() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/ansible-playbook"), "ansible-core is not installed: run scripts/install-deps.sh test")
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/cron"), "cron is not installed: run scripts/install-deps.sh test")
        let d = try DaemonUnderTest(name: "ansible")
        chmod(d.dir, 0o755)
        let tag = "rvansible\(getpid())"
        let worker = d.dir + "/\(tag).py"
        try "import time\ntime.sleep(1)\n".write(toFile: worker, atomically: true, encoding: .utf8)
        let cronFile = "/etc/cron.d/\(tag)"
        defer { unlink(cronFile) }
        try await d.start()
        let play = d.dir + "/play.yml"
        try """
            - hosts: localhost
              gather_facts: false
              tasks:
                - ansible.builtin.cron:
                    name: \(tag)
                    cron_file: \(tag)
                    user: root
                    job: /usr/bin/python3 \(worker)
            """.write(toFile: play, atomically: true, encoding: .utf8)
        let run = try sh(["/usr/bin/env", "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCALHOST_WARNING=False", "/usr/bin/ansible-playbook",
                          "-c", "local", "-i", "localhost,", play])
        try #require(run.status == 0, "ansible-playbook: \(run.out)\(run.err)")
        let cron = spawn(["/usr/sbin/cron", "-f", "-L", "0"], wait: false)
        defer { kill(cron.pid, SIGTERM); var s: Int32 = 0; waitpid(cron.pid, &s, 0) }
        var found: [StoredProcess] = []
        for _ in 0..<90 where found.isEmpty {
            try await Task.sleep(for: .seconds(1))
            found = (try? Store(path: d.db, readOnly: true).instances(argv: ["/usr/bin/python3", worker])) ?? []
        }
        let latest = try #require(found.first, "cron did not run the job in 90 s")
        try await d.settle()
        let w = try revenant(["who-spawned", String(latest.record.id.pid), "--db", d.db, "--id", latest.record.id.description, "--json"])
        let j = try #require(try JSONSerialization.jsonObject(with: Data(w.out.utf8)) as? [String: Any], "\(w.err)")
        let r = try #require(j["respawned_by"] as? [String: Any])
        #expect((r["source"] as? [String: Any])?["file"] as? String == cronFile)
        let by = try #require((r["configured_by"] as? [[String: Any]])?.first, "\(r)")
        #expect((by["command"] as? String)?.contains("AnsiballZ_cron") == true || (by["ancestry"] as? String)?.contains("ansible") == true, "\(by)")
        #expect(r["managed_by"] as? String == "ansible", "\(r)")
        #expect((r["remediation"] as? [String])?.first?.hasPrefix("# \(cronFile) is managed by ansible") == true, "\(r["remediation"] ?? "")")
        let text = try revenant(["who-spawned", String(latest.record.id.pid), "--db", d.db, "--id", latest.record.id.description]).out
        #expect(text.contains("configured  ") && text.contains("managed by  ansible"), "\(text)")
        d.stop()
    }

    @Test func aManagedSourceSaysSoFirst() throws {
        var rep = RespawnReport(mechanism: .cron, unit: nil, confidence: .high, spawner: nil, launcher: nil, launcher_mechanism: nil,
                                command: nil, source: ConfigSource(file: "/etc/cron.d/w", line: 1, text: "* * * * * root w"),
                                config_root: nil, settings: [:], remediation: ["sed -i '1d' /etc/cron.d/w"], evidence: [],
                                instances: 3, gap_seconds: [])
        let hand = ConfigChange(path: "/etc/cron.d/w", kind: .modified, timeWallNs: 2_000_000_000_000_000_000, writerPid: 9,
                                writerId: nil, command: "vim /etc/cron.d/w", ancestry: "bash(8) ← sshd(7)", loginuid: 1000, uid: 0)
        var agent = hand
        agent.command = "/usr/bin/python3 /root/.ansible/tmp/ansible-tmp-1/AnsiballZ_cron.py"
        agent.ancestry = "sh(20) ← sshd(19) ← sshd(1)"
        Attributor.provenance(&rep, changes: [hand])
        #expect(rep.managed_by == nil && rep.remediation.count == 1)
        Attributor.provenance(&rep, changes: [hand, agent])
        #expect(rep.managed_by == "ansible")
        #expect(rep.remediation.first?.hasPrefix("# /etc/cron.d/w is managed by ansible") == true, "\(rep.remediation)")
        #expect(try sh(["/bin/sh", "-n", "-c", rep.remediation.joined(separator: "\n")]).status == 0)
    }

    /// Started by: the newest control commands, and the last one before the first instance,
    /// with the login session each ran in (the oldest process of its lineage under its loginuid).
    @Test func startedByIsTheInvocationBeforeTheFirstInstance() throws {
        let dir = NSTemporaryDirectory() + "rvstarted-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try Store(path: dir + "/s.db")
        func img(_ t: UInt64, _ argv: [String], loginuid: UInt32?) -> Image {
            var i = Build.image(t, argv, exe: argv[0], uid: 0)
            i.loginuid = loginuid
            return i
        }
        let sec: UInt64 = 1_000_000_000
        let sshd = Build.process(100, start: 1 * sec, parent: nil, images: [img(1 * sec, ["/usr/sbin/sshd", "-D"], loginuid: nil)], comm: "sshd")
        let bash = Build.process(200, start: 2 * sec, parent: sshd.id, images: [img(2 * sec, ["-bash"], loginuid: 1000)], comm: "bash")
        let sudo = Build.process(210, start: 3 * sec, parent: bash.id, images: [img(3 * sec, ["sudo", "-s"], loginuid: 1000)], comm: "sudo")
        func ctl(_ pid: Int32, _ t: UInt64, _ args: [String]) -> ProcessRecord {
            Build.process(pid, start: t * sec, parent: sudo.id, exitAt: t * sec + 1000, images: [img(t * sec, ["systemctl"] + args, loginuid: 1000)], comm: "systemctl")
        }
        var b = StoreBatch(boot: "b", bootEpochNs: 0)
        b.processes = [sshd, bash, sudo, ctl(300, 10, ["enable", "--now", "w.service"]), ctl(301, 12, ["start", "other.service"]),
                       ctl(302, 40, ["restart", "w.service"]), ctl(303, 60, ["restart", "w"]), ctl(304, 80, ["status", "w.service"]),
                       ctl(305, 90, ["try-restart", "w.service"])]
        b.images = b.processes.map { ($0.id, 0, $0.images[0]) }
        try s.write(b, nowWallNs: Int64(100 * sec))
        var rep = RespawnReport(mechanism: .systemdService, unit: "w.service", confidence: .high, spawner: nil, launcher: nil, launcher_mechanism: nil,
                                command: nil, source: nil, config_root: nil, settings: [:], remediation: [], evidence: [],
                                instances: 3, gap_seconds: [])
        rep.first_instance_wall_ns = Int64(11 * sec)
        let got = Attributor.startedBy(rep, store: s)
        // The three newest that start it (not `status`, not another unit), then the one before the first instance.
        #expect(got.map(\.command) == ["systemctl try-restart w.service", "systemctl restart w", "systemctl restart w.service",
                                       "systemctl enable --now w.service"], "\(got.map(\.command))")
        let first = try #require(got.last)
        #expect(first.started_first_instance && first.lead_seconds == 1.0)
        #expect(got.dropLast().allSatisfy { !$0.started_first_instance && $0.lead_seconds == nil })
        #expect(first.ancestry == "sudo(210) ← -bash(200) ← sshd(100)")
        #expect(first.session == "-bash(200) from sshd(100), loginuid 1000", "\(first.session ?? "none")")
        // No instance on record after an invocation: none is said to have started it.
        rep.first_instance_wall_ns = Int64(5 * sec)
        #expect(!Attributor.startedBy(rep, store: s).contains { $0.started_first_instance })
    }

    /// A file a finding names (a loop's script) is watched from then on, in any directory.
    @Test(.kernel) func aFileAFindingNamesIsWatched() async throws {
        try Kernel.check()
        let dir = NSTemporaryDirectory() + "rvwatch-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let got = Mutex<[ConfigWatch.Raw]>([])
        var error: String?
        let w = try #require(ConfigWatch(changed: { r in got.withLock { $0.append(r) } }, error: &error), "\(error ?? "")")
        w.watch(file: dir + "/loop.sh")
        let writer = try sh(["/bin/sh", "-c", "echo 'while :; do w; done' > \(dir)/loop.sh; echo x > \(dir)/other; echo $$"])
        let pid = try #require(Int32(writer.out.trimmingCharacters(in: .whitespacesAndNewlines)))
        try await until(5) { got.withLock { $0.contains { $0.path == dir + "/loop.sh" } } }
        let seen = got.withLock { $0 }
        #expect(seen.contains { $0.path == dir + "/loop.sh" && $0.pid == pid && ($0.kind == .created || $0.kind == .modified) }, "\(seen)")
        #expect(!seen.contains { $0.path == dir + "/other" }, "only the file named")
        #expect(w.watched.contains(dir))
    }
}
