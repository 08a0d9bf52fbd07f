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

/// RFC 4180 rows, enough to read back what export wrote.
func parseCSV(_ text: String) -> [[String]] {
    var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
    var it = Array(text).makeIterator()
    var pending: Character? = nil
    while let c = pending ?? it.next() {
        pending = nil
        if quoted {
            if c == "\"" {
                if let n = it.next() { if n == "\"" { field.append("\"") } else { quoted = false; pending = n } } else { quoted = false }
            } else { field.append(c) }
        } else if c == "\"" { quoted = true }
        else if c == "," { row.append(field); field = "" }
        else if c == "\n" { row.append(field); rows.append(row); row = []; field = "" }
        else { field.append(c) }
    }
    return rows
}

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

let ExportFormat_header = "time,boot,pid,id,parent_pid,parent_id,parent_comm,exe,cmd_line,cwd,uid,cgroup,seeded,enforcement,exit_time,exit_code,signal"
    .split(separator: ",").map(String.init)

/// `revenant verify`: the "wait five minutes, check it stays dead" step as a command.
@Suite(.serialized) struct VerifyTests {
    /// A shell loop that starts `argv` every `every` seconds until killed.
    func loop(_ argv: String, every: String = "0.3") -> pid_t {
        spawn(["/bin/sh", "-c", "while true; do \(argv); sleep \(every); done"], wait: false).pid
    }
    func reap(_ pid: pid_t) { kill(pid, SIGKILL); var s: Int32 = 0; waitpid(pid, &s, 0) }

    @Test(.kernel) func throughTheDaemonsStore() async throws {
        try Kernel.check()
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try w.policy("rules:\n  - name: block-v1\n    match: { exe: \(w.path("v1")) }\n    action: kill\n")
        let d = try DaemonUnderTest(name: "verify")
        try await d.start(["--policy", policy])
        let marker = token("verify")

        let quiet = try revenant(["verify", "--for", "2s", "--match", marker, "--db", d.db])
        #expect(quiet.status == 0, "\(quiet.out)\(quiet.err)")
        #expect(quiet.out.contains("nothing matching \"\(marker)\" started in 2s"))
        #expect(quiet.err.isEmpty, "no countdown when stderr is not a terminal")

        // Respawns that the kernel kills at exec never ran: they are listed, and the window passes.
        let blockedLoop = loop("\(w.path("v1")) \(marker)")
        let held = try revenant(["verify", "--for", "2s", "--match", marker, "--db", d.db])
        reap(blockedLoop)
        #expect(held.status == 0, "\(held.out)")
        #expect(held.out.contains("blocked "))
        #expect(held.out.contains("blocked at exec)"))

        let live = loop("\(w.path("v2")) \(marker)")
        defer { reap(live) }
        let r = try revenant(["verify", "--for", "2s", "--match", marker, "--db", d.db])
        #expect(r.status == 1, "\(r.out)")
        #expect(r.out.contains("started "))
        #expect(r.out.contains("Respawned by  shell loop"))
        #expect(r.out.contains("stop it     kill \(live)"))
        d.stop()
    }

    @Test(.kernel) func withItsOwnBPFWhenNoDaemonRuns() async throws {
        try Kernel.check()
        let marker = token("verify-own")
        let l = loop("/bin/sh -c 'exit 0' \(marker)")
        defer { reap(l) }
        let r = try revenant(["verify", "--for", "2s", "--match", marker, "--db", "/nonexistent/revenant.db"])
        #expect(r.status == 1, "\(r.out)\(r.err)")
        #expect(r.out.contains("Respawned by  shell loop"))
        #expect(r.out.contains("(\(l))"), "the loop shell is named")
        let bad = try revenant(["verify", "--for", "soon", "--match", marker])
        #expect(bad.status == 2 && bad.err.contains("--for soon"))
    }
}
