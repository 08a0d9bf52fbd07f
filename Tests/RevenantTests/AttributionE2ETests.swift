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

/// Attribution against real respawners, through the real daemon and store.
@Suite(.serialized) struct AttributionE2ETests {
    @Test(.kernel) func supervisordRespawnsAreAttributedToTheProgramSection() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/supervisord"), "supervisor is not installed")
        let w = try MarkerWorker()
        defer { w.cleanup() }
        try FileManager.default.createDirectory(atPath: w.dir + "/conf.d", withIntermediateDirectories: true)
        try "[supervisord]\nnodaemon=true\nsilent=true\nlogfile=\(w.dir)/s.log\npidfile=\(w.dir)/s.pid\n\n[include]\nfiles = conf.d/*.ini\n"
            .write(toFile: w.dir + "/supervisord.conf", atomically: true, encoding: .utf8)
        try "[program:training-worker]\ncommand=\(w.path("v2"))\nautorestart=true\nstartsecs=0\n"
            .write(toFile: w.dir + "/conf.d/worker.ini", atomically: true, encoding: .utf8)
        let d = try DaemonUnderTest(name: "attr-sup")
        try await d.start()
        let sup = spawn(["/usr/bin/supervisord", "-c", w.dir + "/supervisord.conf"], wait: false)
        try await Task.sleep(for: .seconds(3.5))
        try await d.settle()
        let store = try Store(path: d.db, readOnly: true)
        let latest = try #require(try store.instances(argv: [w.path("v2")]).first)
        let j = try whoSpawnedJSON(latest.record.id.pid, db: d.db, extra: ["--id", latest.record.id.description])
        kill(sup.pid, SIGTERM)
        var st: Int32 = 0
        waitpid(sup.pid, &st, 0)
        let r = try #require(j["respawned_by"] as? [String: Any])
        #expect(r["mechanism"] as? String == "supervisord")
        #expect((r["spawner"] as? [String: Any])?["pid"] as? Int == Int(sup.pid))
        let src = try #require(r["source"] as? [String: Any])
        #expect(src["file"] as? String == w.dir + "/conf.d/worker.ini")
        #expect(src["line"] as? Int == 2)
        let ctl = "supervisorctl -c '\(w.dir)/supervisord.conf'"   // the server that read that config
        #expect((r["remediation"] as? [String])?.contains("\(ctl) reread && \(ctl) update") == true, "\(r["remediation"] ?? "")")
        #expect((r["instances"] as? Int ?? 0) >= 2)
        #expect(r["confidence"] as? String == "high")
        d.stop()
    }

    @Test(.kernel) func aShellLoopScriptIsNamedWithItsLine() async throws {
        try Kernel.check()
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let script = w.dir + "/keepalive.sh"
        try "#!/bin/sh\n# keep the worker up\ni=0\nwhile [ $i -lt 4 ]; do\n  \(w.path("v2"))\n  i=$((i+1)); sleep 0.2\ndone\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        let d = try DaemonUnderTest(name: "attr-loop")
        try await d.start()
        let loop = spawn(["/bin/sh", script])
        #expect(loop.status == 0)
        try await d.settle()
        let store = try Store(path: d.db, readOnly: true)
        let latest = try #require(try store.instances(argv: [w.path("v2")]).first)
        let j = try whoSpawnedJSON(latest.record.id.pid, db: d.db, extra: ["--id", latest.record.id.description])
        let r = try #require(j["respawned_by"] as? [String: Any])
        #expect(r["mechanism"] as? String == "shell loop")
        #expect((r["spawner"] as? [String: Any])?["pid"] as? Int == Int(loop.pid))
        let src = try #require(r["source"] as? [String: Any])
        #expect(src["file"] as? String == script)
        #expect(src["line"] as? Int == 5)
        #expect((r["remediation"] as? [String])?.first?.hasPrefix("kill \(loop.pid)") == true)
        #expect(r["instances"] as? Int == 4)
        // timeline shows each start.
        let t = try revenant(["timeline", String(latest.record.id.pid), "--db", d.db])
        #expect(t.status == 0)
        #expect(t.out.contains("4 instances"))
        d.stop()
    }
}
