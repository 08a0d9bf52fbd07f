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

/// The hardened unit in packaging/ under a real systemd (in its namespace): it starts with the
/// capabilities it lists, enforces, writes its audit log with the modes it promises, reloads.
@Suite(.serialized) struct ServiceUnitTests {
    @Test(.kernel, .timeLimit(.minutes(2))) func hardenedUnitStartsEnforcesAndReloads() async throws {
        try Kernel.check()
        let dir = uniqueTempPath("unit")
        let pinDir = "/sys/fs/bpf/rvtest-unit-\(getpid())"
        // The namespace shares the host's /sys: pins made there outlive it.
        defer { Tracer.unpin(pinDir) }
        let fm = FileManager.default
        defer { try? fm.removeItem(atPath: dir) }
        try Self.writeTree(dir, pinDir: pinDir)

        // The namespace's /var/log lies over the host's: what a daemon run on the host logged
        // there shows through, and must not be taken for the unit's.
        let loads = { (t: String?) in ((t ?? "").components(separatedBy: "\"event\":\"policy loaded\"").count - 1) }
        let hostLoads = loads(try? String(contentsOfFile: "/var/log/revenant/audit.jsonl", encoding: .utf8))
        let script = packageRoot + "/scripts/systemd-ns.sh"
        let boot = try sh([script, "start", dir, "rvtest.target"])
        defer { _ = try? sh([script, "stop", dir]) }
        try #require(boot.status == 0, "systemd did not boot: \(boot.err)")
        let systemd = boot.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let root = "/proc/\(systemd)/root"
        var active = ""
        for _ in 0..<100 {
            active = try sh([script, "ctl", dir, "is-active", "revenant.service"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
            if active == "active", loads(try? String(contentsOfFile: root + "/var/log/revenant/audit.jsonl", encoding: .utf8)) > hostLoads { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let console = { (try? String(contentsOfFile: dir + "/console.log", encoding: .utf8)) ?? "" }
        let status = { (try? sh([script, "ctl", dir, "status", "--no-pager", "-n", "20", "revenant.service"]).out) ?? "" }
        try #require(active == "active", "revenant.service is \(active): \(status()) \(console().suffix(1500))")

        let run = try sh(["/usr/bin/nsenter", "-t", systemd, "-m", "-p", "-r", "-w", "/bin/sh", "-c",
                          "/usr/bin/python3 /opt/rvtest/blocked.py; echo status=$?"])
        #expect(run.out.contains("status=137"), "killed at exec under the unit's sandbox: \(run.out)\(run.err)")
        #expect(!fm.fileExists(atPath: root + "/opt/rvtest/ran"), "the script never ran")
        // journald-native fields: the kill is found by its rule, with its tier and the process.
        var entry: [String: Any]?
        for _ in 0..<30 where entry == nil {
            let j = try sh(["/usr/bin/nsenter", "-t", systemd, "-m", "-p", "-r", "-w", "/usr/bin/journalctl", "-o", "json", "--no-pager",
                            "-u", "revenant.service", "REVENANT_RULE=block-sweeper"])
            entry = j.out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.first
            if entry == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        let e = try #require(entry, "no journal entry with REVENANT_RULE=block-sweeper: \(status())")
        #expect(e["SYSLOG_IDENTIFIER"] as? String == "revenant" && e["PRIORITY"] as? String == "4", "\(e)")
        #expect(e["REVENANT_TIER"] as? String == "kill-at-exec", "\(e)")
        #expect((e["REVENANT_PID"] as? String).flatMap { Int32($0) } != nil && e["OBJECT_PID"] as? String == e["REVENANT_PID"] as? String, "\(e)")
        #expect((e["MESSAGE"] as? String)?.hasPrefix("killed at exec by the kernel") == true, "\(e)")

        #expect(try sh([script, "ctl", dir, "reload", "revenant.service"]).status == 0)
        try await Task.sleep(for: .seconds(1))
        let log = root + "/var/log/revenant/audit.jsonl"
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("\"event\":\"blocked\""))
        #expect(loads(text) == hostLoads + 2, "loaded at start and on reload")
        let mode = { (p: String) in ((try? fm.attributesOfItem(atPath: p)[.posixPermissions]) as? Int).map { String($0, radix: 8) } }
        #expect(mode(log) == "640")
        #expect(mode(root + "/var/log/revenant") == "750")
        #expect(mode(root + "/var/lib/revenant") == "750")
        #expect(fm.fileExists(atPath: root + "/var/lib/revenant/revenant.db"))
        #expect(try sh([script, "ctl", dir, "is-active", "revenant.service"]).out.hasPrefix("active"))
        #expect(text.contains("\"activity_name\":\"programs pinned\""), "the unit pins its programs: \(status())")

        try await Self.notifyHardeningAndWatchdog(script: script, dir: dir, systemd: systemd, status: status)
    }

    /// The unit's tree in the namespace's upper directory: the binary where `make install`
    /// puts it, the shipped unit with a test pin directory and a short watchdog, a kill policy.
    static func writeTree(_ dir: String, pinDir: String) throws {
        let etc = dir + "/upper/etc/systemd/system"
        let fm = FileManager.default
        try fm.createDirectory(atPath: etc + "/rvtest.target.wants", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/upper/etc/revenant", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/upper/opt/rvtest", withIntermediateDirectories: true)
        // Where `make install` puts it: the unit's PrivateTmp would hide a build under /tmp.
        try fm.createDirectory(atPath: dir + "/upper/usr/local/bin", withIntermediateDirectories: true)
        do { try fm.linkItem(atPath: revenantBinary, toPath: dir + "/upper/usr/local/bin/revenant") }
        catch { try fm.copyItem(atPath: revenantBinary, toPath: dir + "/upper/usr/local/bin/revenant") }
        let unit = try String(contentsOfFile: packageRoot + "/packaging/revenant.service", encoding: .utf8)
            .replacingOccurrences(of: "@BINDIR@", with: "/usr/local/bin")
            // Its own pin directory: a host daemon's pins are not the test's to replace.
            .replacingOccurrences(of: " --pin\n", with: " --pin --pin-dir \(pinDir)\n")
        try unit.write(toFile: etc + "/revenant.service", atomically: true, encoding: .utf8)
        try SystemdAttributionTests.units["rvtest.target"]!.write(toFile: etc + "/rvtest.target", atomically: true, encoding: .utf8)
        try fm.createSymbolicLink(atPath: etc + "/rvtest.target.wants/revenant.service", withDestinationPath: "../revenant.service")
        // The shipped watchdog, shortened so a hang is seen within the test.
        try fm.createDirectory(atPath: etc + "/revenant.service.d", withIntermediateDirectories: true)
        try "[Service]\nWatchdogSec=10s\nTimeoutAbortSec=2s\n".write(toFile: etc + "/revenant.service.d/test.conf", atomically: true, encoding: .utf8)
        try "rules:\n  - name: block-sweeper\n    match: { script: /opt/rvtest/blocked.py }\n    action: kill\n"
            .write(toFile: dir + "/upper/etc/revenant/policy.yaml", atomically: true, encoding: .utf8)
        try "open('/opt/rvtest/ran', 'w').write('ran')\n".write(toFile: dir + "/upper/opt/rvtest/blocked.py", atomically: true, encoding: .utf8)
    }

    /// Type=notify, the hardening systemd rates, and the watchdog restarting a hung daemon.
    static func notifyHardeningAndWatchdog(script: String, dir: String, systemd: String, status: () -> String) async throws {
        // Type=notify: active means READY=1 came, after the policy was in force.
        let show = { (p: String) in (try? sh([script, "ctl", dir, "show", "-p", p, "--value", "revenant.service"]).out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "" }
        #expect(show("Type") == "notify")
        #expect(show("StatusText").hasPrefix("enforcing 1 rules"), "STATUS= from the daemon: \(show("StatusText"))")
        // The hardening as systemd rates it, inside the namespace.
        let sec = try sh(["/usr/bin/nsenter", "-t", systemd, "-m", "-p", "-r", "-w", "/usr/bin/systemd-analyze", "security", "--no-pager", "revenant.service"])
        let overall = sec.out.split(separator: "\n").first { $0.contains("Overall exposure level") }.map(String.init) ?? ""
        let score = Double(overall.split(separator: " ").first { Double($0) != nil } ?? "") ?? 10
        #expect(score < 5, "systemd-analyze security rates it OK or better: \(overall)\(sec.err)")
        // A hung ingest loop stops feeding the watchdog: systemd kills and restarts the daemon.
        let main = show("MainPID")
        #expect(try sh(["/usr/bin/nsenter", "-t", systemd, "-m", "-p", "-r", "-w", "/bin/kill", "-STOP", main]).status == 0)
        var restarts = "0"
        for _ in 0..<60 where restarts == "0" {
            try await Task.sleep(for: .milliseconds(500))
            restarts = show("NRestarts")
        }
        #expect(restarts != "0", "the watchdog restarted the hung daemon: \(status())")
        for _ in 0..<60 where show("ActiveState") != "active" { try await Task.sleep(for: .milliseconds(250)) }
        #expect(show("ActiveState") == "active", "and it came back: \(status())")
    }
}
