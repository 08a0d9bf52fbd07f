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

/// Every OCSF Process Activity record carries the fields class 1007 requires.
func checkOCSF1007(_ o: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) {
    guard o["class_uid"] as? Int == 1007 else { return }
    for k in ["activity_id", "category_uid", "class_uid", "severity_id", "time", "type_uid"] {
        #expect(o[k] is Int, "required \(k)", sourceLocation: sourceLocation)
    }
    #expect(o["category_uid"] as? Int == 1, sourceLocation: sourceLocation)
    #expect(o["type_uid"] as? Int == 100_700 + (o["activity_id"] as? Int ?? -1), "type_uid = class_uid * 100 + activity_id", sourceLocation: sourceLocation)
    let meta = o["metadata"] as? [String: Any]
    #expect((meta?["product"] as? [String: Any])?["vendor_name"] is String, "metadata.product.vendor_name", sourceLocation: sourceLocation)
    #expect(meta?["version"] is String, "metadata.version", sourceLocation: sourceLocation)
    #expect(o["actor"] is [String: Any], "actor is required in 1007", sourceLocation: sourceLocation)
    let p = o["process"] as? [String: Any]
    #expect(p?["pid"] is Int && p?["uid"] is String, "process.pid and process.uid", sourceLocation: sourceLocation)
}

func auditRecords(_ path: String) throws -> [[String: Any]] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
        try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
}

func ext(_ o: [String: Any]) -> [String: Any] { (o["unmapped"] as? [String: Any])?["revenant"] as? [String: Any] ?? [:] }

@Suite(.serialized) struct AuditTrailTests {
    @Test(.kernel) func matchedExitsAFindingAndNoSecret() async throws {
        try Kernel.check()
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let script = w.dir + "/v1/train.py"
        try "import sys\n".write(toFile: script, atomically: true, encoding: .utf8)
        let policy = try w.policy("rules:\n  - name: watch-train\n    match: { script: \(script) }\n    action: audit\n")
        let d = try DaemonUnderTest(name: "trail")
        try await d.start(["--policy", policy, "--redact=--db-pass=*"])
        let loop = spawn(["/bin/sh", "-c", "for i in 1 2 3; do /usr/bin/python3 \(script) --token=s3cret --db-pass=hunter2; sleep 0.2; done; /bin/echo leafmark --token=leafsecret >/dev/null"])
        #expect(loop.status == 0)
        try await d.settle()
        d.stop()

        let text = try String(contentsOfFile: d.audit, encoding: .utf8)
        #expect(!text.contains("s3cret") && !text.contains("hunter2"), "secrets never reach the audit log")
        let recs = try auditRecords(d.audit)
        recs.forEach { checkOCSF1007($0) }
        let launches = recs.filter { ext($0)["event"] as? String == "matched" }
        let exits = recs.filter { ext($0)["event"] as? String == "exit" }
        #expect(launches.count == 3)
        #expect(exits.count == 3)
        #expect(exits.allSatisfy { $0["activity_id"] as? Int == 2 && $0["exit_code"] as? Int == 0 && ext($0)["rule"] as? [String] == ["watch-train"] })
        #expect((launches.first?["process"] as? [String: Any])?["cmd_line"] as? String
                == "/usr/bin/python3 \(script) --token=[REDACTED] --db-pass=[REDACTED]")
        // The second instance makes a finding: the loop shell respawns it. One finding, not one per instance.
        let findings = recs.filter { ext($0)["event"] as? String == "respawn finding" }
        #expect(findings.count == 1)
        let why = ext(try #require(findings.first))["respawned_by"] as? [String: Any]
        #expect(why?["mechanism"] as? String == "shell loop")
        #expect(why?["spawner_pid"] as? Int == Int(loop.pid))
        #expect((why?["remediation"] as? [String])?.first?.hasPrefix("kill \(loop.pid)") == true)
        #expect(ext(launches[2])["respawned_by"] is [String: Any], "later launches carry the attribution")
        #expect(ext(launches[0])["respawned_by"] == nil, "the first has nothing to compare with")
        // The store holds the redacted command line too.
        let stored = try Store(path: d.db, readOnly: true).instances(argv: ["/usr/bin/python3", script, "--token=[REDACTED]", "--db-pass=[REDACTED]"])
        #expect(stored.count == 3)
        #expect(try Store(path: d.db, readOnly: true).matching("s3cret").isEmpty)
        // An exec no rule matched, held aside and stored as a leaf at its exit: redacted too.
        #expect(try Store(path: d.db, readOnly: true).instances(argv: ["/bin/echo", "leafmark", "--token=[REDACTED]"]).count == 1)
        #expect(try Store(path: d.db, readOnly: true).matching("leafsecret").isEmpty)
        #expect(try revenant(["audit", "verify", d.audit]).status == 0)
        let ocsf = try ocsfValidate([d.audit]); #expect(ocsf.status == 0, "every record validates as OCSF: \(ocsf.err)\n\(ocsf.out)")
    }

    @Test(.kernel) func auditAllRecordsEveryExecAndExit() async throws {
        try Kernel.check()
        let d = try DaemonUnderTest(name: "trail-all")
        try await d.start(["--audit", "all"])
        let marker = token("all")
        let p = spawn(["/bin/sh", "-c", "exit 3", marker])
        #expect(p.status >> 8 == 3)
        try await d.settle()
        d.stop()
        let recs = try auditRecords(d.audit)
        recs.forEach { checkOCSF1007($0) }
        let mine = recs.filter { ($0["process"] as? [String: Any])?["pid"] as? Int == Int(p.pid) }
        #expect(mine.map { ext($0)["event"] as? String } == ["exec", "exit"])
        #expect(mine.last?["exit_code"] as? Int == 3)
        #expect((mine.first?["process"] as? [String: Any])?["cmd_line"] as? String == "/bin/sh -c exit 3 \(marker)")
    }

    /// A full disk under the audit log: enforcement holds, the failure is loud, nothing half-written,
    /// and once there is room again a gap record says how many records were lost.
    @Test(.kernel) func fullDiskIsLoudAndEnforcementHolds() async throws {
        try Kernel.check()
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let mnt = w.dir + "/logfs"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        try #require(try sh(["/bin/mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt]).status == 0)
        defer { _ = try? sh(["/bin/umount", "-l", mnt]) }
        let policy = try w.policy("rules:\n  - name: block-v1\n    match: { exe: \(w.path("v1")) }\n    action: kill\n")
        let d = try DaemonUnderTest(name: "fulldisk")
        try await d.start(["--policy", policy, "--audit-log", mnt + "/audit.jsonl"])
        _ = try sh(["/bin/dd", "if=/dev/zero", "of=\(mnt)/fill", "bs=4k"])   // runs until ENOSPC
        let first = spawn([w.path("v1")])
        #expect(killedBySignal9(first.status), "the kernel kills regardless of the log")
        try await d.settle()
        #expect(d.process.isRunning, "the daemon survives a full disk")
        #expect(d.logText.contains("AUDIT LOG WRITE FAILED"), "\(d.logText.suffix(800))")
        #expect(d.logText.contains("No space left on device"))
        let stored = try #require(try Store(path: d.db, readOnly: true).incarnations(pid: first.pid).first)
        #expect(stored.record.image?.enforcement?.tier == .killAtExec, "the store still records it")
        #expect(stored.record.image?.enforcement?.blocked == true)

        unlink(mnt + "/fill")
        let second = spawn([w.path("v1")])
        #expect(killedBySignal9(second.status))
        try await d.settle()
        d.stop()
        #expect(d.logText.contains("audit log writable again"))
        let recs = try auditRecords(mnt + "/audit.jsonl")
        let gap = try #require(recs.first { ext($0)["event"] as? String == "audit gap" })
        #expect((ext(gap)["lost_records"] as? Int ?? 0) >= 1)
        #expect(recs.contains { ($0["process"] as? [String: Any])?["pid"] as? Int == Int(second.pid) })
        let v = try revenant(["audit", "verify", mnt + "/audit.jsonl"])
        #expect(v.status == 0, "no half record left behind: \(v.err)")
    }
}
