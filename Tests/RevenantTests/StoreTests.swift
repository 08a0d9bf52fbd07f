import Foundation
import GRDB
import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import RevenantTestSupport
import Testing

/// The store on its own, with synthetic processes: no kernel needed.
@Suite struct StoreTests {
    let dir = uniqueTempPath("store")

    func proc(_ pid: Int32, start: UInt64, parent: Identity?, exitAt: UInt64? = nil) -> ProcessRecord {
        Build.process(pid, start: start, parent: parent, exitAt: exitAt, exitCode: 0)
    }

    @Test func migratesAnEmptyStore() throws {
        let s = try Store(path: dir + "/new.db")
        #expect(try s.schemaVersions() == ["v1", "v2-enforcement", "v3-argv-index", "v4-lean-indexes", "v5-boot-key", "v6-gone-unseen", "v7-daemon-pid", "v8-leaf-batches", "v9-enforcement-fields", "v10-program", "v11-gaps", "v12-config-changes", "v13-config-session", "v14-leaf-pid-index", "v15-command-index", "v16-tier-tokens"])
        #expect(try s.processCount() == 0)
        // Opening again applies nothing twice.
        let again = try Store(path: dir + "/new.db")
        #expect(try again.schemaVersions() == ["v1", "v2-enforcement", "v3-argv-index", "v4-lean-indexes", "v5-boot-key", "v6-gone-unseen", "v7-daemon-pid", "v8-leaf-batches", "v9-enforcement-fields", "v10-program", "v11-gaps", "v12-config-changes", "v13-config-session", "v14-leaf-pid-index", "v15-command-index", "v16-tier-tokens"])
    }

    /// `timeline --match` on rows: the distinct command lines are searched, then their rows
    /// fetched; past the bound every row is searched. Both find the same processes, by the
    /// exe or the arguments, byte for byte.
    @Test func matchingSearchesDistinctCommandLinesOrEveryRow() throws {
        let s = try Store(path: dir + "/match.db")
        var b = StoreBatch(boot: "b1", bootEpochNs: 0)
        let runs: [(Int32, [String], String)] = [
            (20, ["python3", "/opt/w/train.py"], "/usr/bin/python3.11"),
            (21, ["python3", "/opt/w/train.py"], "/usr/bin/python3.11"),
            (22, ["python3", "/opt/w/train.py"], "/usr/local/bin/python3"),
            (23, ["./run", "naïve"], "/opt/w/run"),
            (24, ["sleep", "5"], "/usr/bin/sleep"),
        ]
        for (k, r) in runs.enumerated() {
            let p = Build.process(r.0, start: UInt64(1_000 * (k + 1)), parent: nil, exitAt: UInt64(1_000 * (k + 1) + 500),
                                  images: [Build.image(UInt64(1_000 * (k + 1)), r.1, exe: r.2)])
            b.processes.append(p)
            b.images.append((p.id, 0, p.images[0]))
        }
        try s.write(b, nowWallNs: 0)
        let cases: [(String, [Int32])] = [("train.py", [22, 21, 20]), ("python3.11", [21, 20]), ("local/bin", [22]),
                                          ("/opt/w", [23, 22, 21, 20]), ("ïve", [23]), ("nothing", []), ("", [24, 23, 22, 21, 20])]
        for (text, pids) in cases {
            #expect(try s.matching(text).map(\.record.id.pid) == pids, "\(text)")
            #expect(try s.matching(text, commandLinesUpTo: 2).map(\.record.id.pid) == pids, "\(text), every row searched")
        }
        #expect(try s.matching("train.py", limit: 1).map(\.record.id.pid) == [22])
    }

    /// Age and the row bound never take the ancestors of a live process or of a process the
    /// policy acted on: "who spawned it" stays answerable for as long as those are stored.
    @Test func retentionKeepsTheAncestorsOfLiveProcessesAndOfFindings() throws {
        let s = try Store(path: dir + "/keep.db")
        var b = StoreBatch(boot: "b1", bootEpochNs: 0)
        let a = proc(100, start: 1, parent: nil, exitAt: 10)           // long gone: cron's parent, say
        let bb = proc(101, start: 2, parent: a.id, exitAt: 20)         // long gone
        let live = proc(102, start: 3, parent: bb.id)                   // running
        let x = proc(200, start: 1, parent: nil, exitAt: 10)            // the killed one's spawner
        var killed = proc(201, start: 50, parent: x.id, exitAt: 90)
        killed.images = [Build.image(50, ["/usr/bin/python3", "/opt/v1.py"])]
        killed.images[0].enforcement = Enforcement(rules: ["block"], tier: .killAtExec, blocked: true, message: "killed at exec")
        let z = proc(300, start: 1, parent: nil, exitAt: 10)            // nobody's ancestor
        b.processes = [a, bb, live, x, killed, z]
        b.images = [(killed.id, 0, killed.images[0])]
        try s.write(b, nowWallNs: 1)
        #expect(try s.enforceRetention(exitedBeforeWallNs: 60, maxProcesses: 1_000, currentBoot: "b1") == 1)
        #expect(try s.incarnations(pid: 300).isEmpty)
        for pid: Int32 in [100, 101, 200] { #expect(try s.incarnations(pid: pid).count == 1, "\(pid) kept") }
        // The row bound too: only what nothing needs goes.
        #expect(try s.enforceRetention(exitedBeforeWallNs: 0, maxProcesses: 1, currentBoot: "b1") == 1)
        #expect(try s.incarnations(pid: 201).isEmpty, "the finding itself ages out by the bound")
        // Once the finding is gone, its spawner may go.
        #expect(try s.enforceRetention(exitedBeforeWallNs: 60, maxProcesses: 1_000, currentBoot: "b1") == 1)
        #expect(try s.incarnations(pid: 200).isEmpty)
        #expect(try s.processCount() == 3)
    }

    @Test func gapsAreKeptAndFoundByTheirWindow() throws {
        let s = try Store(path: dir + "/gaps.db")
        var b = StoreBatch(boot: "b", bootEpochNs: 0)
        b.gaps = [TraceGap(kind: .eventsLost, fromWallNs: 100, toWallNs: 200, lost: 7, detail: "7 events dropped"),
                  TraceGap(kind: .storeUnwritable, fromWallNs: 1_000, toWallNs: 5_000, lost: 0, detail: "full")]
        try s.write(b, nowWallNs: 6_000)
        #expect(try s.gaps() == b.gaps)
        #expect(try s.gaps(fromWallNs: 150, toWallNs: 160) == [b.gaps[0]])
        #expect(try s.gaps(fromWallNs: 300, toWallNs: 900).isEmpty)
        #expect(try s.gaps(fromWallNs: 4_000, toWallNs: 9_000).map(\.kind) == [.storeUnwritable])
    }

    @Test func refusesWhatIsNotAStore() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let bad = dir + "/bad.db"
        FileManager.default.createFile(atPath: bad, contents: Data(repeating: 0x41, count: 4096))
        #expect { try Store(path: bad, readOnly: true) } throws: { e in
            (e as? StoreError)?.description.contains(bad) == true
        }
        #expect { try Store(path: dir + "/absent.db", readOnly: true) } throws: { e in
            (e as? StoreError)?.reason.contains("no such file") == true
        }
    }

    /// A store written by v4 (boot ids as text in every process row) keeps its history through
    /// the v5 rebuild: processes, parents, images and boots, and takes new batches for the same boot.
    @Test func migratesAV4StoreKeepingItsHistory() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/v4.db"
        do {
            let q = try DatabaseQueue(path: path)
            try Store.migrator.migrate(q, upTo: "v4-lean-indexes")
            try q.write { db in
                try db.execute(sql: """
                    INSERT INTO boot (id, epoch_ns) VALUES ('old-boot', 1000), ('this-boot', 5000);
                    INSERT INTO process (rowid, boot, pid, start_ns, precise, start_wall_ns, parent_pid, parent_start_ns, comm, exit_ns, exit_wall_ns, exit_code)
                        VALUES (7, 'old-boot', 42, 100, 1, 1100, NULL, NULL, 'init', NULL, NULL, NULL),
                               (8, 'old-boot', 43, 200, 1, 1200, 42, 100, 'worker', 300, 1300, 3),
                               (9, 'this-boot', 42, 400, 1, 5400, NULL, NULL, 'cron', NULL, NULL, NULL);
                    INSERT INTO image (process, seq, time_ns, exe, argv, argv_truncated, comm, uid, euid, gid, cgroup, cgroup_id, exe_dev, exe_ino, enforcement)
                        VALUES (8, 0, 250, '/usr/bin/python3', X'707974686F6E3300772E7079', 0, 'python3', 0, 0, 0, 'w.service', 1, 2, 3, 'killed');
                    INSERT INTO daemon_run (boot, started_wall_ns, last_seen_wall_ns, version) VALUES ('old-boot', 1, 2, 'v4');
                    """)
            }
        }
        // A reader refuses the old schema rather than misreading it.
        #expect { try Store(path: path, readOnly: true) } throws: { e in
            (e as? StoreError)?.reason.contains("older than this revenant") == true
        }
        let s = try Store(path: path)
        #expect(try s.schemaVersions().last == "v16-tier-tokens")
        let byPid = try s.incarnations(pid: 42)
        #expect(byPid.map(\.boot) == ["this-boot", "old-boot"])
        let worker = try #require(try s.process(boot: "old-boot", id: Identity(pid: 43, startNs: 200)))
        #expect(worker.record.exitStatus == .exited(3))
        #expect(worker.record.images.map(\.argv) == [["python3", "w.py"]])
        #expect(worker.record.images.first?.enforcement?.message == "killed")
        #expect(worker.record.images.first?.enforcement?.blocked == true, "read once from a store written before the fields")
        #expect(try s.ancestry(of: worker).map(\.record.name) == ["init"])
        #expect(try s.instances(argv: ["python3", "w.py"]).map(\.record.id) == [worker.record.id])
        #expect(try s.matching("w.py").map(\.record.id) == [worker.record.id], "found through the command-line index")
        #expect(try s.instances(program: Program(executable: "/usr/bin/python3", script: "w.py")).map(\.record.id) == [worker.record.id],
                "rows written before programs were indexed are found by program")
        var rows: [ExportRow] = []
        try s.export(ExportFilter()) { rows.append($0) }
        #expect(rows.map(\.boot) == ["old-boot"])
        #expect(rows.first?.wallNs == 1250)
        #expect(rows.first?.parentComm == "init")
        // The same boot continues under its existing key.
        var b = StoreBatch(boot: "this-boot", bootEpochNs: 5000)
        b.processes = [proc(44, start: 500, parent: Identity(pid: 42, startNs: 400))]
        try s.write(b, nowWallNs: 6000)
        let child = try #require(try s.incarnations(pid: 44).first)
        #expect(try s.ancestry(of: child).map(\.record.name) == ["cron"])
        #expect(try s.integrityCheck() == ["ok"])
        #expect(try s.runs().map(\.boot) == ["old-boot"])
        let readOnly = try Store(path: path, readOnly: true)
        #expect(try readOnly.processCount() == 4)
    }

    @Test func roundTripsAChainWithImages() throws {
        let s = try Store(path: dir + "/chain.db")
        var b = StoreBatch(boot: "b1", bootEpochNs: 1_000_000_000_000)
        let a = proc(10, start: 100, parent: nil)
        let c = proc(11, start: 200, parent: a.id, exitAt: 900)
        b.processes = [a, c]
        let img = Image(time: 250, filename: "/usr/bin/python3", argv: ["python3", "/opt/w/worker.py", ""], comm: "python3",
                        uid: 1000, cgroup: "worker.service", cwd: "/opt")
        b.images = [(c.id, 0, img)]
        try s.write(b, nowWallNs: 1)
        let got = try #require(try s.incarnations(pid: 11).first)
        #expect(got.record.images == [img])
        #expect(got.record.exitStatus == .exited(0))
        #expect(got.startWallNs == 1_000_000_000_200)
        #expect(try s.ancestry(of: got).map(\.record.id) == [a.id])
    }

    /// Empty strings and an empty argv are bound as empty values, not NULL (the batch writer
    /// binds straight to SQLite), and come back as written.
    @Test func emptyNamesAndArgvRoundTrip() throws {
        let s = try Store(path: dir + "/empty.db")
        var b = StoreBatch(boot: "b1", bootEpochNs: 0)
        var r = ProcessRecord(id: Identity(pid: 40, startNs: 4_000), parent: nil, comm: "")
        let img = Image(time: 4_100, filename: "", argv: [], comm: "", cgroup: "", cwd: "")
        r.images = [img]
        b.processes = [r]
        b.images = [(r.id, 0, img)]
        try s.write(b, nowWallNs: 1)
        let got = try #require(try s.incarnations(pid: 40).first)
        #expect(got.record.images == [img])
        #expect(got.record.comm == "")
    }

    @Test func rekeyMovesASeededProcessAndItsChildren() throws {
        let s = try Store(path: dir + "/rekey.db")
        var b = StoreBatch(boot: "b1", bootEpochNs: 0)
        let seeded = Identity(pid: 20, startTicks: 150)
        var parent = ProcessRecord(id: seeded, parent: nil, comm: "bash")
        parent.seeded = true
        let kid = proc(21, start: 1_600_000_000, parent: seeded)
        b.processes = [parent, kid]
        try s.write(b, nowWallNs: 1)
        var b2 = StoreBatch(boot: "b1", bootEpochNs: 0)
        let exact = Identity(pid: 20, startNs: 1_503_000_000)
        b2.rekeys = [(seeded, exact)]
        try s.write(b2, nowWallNs: 2)
        let k = try #require(try s.incarnations(pid: 21).first)
        let chain = try s.ancestry(of: k)
        #expect(chain.map(\.record.id) == [exact])
        #expect(chain.first?.record.seeded == true)
        #expect(try s.orphanedParents().isEmpty)
    }

    /// A restart on the same boot: the new run seeds a process the old run recorded exactly.
    @Test func rekeyOntoAnExactRowFromAnEarlierRunMerges() throws {
        let s = try Store(path: dir + "/rekey2.db")
        let exact = Identity(pid: 30, startNs: 2_503_000_000)
        var b = StoreBatch(boot: "b1", bootEpochNs: 0)
        var old = ProcessRecord(id: exact, parent: nil, comm: "cron")
        old.images = [Image(time: 2_503_000_000, filename: "/usr/sbin/cron", argv: ["/usr/sbin/cron", "-f"], comm: "cron")]
        b.processes = [old]
        b.images = [(exact, 0, old.images[0])]
        try s.write(b, nowWallNs: 1)
        let seeded = Identity(pid: 30, startTicks: 250)
        var again = ProcessRecord(id: seeded, parent: nil, comm: "cron")
        again.seeded = true
        var b2 = StoreBatch(boot: "b1", bootEpochNs: 0)
        b2.processes = [again, proc(31, start: 3_000_000_000, parent: seeded)]
        try s.write(b2, nowWallNs: 2)
        var b3 = StoreBatch(boot: "b1", bootEpochNs: 0)
        b3.rekeys = [(seeded, exact)]
        try s.write(b3, nowWallNs: 3)
        let rows = try s.incarnations(pid: 30)
        #expect(rows.map(\.record.id) == [exact], "one row, the exact one")
        #expect(rows.first?.record.images.first?.argv == ["/usr/sbin/cron", "-f"], "with its images")
        let kid = try #require(try s.incarnations(pid: 31).first)
        #expect(try s.ancestry(of: kid).map(\.record.id) == [exact])
        #expect(try s.orphanedParents().isEmpty)
    }

    @Test func retentionDropsOldExitedAndBoundsRows() throws {
        let s = try Store(path: dir + "/ret.db")
        var b = StoreBatch(boot: "b1", bootEpochNs: 0)
        for i in 0..<100 { b.processes.append(proc(Int32(1000 + i), start: UInt64(i), parent: nil, exitAt: UInt64(10 + i))) }
        for i in 0..<10 { b.processes.append(proc(Int32(5000 + i), start: UInt64(i), parent: nil)) }
        try s.write(b, nowWallNs: 1)
        // Exited before t=60: 50 of them (exit times 10…59).
        #expect(try s.enforceRetention(exitedBeforeWallNs: 60, maxProcesses: 1_000, currentBoot: "b1") == 50)
        #expect(try s.processCount() == 60)
        // Then a row bound: oldest exited go first, live ones stay.
        #expect(try s.enforceRetention(exitedBeforeWallNs: 0, maxProcesses: 20, currentBoot: "b1") == 40)
        #expect(try s.processCount() == 20)
        #expect(try s.incarnations(pid: 5009).count == 1)
        #expect(try s.incarnations(pid: 1099).count == 1)
        #expect(try s.incarnations(pid: 1089).isEmpty)
    }

    /// A process that ended while no daemon ran (same boot) has no exit on record: the next
    /// daemon marks it gone by its start, and retention deletes it once that is past the cutoff.
    /// What /proc still shows (same PID and start tick) is left alone.
    @Test func whatEndedWhileNoDaemonRanIsMarkedAndExpires() throws {
        let s = try Store(path: dir + "/gone.db")
        var b = StoreBatch(boot: "b", bootEpochNs: 1_000)
        let stays = proc(10, start: 3 * Identity.nsPerTick + 7, parent: nil)
        let ended = proc(11, start: 4 * Identity.nsPerTick, parent: nil)
        let exited = proc(12, start: 5, parent: nil, exitAt: 9)
        b.processes = [stays, ended, exited]
        try s.write(b, nowWallNs: 1_010)
        // /proc shows pid 10 at tick precision only.
        let seen = [Identity(pid: 10, startTicks: 3), Identity(pid: 99, startTicks: 1)]
        #expect(try s.markGone(boot: "elsewhere", running: [], goneByWallNs: 5_000) == 0, "another boot's rows are not this boot's")
        #expect(try s.markGone(boot: "b", running: seen, goneByWallNs: 5_000) == 1)
        #expect(try s.markGone(boot: "b", running: seen, goneByWallNs: 6_000) == 0)
        #expect(try s.enforceRetention(exitedBeforeWallNs: 4_999, maxProcesses: 1_000, currentBoot: "b") == 1)
        #expect(try s.incarnations(pid: 11).count == 1, "gone by 5,000: kept at a cutoff of 4,999")
        #expect(try s.enforceRetention(exitedBeforeWallNs: 5_001, maxProcesses: 1_000, currentBoot: "b") == 1)
        #expect(try s.incarnations(pid: 11).isEmpty)
        #expect(try s.incarnations(pid: 10).count == 1)
    }

    /// Processes running at a reboot never get an exit: their boot's end bounds it, and they go
    /// once the next boot started before the cutoff. This boot's live processes stay.
    @Test func retentionDropsWhatAnEarlierBootLeftRunning() throws {
        let s = try Store(path: dir + "/boots.db")
        var old = StoreBatch(boot: "old", bootEpochNs: 1_000)
        old.processes = [proc(10, start: 5, parent: nil), proc(11, start: 6, parent: nil, exitAt: 7)]
        try s.write(old, nowWallNs: 1_010)
        var now = StoreBatch(boot: "now", bootEpochNs: 2_000)
        now.processes = [proc(10, start: 5, parent: nil)]
        try s.write(now, nowWallNs: 2_010)
        // The old boot ended by 2,000: not yet before a cutoff of 1,500.
        #expect(try s.enforceRetention(exitedBeforeWallNs: 1_500, maxProcesses: 1_000, currentBoot: "now") == 1)
        #expect(try s.incarnations(pid: 10).map(\.boot) == ["now", "old"])
        #expect(try s.enforceRetention(exitedBeforeWallNs: 2_500, maxProcesses: 1_000, currentBoot: "now") == 1)
        #expect(try s.incarnations(pid: 10).map(\.boot) == ["now"])
        // The newest boot is never "earlier", whatever the current one is called.
        #expect(try s.enforceRetention(exitedBeforeWallNs: 9_999, maxProcesses: 1_000, currentBoot: "elsewhere") == 0)
        #expect(try s.processCount() == 1)
    }
}
