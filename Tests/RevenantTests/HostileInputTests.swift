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
