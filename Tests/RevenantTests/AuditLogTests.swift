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

@Suite(.serialized) struct AuditLogTests {
    @Test(.kernel) func blockedRespawnIsAnOCSFRecordInAnIntactChain() async throws {
        try Kernel.check()
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try w.policy("rules:\n  - name: block-v1\n    match: { exe: \(w.path("v1")) }\n    action: kill\n")
        let d = try DaemonUnderTest(name: "audit")
        try await d.start(["--policy", policy])
        let v1 = spawn([w.path("v1")])
        #expect(killedBySignal9(v1.status))
        try await d.settle()
        d.stop()
        let lines = try String(contentsOfFile: d.audit, encoding: .utf8).split(separator: "\n").map(String.init)
        let objs = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let events = objs.compactMap { (($0["unmapped"] as? [String: Any])?["revenant"] as? [String: Any])?["event"] as? String }
        #expect(events.first == "start")
        #expect(events.contains("policy loaded"))
        #expect(events.last == "stop")
        let blocked = try #require(objs.first { (($0["unmapped"] as? [String: Any])?["revenant"] as? [String: Any])?["event"] as? String == "blocked" })
        #expect(blocked["class_uid"] as? Int == 1007)
        #expect(blocked["activity_id"] as? Int == 1)
        #expect(blocked["disposition_id"] as? Int == 2)
        let proc = try #require(blocked["process"] as? [String: Any])
        #expect(proc["pid"] as? Int == Int(v1.pid))
        #expect((proc["file"] as? [String: Any])?["path"] as? String == w.path("v1"))
        let ext = try #require((blocked["unmapped"] as? [String: Any])?["revenant"] as? [String: Any])
        #expect(((ext["ancestry"] as? [[String: Any]])?.first?["pid"] as? Int) == Int(getpid()))
        #expect((proc["lineage"] as? [String])?.isEmpty == false)
        #expect(ext["rule"] as? [String] == ["block-v1"])
        #expect(ext["tier"] as? String == "kill-at-exec")

        let ok = try revenant(["audit", "verify", d.audit])
        #expect(ok.status == 0, "\(ok.err)")
        let ocsf = try ocsfValidate([d.audit])
        #expect(ocsf.status == 0, "every record validates as OCSF: \(ocsf.err)\n\(ocsf.out)")
        // Change one record in the middle: verify names the record after it.
        var tampered = lines
        tampered[1] = tampered[1].replacingOccurrences(of: "policy loaded", with: "policy-loaded")
        try (tampered.joined(separator: "\n") + "\n").write(toFile: d.audit, atomically: true, encoding: .utf8)
        let bad = try revenant(["audit", "verify", d.audit])
        #expect(bad.status == 1)
        #expect(bad.err.contains(":3: record 3 changed"), "\(bad.err)")
    }

    @Test func rotationKeepsTheChain() throws {
        let dir = uniqueTempPath("audit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/audit.jsonl"
        let log = try AuditLog(path: path, maxBytes: 2_000, keep: 3)
        for i in 0..<40 { try log.append(.daemon("tick", timeMs: Int64(i), detail: "record \(i)")) }
        log.close()
        // A restart continues the chain.
        let again = try AuditLog(path: path, maxBytes: 2_000, keep: 3)
        try again.append(.daemon("start", timeMs: 99))
        again.close()
        let files = [path + ".3", path + ".2", path + ".1", path].filter { FileManager.default.fileExists(atPath: $0) }
        #expect(files.count == 4, "rotated into 3 kept files plus the current one")
        let input = try files.map { f in (name: f, lines: try String(contentsOfFile: f, encoding: .utf8).components(separatedBy: "\n")) }
        #expect(AuditChain.verify(input) == nil)
        #expect(!FileManager.default.fileExists(atPath: path + ".4"), "older files beyond `keep` are dropped")
    }
}
