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
import Testing

@Suite struct ConfigSecretTests {
    /// A cron line read at query time holds a password: neither its text nor the remediation prints it.
    @Test func aSecretInACronLineIsNotPrinted() throws {
        let f = Fixture(); defer { f.cleanup() }
        let job = "/usr/bin/python3 /opt/w.py --db-password=hunter2"
        try f.write("/var/spool/cron/crontabs/alice", "* * * * * \(job)\n")
        let cron = Build.record(500, 5, ["/usr/sbin/cron", "-f"])
        var runs: [Instance] = []
        for i in 0..<2 {
            let cronJob = Build.record(Int32(600 + i * 3), UInt64(600 + i), ["/usr/sbin/CRON", "-f"])
            let shell = Build.record(Int32(601 + i * 3), UInt64(600 + i), ["/bin/sh", "-c", job])
            let w = Build.record(Int32(602 + i * 3), UInt64(601 + i), ["/usr/bin/python3", "/opt/w.py", "--db-password=[REDACTED]"])
            runs.append(Instance(process: w, ancestry: [shell, cronJob, cron], startWallNs: Int64(i) * 1_000_000_000, exitWallNs: nil))
        }
        let rep = Attributor.report(grouping: runs, target: nil, root: f.root, reader: ProcReader())
        #expect(rep.source?.file == "/var/spool/cron/crontabs/alice", "\(rep)")
        let json = String(decoding: try JSONEncoder().encode(rep), as: UTF8.self)
        #expect(!json.contains("hunter2"), "\(json)")
        #expect(rep.remediation.contains { $0.contains("holds a secret") })
    }
}

/// Files that hold every command line on the host: owner-only, whatever the umask.
@Suite(.serialized) struct PrivateFileTests {
    @Test func storeAndAuditLogAreOwnerOnlyUnderAnOpenUmask() throws {
        let dir = uniqueTempPath("modes") + "/state"
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let old = umask(0)
        defer { umask(old) }
        let s = try Store(path: dir + "/revenant.db")
        _ = try s.beginRun(boot: "b", bootEpochNs: 0, version: "t", nowWallNs: 1)
        let log = try AuditLog(path: dir + "/audit.jsonl")
        try log.append(.daemon("start", timeMs: 1))
        log.close()
        func mode(_ p: String) throws -> Int { (try FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as? Int) ?? -1 }
        #expect(try mode(dir) == 0o750)
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: dir + "/revenant.db" + suffix) {
            #expect(try mode(dir + "/revenant.db" + suffix) == 0o600, "revenant.db\(suffix)")
        }
        #expect(try mode(dir + "/audit.jsonl") == 0o640)
        // A store left world-readable by an older revenant is tightened when opened.
        chmod(dir + "/revenant.db", 0o644)
        _ = try Store(path: dir + "/revenant.db")
        #expect(try mode(dir + "/revenant.db") == 0o600)
    }
}

/// A root daemon enforces only a policy no one else can change (sshd's StrictModes).
@Suite(.serialized) struct PolicyTrustTests {
    @Test func policiesOthersCanChangeAreRefusedWithTheFix() throws {
        try #require(geteuid() == 0, "needs root: the check guards what a root daemon enforces (make test runs as root)")
        let dir = uniqueTempPath("trust")
        try FileManager.default.createDirectory(atPath: dir + "/d", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755); chmod(dir + "/d", 0o755)
        let file = dir + "/d/policy.yaml"
        try "rules: []\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        #expect(PolicyLoader.untrusted(file) == nil)
        _ = try PolicyLoader.read(file)

        chmod(file, 0o664)
        #expect(PolicyLoader.untrusted(file)?.contains("fix: chmod go-w '\(file)'") == true)
        chmod(file, 0o644)
        chown(file, 65534, 65534)
        #expect(PolicyLoader.untrusted(file)?.contains("fix: chown root '\(file)'") == true)
        #expect { try PolicyLoader.read(file) } throws: { e in (e as? PolicyError)?.description.hasPrefix(file + ": refused") == true }
        chown(file, 0, 0)
        chmod(dir + "/d", 0o777)
        #expect(PolicyLoader.untrusted(file)?.contains("directory \(dir)/d is writable by group or others") == true)
        // Sticky and root-owned, like /tmp: others cannot replace root's file in it.
        chmod(dir + "/d", 0o1777)
        #expect(PolicyLoader.untrusted(file) == nil)
    }

    @Test func aHardLinkOfAProtectedProgramIsRefused() throws {
        try #require(geteuid() == 0, "needs root to link a system binary")
        let su = "/usr/bin/su"
        try #require(FileManager.default.fileExists(atPath: su), "no \(su) on this host")
        let dir = "/usr/local/lib/rvtest-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let alias = dir + "/innocent"
        try #require(link(su, alias) == 0, "cannot hard-link \(su) into \(dir) (errno \(errno)): another filesystem?")
        let rule = PolicyRule(name: "r", match: PolicyMatch(exe: alias), action: .kill)
        let why = PolicyCompiler.danger(rule, context: PolicyLoader.safetyContext())
        #expect(why?.contains("same file as") == true, "\(why ?? "accepted")")
    }
}

/// Hostile command lines through the real daemon and every output: no raw control byte, no
/// listed secret, no spreadsheet formula.
@Suite(.serialized) struct HostileInputTests {
    @Test(.kernel, .timeLimit(.minutes(2))) func aHostileCommandLineReachesNoOutputRaw() async throws {
        try Kernel.check()
        let dir = uniqueTempPath("hostile")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        let prog = dir + "/victim"
        try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: prog)
        let policy = dir + "/policy.yaml"
        try "rules:\n  - name: watch-victim\n    match: { exe: \(prog) }\n    action: audit\n".write(toFile: policy, atomically: true, encoding: .utf8)
        chmod(policy, 0o644)
        let d = try DaemonUnderTest(name: "hostile")
        try await d.start(["--policy", policy])
        // argv[0] a formula; an OSC title sequence, a forged line, a secret, a bidi override.
        let script = "exec -a '=HYPERLINK(\"http://x\")' \(prog) 0.3 $'\\e]0;pwned\\a' $'ok\\nFORGED line' --db-password=hunter2 $'\\u202egpj.exe'"
        // trace and verify --own read the kernel themselves, not the daemon's redacted store.
        let traceOut = dir + "/trace.out", verifyOut = dir + "/verify.out"
        let tracer = spawn([revenantBinary, "trace", "--exe", "victim", "--count", "1"], wait: false, stdout: traceOut)
        let verifier = spawn([revenantBinary, "verify", "--for", "5s", "--match", "victim", "--own"], wait: false, stdout: verifyOut)
        try await Task.sleep(for: .seconds(2))   // both attach before the program runs
        spawn(["/bin/bash", "-c", script])   // sleep refuses these arguments: the exec is what matters
        var st: Int32 = 0
        waitpid(tracer.pid, &st, 0)
        waitpid(verifier.pid, &st, 0)
        #expect(st >> 8 & 0xff == 1, "verify saw the start")
        try await d.settle()
        let store = try Store(path: d.db, readOnly: true)
        let victim = try #require(try store.matching(prog).first { $0.record.image?.filename == prog }, "the victim's exec was not stored")
        let pid = String(victim.record.id.pid)

        var outputs: [(String, String)] = []
        outputs.append(("who-spawned", try revenant(["who-spawned", pid, "--db", d.db, "--id", victim.record.id.description]).out))
        outputs.append(("timeline", try revenant(["timeline", "--match", "victim", "--db", d.db]).out))
        outputs.append(("export csv", try revenant(["export", "--db", d.db, "--format", "csv", "--match", "victim"]).out))
        d.stop()
        outputs.append(("daemon log", d.logText))
        outputs.append(("trace", (try? String(contentsOfFile: traceOut, encoding: .utf8)) ?? ""))
        outputs.append(("verify --own", (try? String(contentsOfFile: verifyOut, encoding: .utf8)) ?? ""))
        for (name, text) in outputs.suffix(2) { #expect(text.contains("victim"), "\(name) printed nothing of the start: \(text)") }
        for (name, text) in outputs {
            #expect(!text.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n") || $0.value == 0x7f || (0x80...0x9f).contains($0.value) || $0.value == 0x202e },
                    "\(name) holds a raw control character")
            #expect(!text.split(separator: "\n").contains { $0.hasPrefix("FORGED") }, "\(name) has a forged line")
            #expect(!text.contains("hunter2"), "\(name) holds the secret")
        }
        #expect(outputs[0].1.contains("\\e]0;pwned\\x07"), "shown escaped: \(outputs[0].1)")
        let csv = outputs[2].1.split(separator: "\n").dropFirst()
        #expect(!csv.isEmpty && csv.allSatisfy { !$0.contains(",=HYPERLINK") && !$0.contains(",\"=HYPERLINK") }, "a formula reaches the spreadsheet: \(csv)")
        for file in [d.audit, d.db, d.db + "-wal"] {
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data()
            #expect(bytes.range(of: Data("hunter2".utf8)) == nil, "\(file) holds the secret")
        }
    }

    /// A running daemon refuses a dangerous or untrusted policy on SIGHUP with file:line and
    /// the fix, and an override by `allow_dangerous: true` is loud in the log and the audit log.
    @Test(.kernel, .timeLimit(.minutes(2))) func aReloadedPolicyIsRefusedWithFileAndLine() async throws {
        try Kernel.check()
        let dir = uniqueTempPath("refused")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        let policy = dir + "/policy.yaml"
        func write(_ text: String) throws {
            try text.write(toFile: policy, atomically: true, encoding: .utf8)
            chmod(policy, 0o644)
        }
        try write("rules:\n  - name: watch-nothing\n    match: { exe: \(dir)/absent }\n    action: audit\n")
        let d = try DaemonUnderTest(name: "refused")
        try await d.start(["--policy", policy])
        func reload(until text: String, count: Int) async throws {
            d.hangUp()
            for _ in 0..<100 where d.logText.components(separatedBy: text).count <= count { try await Task.sleep(for: .milliseconds(50)) }
        }

        try write("rules:\n  - name: ok\n    match: { exe: \(dir)/absent }\n    action: audit\n  - name: every-sh-c\n    match: { exe: /bin/sh, script: \"-c\" }\n    action: kill\n")
        try await reload(until: "policy reload rejected", count: 1)
        #expect(d.logText.contains("\(policy):5:5: rule \\\"every-sh-c\\\" refused") || d.logText.contains("\(policy):5:5: rule \"every-sh-c\" refused"),
                "\(d.logText)")
        #expect(spawn(["/bin/sh", "-c", "exit 7"]).status >> 8 == 7, "the previous policy stays: sh -c runs")

        try write("rules:\n  - name: ok\n    match: { exe: \(dir)/absent }\n    action: audit\n")
        chmod(policy, 0o666)
        try await reload(until: "policy reload rejected", count: 2)
        #expect(d.logText.contains("fix: chmod go-w '\(policy)'"), "\(d.logText)")

        try write("rules:\n  - name: ok\n    match: { exe: \(dir)/absent }\n    action: audit\n  - name: every-bash\n    match: { comm: bash }\n    action: audit\n    allow_dangerous: true\n")
        try await reload(until: "safety rails overridden", count: 1)
        try await d.settle()
        d.stop()
        let critical = d.logText.split(separator: "\n").filter { $0.contains("safety rails overridden") }
        #expect(critical.count == 1 && critical[0].hasPrefix("<2>") && critical[0].contains("\(policy):5"), "\(critical)")
        let audit = (try? String(contentsOfFile: d.audit, encoding: .utf8)) ?? ""
        #expect(audit.split(separator: "\n").contains { $0.contains("safety rails overridden") && $0.contains("\(policy):5") && $0.contains("every-bash") },
                "the override is in the audit log")
        #expect(try revenant(["audit", "verify", d.audit]).status == 0)
    }
}
