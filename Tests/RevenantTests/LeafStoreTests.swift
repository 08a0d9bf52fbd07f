import Foundation
import GRDB
@testable import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import RevenantTestSupport
import Testing

/// Leaves stored many to a row: every read of the store sees them as it sees rows.
@Suite struct LeafStoreTests {
    let dir = uniqueTempPath("leaf")
    let boot = "leaf-boot"
    let epoch: Int64 = 1_700_000_000_000_000_000

    func image(_ t: UInt64, _ argv: [String], exe: String = "/usr/bin/python3") -> Image {
        Build.image(t, argv, exe: exe)
    }

    func process(_ pid: Int32, start: UInt64, parent: Identity?, exitAt: UInt64?, images: [Image]) -> ProcessRecord {
        Build.process(pid, start: start, parent: parent, exitAt: exitAt, images: images, comm: "fork-comm")
    }

    /// A shell (a row) that started two workers, one still a row and one a leaf, plus a leaf
    /// with every optional field set.
    func populated() throws -> (Store, shell: ProcessRecord, row: ProcessRecord, leaf: ProcessRecord, odd: ProcessRecord) {
        let s = try Store(path: dir + "/s.db")
        let shell = process(10, start: 1_000, parent: nil, exitAt: nil, images: [image(1_000, ["sh", "loop.sh"], exe: "/bin/sh")])
        let row = process(11, start: 2_000, parent: shell.id, exitAt: 2_500, images: [image(2_100, ["python3", "w.py"])])
        let leaf = process(12, start: 3_000, parent: shell.id, exitAt: 3_500, images: [image(3_100, ["python3", "w.py"])])
        var odd = process(13, start: 4_000, parent: shell.id, exitAt: 4_900,
                          images: [image(4_100, ["sh", "-c", "exec w"], exe: "/bin/sh"), image(4_200, ["w", "", "naïve"], exe: "/opt/w")])
        odd.exitStatus = .signaled(9, coreDumped: true)
        odd.adoptedBy = Identity(pid: 1, startNs: 10)
        odd.imagesDropped = 2
        odd.images[1].interpreter = "/usr/bin/python3"
        odd.images[1].loginuid = 1000
        odd.images[1].cwd = nil
        odd.images[1].exeDevice = 0xfd01; odd.images[1].exeInode = 1 << 40; odd.images[1].cgroupId = 77
        odd.images[1].argvTruncated = true
        odd.images[1].enforcement = Enforcement(rules: ["block-w"], tier: .killAtExec, blocked: true,
                                                message: "killed at exec (rule \"block-w\")")
        var b = StoreBatch(boot: boot, bootEpochNs: epoch)
        b.processes = [shell, row]
        b.images = [(shell.id, 0, shell.images[0]), (row.id, 0, row.images[0])]
        b.leaves = [leaf, odd]
        try s.write(b, nowWallNs: 0)
        return (s, shell, row, leaf, odd)
    }

    @Test func aLeafReadsBackAsItWasWritten() throws {
        let (s, shell, _, leaf, odd) = try populated()
        let got = try #require(try s.incarnations(pid: 13).first)
        #expect(got.record == odd)
        #expect(got.boot == boot)
        #expect(got.startWallNs == epoch + 4_000)
        #expect(got.exitWallNs == epoch + 4_900)
        #expect(try s.process(boot: boot, id: leaf.id)?.record == leaf)
        #expect(try s.process(boot: boot, id: Identity(pid: 12, startNs: 3_001)) == nil)
        #expect(try s.process(boot: "other", id: leaf.id) == nil)
        // Its chain goes on through the rows.
        #expect(try s.ancestry(of: got).map(\.record.id) == [shell.id])
        #expect(try s.processCount() == 4)
        #expect(try s.incarnations(pid: 99).isEmpty)
    }

    @Test func instancesAndMatchesSpanRowsAndLeaves() throws {
        let (s, _, row, leaf, odd) = try populated()
        #expect(try s.instances(argv: ["python3", "w.py"]).map(\.record.id) == [leaf.id, row.id])
        #expect(try s.instances(argv: ["python3", "w.py"], limit: 1).map(\.record.id) == [leaf.id])
        #expect(try s.instanceCount(argv: ["python3", "w.py"]) == 2)
        // A prefix of a stored command line is not that command line.
        #expect(try s.instances(argv: ["python3"]).isEmpty)
        #expect(try s.instanceCount(argv: ["w", ""]) == 0)
        #expect(try s.instances(argv: ["w", "", "naïve"]).map(\.record.id) == [odd.id])
        #expect(try s.matching("w.py").map(\.record.id) == [leaf.id, row.id])
        #expect(try s.matching("/opt/w").map(\.record.id) == [odd.id])
        #expect(try s.matching("ïve").map(\.record.id) == [odd.id])
        #expect(try s.matching("nothing-like-this").isEmpty)
        // Counted once per process, across batches, without reading the records.
        var b = StoreBatch(boot: boot, bootEpochNs: epoch)
        b.leaves = [process(30, start: 6_000, parent: nil, exitAt: 6_500,
                            images: [image(6_100, ["python3", "w.py"]), image(6_200, ["python3", "w.py"])]),
                    process(31, start: 6_010, parent: nil, exitAt: 6_500, images: [image(6_110, ["python3", "w.py"])])]
        try s.write(b, nowWallNs: 0)
        #expect(try s.instanceCount(argv: ["python3", "w.py"]) == 4)
        #expect(try s.instances(argv: ["python3", "w.py"], limit: 3).map(\.record.id.pid) == [31, 30, 12])
        // By program: the same script with other arguments, in rows and in leaves alike.
        var c = StoreBatch(boot: boot, bootEpochNs: epoch)
        c.leaves = [process(32, start: 7_000, parent: nil, exitAt: 7_500, images: [image(7_100, ["python3", "./w.py", "--id", "4"])])]
        try s.write(c, nowWallNs: 0)
        let w = Program(executable: "/usr/bin/python3", script: "/opt/w.py")
        #expect(try s.instances(program: w).count == 5)
        #expect(try s.instances(program: w).first?.record.id.pid == 32)
        #expect(try s.instanceCount(program: w) == 5)
        #expect(try s.instances(argv: ["python3", "./w.py", "--id", "4"]).count == 1, "command lines stay exact")
    }

    /// The PID index: batches by buckets of 64 PIDs. A PID is found in every batch that holds
    /// it and only there, whichever bucket neighbours share it, after a migration that built the
    /// index from the batches' PID lists, and after retention dropped a batch.
    @Test func leavesAreFoundByPidThroughTheBucketIndex() throws {
        let (s, _, _, _, _) = try populated()
        // 64 and 127 share a bucket, 128 does not; 64 is in two batches, 4_000_000 in a far bucket.
        for (k, pids) in [[64, 127], [64, 128], [4_000_000]].enumerated() {
            var b = StoreBatch(boot: boot, bootEpochNs: epoch)
            b.leaves = LeafBatch(pids.map { process(Int32($0), start: UInt64(20_000 + k * 1_000 + $0 % 7), parent: nil, exitAt: UInt64(20_500 + k * 1_000), images: []) })
            try s.write(b, nowWallNs: 0)
        }
        func found(_ s: Store) throws -> [Int32: Int] {
            Dictionary(uniqueKeysWithValues: try [64, 127, 128, 65, 4_000_000, 12, 13].map { ($0, try s.incarnations(pid: $0).count) })
        }
        let expected: [Int32: Int] = [64: 2, 127: 1, 128: 1, 65: 0, 4_000_000: 1, 12: 1, 13: 1]
        #expect(try found(s) == expected)
        let buckets = try DatabaseQueue(path: dir + "/s.db").read { try Int.fetchOne($0, sql: "SELECT count(*) FROM leaf_pid") }
        #expect(buckets == 5, "bucket 0 (12, 13), bucket 1 of two batches, bucket 2, bucket 62500")

        // A store written before the index: the migration reads the PID lists.
        try DatabaseQueue(path: dir + "/s.db").write { db in
            try db.execute(sql: "DROP TABLE leaf_pid; DELETE FROM grdb_migrations WHERE identifier = 'v14-leaf-pid-index'")
        }
        let migrated = try Store(path: dir + "/s.db")
        #expect(try found(migrated) == expected)

        // Retention drops the first batches and their index entries.
        _ = try migrated.enforceRetention(exitedBeforeWallNs: epoch + 21_000, maxProcesses: 100, currentBoot: boot)
        #expect(try found(migrated) == [64: 1, 127: 0, 128: 1, 65: 0, 4_000_000: 1, 12: 0, 13: 0])
        let left = try DatabaseQueue(path: dir + "/s.db").read { try Int.fetchOne($0, sql: "SELECT count(*) FROM leaf_pid") }
        #expect(left == 3)
    }

    /// Where a PID's last record in a batch is: decoding stops there.
    @Test func lastPositionOfAPidInABatchList() {
        #expect(Store.lastIndex(of: 64, in: ",5,64,7,64,8,") == 3)
        #expect(Store.lastIndex(of: 64, in: ",64,") == 0)
        #expect(Store.lastIndex(of: 64, in: ",6,4,164,640,") == nil)
        #expect(Store.lastIndex(of: 4, in: ",6,4,") == 1)
    }

    /// What who-spawned reads for a program: references newest first across rows and leaves, the
    /// chosen ones read in full, and a count that stops at its cap.
    @Test func instanceReferencesAndACappedCount() throws {
        let (s, _, row, leaf, _) = try populated()
        let w = Program(executable: "/usr/bin/python3", script: "/opt/w.py")
        let refs = try s.instanceRefs(program: w, limit: 10)
        #expect(refs.map(\.id) == [leaf.id, row.id])
        #expect(refs.map(\.argv) == [["python3", "w.py"], ["python3", "w.py"]])
        let full = try s.processes(refs)
        #expect(full.map(\.record.id) == [leaf.id, row.id])
        #expect(full[0].record == leaf)
        #expect(full[1] == (try s.incarnations(pid: row.id.pid).first), "a row read as any query reads it")
        #expect(try s.instanceRefs(program: w, limit: 1).map(\.id) == [leaf.id])
        var b = StoreBatch(boot: boot, bootEpochNs: epoch)
        b.leaves = LeafBatch((0..<5).map { process(40 + $0, start: 8_000 + UInt64($0), parent: nil, exitAt: 9_000, images: [image(8_100, ["python3", "w.py"])]) })
        try s.write(b, nowWallNs: 0)
        let all = try s.instanceCount(program: w, commandLines: [["python3", "w.py"]], cap: 100)
        #expect(all.count == 7 && !all.capped)
        let capped = try s.instanceCount(program: w, commandLines: [["python3", "w.py"]], cap: 3)
        #expect(capped.count == 3 && capped.capped)
        let rowOnly = try s.instanceCount(program: w, commandLines: [["python3", "other.py"]], cap: 100)
        #expect(rowOnly.count == 1 && !rowOnly.capped, "the row; no leaf ran that command line")
    }

    @Test func exportMergesLeavesIntoTimeOrder() throws {
        let (s, shell, row, leaf, odd) = try populated()
        // A later batch whose leaf started before the previous batch's last exec.
        var b = StoreBatch(boot: boot, bootEpochNs: epoch)
        let early = process(14, start: 3_050, parent: shell.id, exitAt: 5_000, images: [image(4_150, ["python3", "w.py"])])
        b.leaves = [early]
        try s.write(b, nowWallNs: 0)
        var rows: [ExportRow] = []
        try s.export(ExportFilter()) { rows.append($0) }
        #expect(rows.map(\.wallNs) == [1_000, 2_100, 3_100, 4_100, 4_150, 4_200].map { epoch + $0 })
        #expect(rows.map(\.id) == [shell.id, row.id, leaf.id, odd.id, early.id, odd.id])
        let last = rows[5]
        #expect(last.isLast && !rows[3].isLast)
        #expect(last.parentComm == "sh" && last.parentArgv == ["sh", "loop.sh"])
        #expect(last.exitWallNs == epoch + 4_900 && last.exitStatus == .signaled(9, coreDumped: true))
        #expect(last.enforcement == odd.images[1].enforcement)

        var f = ExportFilter()
        f.sinceWallNs = epoch + 3_100; f.untilWallNs = epoch + 4_200
        var some: [Identity] = []
        try s.export(f) { some.append($0.id) }
        #expect(some == [leaf.id, odd.id, early.id])
        f = ExportFilter(); f.pid = 13
        some = []
        #expect(try s.export(f) { some.append($0.id) } == 2)
        #expect(some == [odd.id, odd.id])
        f = ExportFilter(); f.rule = "block-w"
        some = []
        try s.export(f) { some.append($0.id) }
        #expect(some == [odd.id])
        f = ExportFilter(); f.match = "w.py"
        some = []
        try s.export(f) { some.append($0.id) }
        #expect(some == [row.id, leaf.id, early.id])
    }

    @Test func retentionDropsWholeBatchesOldestFirst() throws {
        let (s, _, _, _, _) = try populated()
        var b = StoreBatch(boot: boot, bootEpochNs: epoch)
        b.leaves = LeafBatch((0..<3).map { process(20 + $0, start: 10_000, parent: nil, exitAt: 11_000, images: []) })
        try s.write(b, nowWallNs: 0)
        #expect(try s.processCount() == 7)
        // By age: the first batch's last exit (4,900) is before the cutoff, the second's is not.
        #expect(try s.enforceRetention(exitedBeforeWallNs: epoch + 5_000, maxProcesses: 100, currentBoot: boot) == 3)
        #expect(try s.incarnations(pid: 12).isEmpty && s.incarnations(pid: 11).isEmpty)
        #expect(try s.processCount() == 4)
        // By count: exited rows and batches go oldest first; the live shell stays.
        #expect(try s.enforceRetention(exitedBeforeWallNs: 0, maxProcesses: 1, currentBoot: boot) == 3)
        #expect(try s.processCount() == 1)
        #expect(try s.incarnations(pid: 10).count == 1)
    }

    /// A process the table never filed is written as the record the table would have built.
    @Test func aShortLivedProcessEncodesAsItsRecord() throws {
        func exec(_ interp: String?, loginuid: UInt32?, cwd: String?, truncated: Bool) -> ExecEvent {
            ExecEvent(time: 3_100, process: Identity(pid: 12, startNs: 3_000), parent: Identity(pid: 10, startNs: 1_000),
                      realParent: Identity(pid: 10, startNs: 1_000), oldPid: 12, filename: "/usr/bin/python3", interpreter: interp,
                      exeDevice: 0xfd01, exeInode: 1 << 40, argv: ["python3", "w.py", "", "naïve"], argc: 4, argvTruncated: truncated,
                      comm: "python3", uid: 1000, euid: 0, gid: 7, loginuid: loginuid, cgroupId: 77, cgroup: "/system.slice/w.service",
                      cwd: cwd, cwdTruncated: false, flags: 0)
        }
        let cases = [
            ShortLived(exec: exec(nil, loginuid: nil, cwd: "/opt", truncated: false),
                       exit: ExitEvent(time: 3_500, process: Identity(pid: 12, startNs: 3_000), parent: nil,
                                       realParent: Identity(pid: 10, startNs: 1_000), status: .exited(3)),
                       parent: Identity(pid: 10, startNs: 1_000)),
            ShortLived(exec: exec("/bin/sh", loginuid: 1000, cwd: nil, truncated: true),
                       exit: ExitEvent(time: 3_900, process: Identity(pid: 12, startNs: 3_000), parent: nil,
                                       realParent: Identity(pid: 1, startNs: 10), status: .signaled(9, coreDumped: true)),
                       parent: Identity(pid: 10, startNs: 1_000), parentIsCurrentOnly: true, adoptedBy: Identity(pid: 1, startNs: 10)),
            ShortLived(exec: exec(nil, loginuid: 0, cwd: "…/deep", truncated: false),
                       exit: ExitEvent(time: 3_200, process: Identity(pid: 12, startNs: 3_000), parent: nil,
                                       realParent: Identity(pid: 0, startNs: 0), status: .signaled(15, coreDumped: false)),
                       parent: nil),
        ]
        for var c in cases {
            var direct = LeafBatch(), built = LeafBatch()
            withUnsafePointer(to: &c) { direct.append($0) }
            built.append(ProcessRecord(c))
            #expect(direct.records.bytes == built.records.bytes)
            #expect(direct.pids == built.pids && direct.first == built.first && direct.last == built.last)
            #expect(direct.keys() == built.keys())
            #expect(try LeafCodec.decode(direct.records.bytes) == [ProcessRecord(c)])
        }
    }

    /// The writer encodes a shared texts box once: leaves sharing one, then another, then the
    /// first again (and an equal box that is not the same object) still encode as their records.
    @Test func leavesSharingTextsEncodeAsTheirRecords() throws {
        let loop = ExecTexts(filename: "/bin/true", interpreter: nil, argv: ["true", "--x"], argvTruncated: false,
                             comm: "true", cgroup: "/", cwd: "/root", cwdTruncated: false)
        let other = ExecTexts(filename: "/usr/bin/python3", interpreter: "/bin/sh", argv: ["python3", "w.py"],
                              argvTruncated: true, comm: "python3", cgroup: "/w.service", cwd: nil, cwdTruncated: false)
        let twin = ExecTexts(filename: "/bin/true", interpreter: nil, argv: ["true", "--x"], argvTruncated: false,
                             comm: "true", cgroup: "/", cwd: "/root", cwdTruncated: false)
        #expect(twin !== loop && twin == loop)
        var leaves: [ShortLived] = []
        for (k, t) in [loop, loop, other, loop, twin, other].enumerated() {
            let id = Identity(pid: Int32(100 + k), startNs: UInt64(5_000 + 100 * k))
            let x = ExecEvent(time: id.startNs + 10, process: id, parent: Identity(pid: 50, startNs: 1_000),
                              realParent: Identity(pid: 50, startNs: 1_000), oldPid: id.pid, texts: t,
                              exeDevice: UInt64(k), exeInode: 7, argc: t.argv.count, uid: UInt32(k), euid: 0, gid: 0,
                              loginuid: k % 2 == 0 ? nil : 1000, cgroupId: 9, flags: 0)
            leaves.append(ShortLived(exec: x, exit: ExitEvent(time: id.startNs + 50, process: id, parent: nil,
                                                              realParent: Identity(pid: 50, startNs: 1_000), status: .exited(Int32(k))),
                                     parent: Identity(pid: 50, startNs: 1_000)))
        }
        var direct = LeafBatch()
        for k in leaves.indices { withUnsafePointer(to: &leaves[k]) { direct.append($0) } }
        let built = LeafBatch(leaves.map(ProcessRecord.init))
        #expect(direct.records.bytes == built.records.bytes)
        #expect(try LeafCodec.decode(direct.records.bytes) == leaves.map(ProcessRecord.init))
        func keys(_ b: LeafBatch) throws -> [[UInt8]: UInt64] {
            var r = LeafCodec.Reader(b.keys()), out: [[UInt8]: UInt64] = [:]
            while case let n = try r.uint(), n > 0 { out[Array(try r.blob())] = n }
            while !r.atEnd { out[Array(try r.blob()), default: 0] += 100 }   // exes
            return out
        }
        #expect(try keys(direct) == keys(built))
        #expect(try keys(direct) == [Array("true\0--x".utf8): 4, Array("python3\0w.py".utf8): 2,
                                     Array("/bin/true".utf8): 100, Array("/usr/bin/python3".utf8): 100])
        // A record between two leaves of one box (a flush files the table's leaves too) counts apart.
        var mixed = LeafBatch()
        withUnsafePointer(to: &leaves[0]) { mixed.append($0) }
        mixed.append(ProcessRecord(leaves[2]))
        withUnsafePointer(to: &leaves[1]) { mixed.append($0) }
        #expect(try keys(mixed) == [Array("true\0--x".utf8): 2, Array("python3\0w.py".utf8): 1,
                                    Array("/bin/true".utf8): 100, Array("/usr/bin/python3".utf8): 100])
        #expect(try LeafCodec.decode(mixed.records.bytes) == [leaves[0], leaves[2], leaves[1]].map(ProcessRecord.init))
    }

    /// Stores written before form 2 hold form-1 blobs: they read back as they were written.
    @Test func pidDigitsAreTheDecimalText() {
        for v: Int32 in [0, 1, 9, 10, 99, 100, 4_194_304, 32_767, -1, -10, .max, .min] {
            var out: [UInt8] = [1]
            LeafBatch.decimal(v, to: &out)
            #expect(out == [1] + Array(String(v).utf8), "\(v)")
        }
    }

    @Test func aForm1BatchStillReads() throws {
        let (_, shell, row, leaf, odd) = try populated()
        var w = LeafCodec.Writer()
        for r in [shell, row, leaf, odd] { Form1.record(r, &w) }
        #expect(w.bytes.first != 0)
        #expect(try LeafCodec.decode(w.bytes) == [shell, row, leaf, odd])
        #expect(throws: LeafCodec.Malformed.self) { try LeafCodec.decode([0, 3] + w.bytes) }
    }

    /// Form 2 writes each record against the previous one: a respawn loop's leaves are small,
    /// and values that go down or jump (a PID wrapping, a start before the last, the largest
    /// numbers) still round-trip.
    @Test func form2IsSmallAndRoundTripsAnyValues() throws {
        let texts = ExecTexts(filename: "/bin/true", interpreter: nil, argv: ["true"], argvTruncated: false,
                              comm: "true", cgroup: "/system.slice/cron.service", cwd: "/var/spool/cron", cwdTruncated: false)
        func leaf(pid: Int32, start: UInt64, parent: Identity) -> ShortLived {
            let id = Identity(pid: pid, startNs: start)
            return ShortLived(exec: ExecEvent(time: start &+ 90_000, process: id, parent: parent, realParent: parent, oldPid: pid,
                                              texts: texts, exeDevice: 0xfd01, exeInode: 1_311_000, argc: 1, uid: 0, euid: 0,
                                              gid: 0, loginuid: nil, cgroupId: 4_242, flags: 0),
                              exit: ExitEvent(time: start &+ 700_000, process: id, parent: parent, realParent: parent, status: .exited(0)),
                              parent: parent)
        }
        let cron = Identity(pid: 812, startNs: 9_000_000_000)
        var loop = LeafBatch()
        for k in 0..<100 {
            var s = leaf(pid: Int32(30_000 + 2 * k), start: 60_000_000_000 + UInt64(k) * 210_000, parent: cron)
            withUnsafePointer(to: &s) { loop.append($0) }
        }
        #expect(loop.records.bytes.count < 100 * 34)
        var odd = [leaf(pid: 32_767, start: 70_000_000_000, parent: cron), leaf(pid: 300, start: 69_000_000_000, parent: cron),
                   leaf(pid: Int32.max, start: UInt64.max - 5, parent: Identity(pid: 1, startNs: 0)),
                   leaf(pid: 2, start: 1, parent: Identity(pid: Int32.max, startNs: UInt64.max))]
        var direct = LeafBatch()
        for k in odd.indices { withUnsafePointer(to: &odd[k]) { direct.append($0) } }
        #expect(try LeafCodec.decode(direct.records.bytes) == odd.map(ProcessRecord.init))
        #expect(direct.records.bytes == LeafBatch(odd.map(ProcessRecord.init)).records.bytes)

        // Canonically equal texts with different bytes are not repeats: each reads back as given.
        func record(_ pid: Int32, _ text: String) -> ProcessRecord {
            var r = ProcessRecord(id: Identity(pid: pid, startNs: 5), parent: nil, comm: text)
            r.images = [Image(time: 6, filename: "/x/" + text, argv: [text], comm: text, cwd: text)]
            return r
        }
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed && Array(composed.utf8) != Array(decomposed.utf8))
        let back = try LeafCodec.decode(LeafBatch([record(1, composed), record(2, decomposed)]).records.bytes)
        #expect(back.map { Array($0.comm.utf8) } == [Array(composed.utf8), Array(decomposed.utf8)])
        #expect(back.map { Array($0.images[0].argv[0].utf8) } == [Array(composed.utf8), Array(decomposed.utf8)])
        #expect(back.map { Array($0.images[0].cwd!.utf8) } == [Array(composed.utf8), Array(decomposed.utf8)])
        // The search keys count each byte form apart: the store finds command lines byte for byte.
        var keys = LeafCodec.Reader(LeafBatch([record(1, composed), record(2, decomposed), record(3, decomposed)]).keys())
        var counted: [[UInt8]: UInt64] = [:]
        while case let n = try keys.uint(), n > 0 { counted[Array(try keys.blob())] = n }
        #expect(counted == [Array(composed.utf8): 1, Array(decomposed.utf8): 2])
        var twoImages = record(4, composed)
        twoImages.images.append(record(4, decomposed).images[0])
        keys = LeafCodec.Reader(LeafBatch([twoImages]).keys())
        counted = [:]
        while case let n = try keys.uint(), n > 0 { counted[Array(try keys.blob())] = n }
        #expect(counted == [Array(composed.utf8): 1, Array(decomposed.utf8): 1])
    }

    @Test func aCorruptBatchIsAnErrorNotAWrongAnswer() throws {
        let (s, _, _, _, _) = try populated()
        let q = try DatabaseQueue(path: dir + "/s.db")
        try q.write { try $0.execute(sql: "UPDATE leaf_batch SET records = substr(records, 1, 20)") }
        #expect { try s.incarnations(pid: 13) } throws: { e in
            (e as? StoreError)?.reason.contains("truncated or malformed") == true
        }
    }
}
