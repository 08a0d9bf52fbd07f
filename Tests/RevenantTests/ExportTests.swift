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

@Suite(.serialized) struct ExportTests {
    @Test(.kernel) func roundTripInEveryFormat() async throws {
        try Kernel.check()
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try w.policy("rules:\n  - name: block-v1\n    match: { exe: \(w.path("v1")) }\n    action: kill\n")
        let d = try DaemonUnderTest(name: "export")
        try await d.start(["--policy", policy])
        let marker = token("export")
        let odd = "a,b \"quoted\""
        let ok = spawn(["/bin/sh", "-c", "exit 0", marker, odd])
        let blocked = spawn([w.path("v1"), marker])
        #expect(killedBySignal9(blocked.status))
        try await d.settle()
        d.stop()
        let stored = try Store(path: d.db, readOnly: true).matching(marker)
        #expect(stored.count == 2)

        // jsonl
        let j = try revenant(["export", "--db", d.db, "--format", "jsonl", "--match", marker])
        #expect(j.status == 0, "\(j.err)")
        let objs = try j.out.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objs.count == 2)
        #expect(Set(objs.compactMap { $0["id"] as? String }) == Set(stored.map { $0.record.id.description }))
        let shRow = try #require(objs.first { $0["pid"] as? Int == Int(ok.pid) })
        #expect(shRow["argv"] as? [String] == ["/bin/sh", "-c", "exit 0", marker, odd])
        #expect(shRow["exit_code"] as? Int == 0)
        #expect(shRow["parent_pid"] as? Int == Int(getpid()))
        let v1Row = try #require(objs.first { $0["pid"] as? Int == Int(blocked.pid) })
        #expect(v1Row["signal"] as? Int == 9)
        #expect((v1Row["enforcement"] as? String)?.contains("block-v1") == true)

        // csv, with quoting, to a file
        let csvPath = d.dir + "/out.csv"
        let c = try revenant(["export", "--db", d.db, "--format", "csv", "--match", marker, "--out", csvPath])
        #expect(c.status == 0)
        #expect(c.err.contains("2 execs"), "a summary on stderr when writing a file: \(c.err)")
        let rows = parseCSV(try String(contentsOfFile: csvPath, encoding: .utf8))
        #expect(rows.first == ExportFormat_header)
        #expect(rows.count == 3)
        let shCSV = try #require(rows.first { $0[2] == String(ok.pid) })
        #expect(shCSV[8] == "/bin/sh -c exit 0 \(marker) \(odd)")
        #expect(shCSV[3] == shRow["id"] as? String)

        // ocsf, filtered by rule, chained like the audit log
        let o = try revenant(["export", "--db", d.db, "--format", "ocsf", "--rule", "block-v1"])
        #expect(o.status == 0)
        let lines = o.out.split(separator: "\n").map(String.init)
        let recs = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        recs.forEach { checkOCSF1007($0) }
        #expect(recs.map { $0["activity_id"] as? Int } == [1, 2], "launch, then terminate")
        #expect(recs.first?["disposition_id"] as? Int == 2, "blocked")
        #expect(((recs.first?["unmapped"] as? [String: Any])?["revenant"] as? [String: Any])?["rule"] as? [String] == ["block-v1"])
        #expect((recs.first?["process"] as? [String: Any])?["pid"] as? Int == Int(blocked.pid))
        let path = d.dir + "/export.jsonl"
        try o.out.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try revenant(["audit", "verify", path]).status == 0)
        // All of it, every record type the store holds, by the independent validator.
        let all = d.dir + "/all.jsonl"
        #expect(try revenant(["export", "--db", d.db, "--format", "ocsf", "--out", all]).status == 0)
        let ocsf = try ocsfValidate([path, all])
        #expect(ocsf.status == 0, "every exported record validates as OCSF: \(ocsf.err)\n\(ocsf.out)")

        // --pid and a time window
        let byPid = try revenant(["export", "--db", d.db, "--pid", String(ok.pid), "--since", "1h", "--until", String(Int(Date().timeIntervalSince1970) + 60)])
        #expect(byPid.out.split(separator: "\n").count >= 1)
        #expect(byPid.out.split(separator: "\n").allSatisfy { $0.contains("\"pid\":\(ok.pid),") })
        let future = try revenant(["export", "--db", d.db, "--match", marker, "--since", String(Int(Date().timeIntervalSince1970) + 3600)])
        #expect(future.status == 0 && future.out.isEmpty)
        let bad = try revenant(["export", "--db", d.db, "--since", "yesterday-ish"])
        #expect(bad.status != 0 && bad.err.contains("--since"))
    }

    /// Into a pipe, export asks for a 1 MiB buffer: with the kernel's 64 KiB, writer and reader
    /// woke each other every chunk (docs/benchmarks.md). The records are the same either way.
    @Test func widensThePipeItWritesInto() throws {
        let dir = uniqueTempPath("export-pipe")
        let store = try Store(path: dir + "/s.db")
        var b = StoreBatch(boot: "b", bootEpochNs: 1_700_000_000_000_000_000)
        let p = Build.process(40, start: 1_000, parent: nil, exitAt: 2_000, images: [Build.image(1_100, ["python3", "w.py"])])
        b.processes = [p]
        b.images = [(p.id, 0, p.images[0])]
        try store.write(b, nowWallNs: 0)
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: revenantBinary)
        proc.arguments = ["export", "--db", dir + "/s.db", "--format", "jsonl"]
        let out = Pipe()
        proc.standardOutput = out
        proc.standardError = FileHandle.nullDevice
        try proc.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        proc.waitUntilExit()
        #expect(proc.terminationStatus == 0)
        #expect(text.contains("w.py"), "\(text)")
        let getPipeSize: Int32 = 1032   // F_GETPIPE_SZ
        #expect(fcntl(out.fileHandleForReading.fileDescriptor, getPipeSize) == 1 << 20)
    }
}
