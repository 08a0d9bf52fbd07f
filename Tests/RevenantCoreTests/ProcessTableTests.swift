import RevenantTestSupport
import Testing
@testable import RevenantCore

@Suite struct ProcessTableTests {
    let initP = Build.id(1, 0)

    @Test func chainKeepsForkTimeParents() {
        var t = ProcessTable()
        let a = Build.id(100, 1), b = Build.id(101, 2), c = Build.id(102, 3)
        t.seed(ProcessRecord(id: initP, parent: nil, comm: "systemd"))
        t.apply(Build.fork(a, of: initP)); t.apply(Build.exec(a, ["/bin/sh"], parent: initP, real: initP))
        t.apply(Build.fork(b, of: a)); t.apply(Build.exec(b, ["/usr/sbin/cron"], parent: a, real: a))
        t.apply(Build.fork(c, of: b)); t.apply(Build.exec(c, ["/usr/bin/python3", "w.py"], parent: b, real: b))
        #expect(t.ancestry(of: c).map(\.id) == [b, a, initP])
        #expect(Lineage.chain(t, of: c) == "cron(101) ← sh(100) ← systemd(1)")
        #expect(t.isInSubtree(c, of: a))
        #expect(!t.isInSubtree(a, of: c))
    }

    /// Lazy forks: an exec or exit can be the first record of a process; a fork record may come
    /// twice (two CPUs announcing it, or the kernel map read on request) and the first stands.
    @Test func applySaysWhenItAddedARecord() {
        var t = ProcessTable()
        let sh = Build.id(300, 1), bare = Build.id(301, 2), worker = Build.id(302, 3)
        t.seed(ProcessRecord(id: initP, parent: nil, comm: "systemd"))
        func add(_ e: Event) -> Bool { t.apply(e) }
        #expect(add(Build.exec(sh, ["/bin/sh"], parent: initP, real: initP)), "first seen at its exec")
        #expect(!add(Build.exec(sh, ["/bin/sleep", "1"], parent: initP, real: initP)))
        #expect(add(Build.fork(bare, of: sh)))
        #expect(t[bare]?.name == "sleep", "a bare fork inherits its parent's image")
        #expect(!add(Build.fork(bare, of: initP)), "a second fork record is ignored")
        #expect(t[bare]?.parent == sh)
        #expect(add(Build.exec(worker, ["/usr/bin/python3", "w.py"], parent: bare, real: initP)))
        #expect(t.ancestry(of: worker).map(\.id) == [bare, sh, initP])
        #expect(!add(Build.exit(bare, parent: sh, real: sh)))
        #expect(add(Build.exit(Build.id(303, 4), parent: sh, real: sh)), "first seen at its exit")
        #expect(!add(Build.exit(Build.id(303, 4), parent: sh, real: sh)))
    }

    /// A process forked as tracing started is seeded from /proc first; its fork record then
    /// gives it the exact identity and fork-time parent, but is not a new record (a row holds it).
    @Test func aForkRecordReplacesTheSeededOneWithoutBeingNew() {
        var t = ProcessTable()
        let sh = Build.id(500, 1), exact = Identity(pid: 501, startNs: 2_000_000_123)
        let tick = Identity(pid: 501, startTicks: exact.startTicks)
        t.seed(ProcessRecord(id: initP, parent: nil, comm: "systemd"))
        t.apply(Build.exec(sh, ["/bin/sh"], parent: initP, real: initP))
        var seeded = ProcessRecord(id: tick, parent: initP, comm: "sh")
        seeded.parentIsCurrentOnly = true
        t.seed(seeded)
        func add(_ e: Event) -> Bool { t.apply(e) }
        #expect(!add(Build.fork(exact, of: sh)))
        #expect(t[exact]?.seeded == false)
        #expect(t[exact]?.parent == sh)
        #expect(t[tick]?.id == exact)
        #expect(!add(Build.fork(exact, of: initP)), "a second fork record is ignored")
        #expect(t[exact]?.parent == sh)
    }

    /// A process that ended leaving children the table has not seen is a row: they may name it later.
    @Test func leftChildrenMakeARow() {
        var t = ProcessTable()
        let x = Build.id(400, 1), y = Build.id(401, 2)
        t.seed(ProcessRecord(id: initP, parent: nil, comm: "systemd"))
        for p in [x, y] {
            t.apply(Build.fork(p, of: initP))
            var e = ExitEvent(time: p.startNs + 1, process: p, parent: initP, realParent: initP, status: .exited(0))
            e.leftChildren = p == x
            t.apply(.exit(e))
        }
        let (leaves, rows) = t.changes([x: true, y: true])
        #expect(leaves.map(\.id) == [y])
        #expect(rows.map(\.record.id) == [x])
    }

    /// What the store may keep many to a row: forked since the last batch, ended, nobody's parent.
    @Test func changesSplitLeavesFromRows() {
        var t = ProcessTable()
        let a = Build.id(100, 1), b = Build.id(101, 2), c = Build.id(102, 3), d = Build.id(103, 4), e = Build.id(104, 5), f = Build.id(105, 6)
        t.seed(ProcessRecord(id: initP, parent: nil, comm: "systemd"))
        for p in [a, b, c, d, f] { t.apply(Build.fork(p, of: p == a ? initP : a)); t.apply(Build.exec(p, ["/bin/sh"], parent: a, real: a)) }
        t.apply(Build.fork(e, of: d))
        for p in [b, d, e, f] { t.apply(Build.exit(p, parent: nil, real: a)) }
        let changed: [Identity: Bool] = [a: false, b: true, c: true, d: true, e: true, f: false]
        let (leaves, rows) = t.changes(changed)
        // b ended; e ended and never exec'd; d forked e; c runs; f and a were batched before.
        #expect(Set(leaves.map(\.id)) == [b, e])
        #expect(Dictionary(uniqueKeysWithValues: rows.map { ($0.record.id, $0.born) }) == [a: false, c: true, d: true, f: false])
        #expect(leaves.first { $0.id == e }?.parent == d)
        #expect(t.changes([:]).leaves.isEmpty)
    }

    @Test func doubleForkRecordsAdoptionApart() {
        var t = ProcessTable()
        let shell = Build.id(200, 1), child = Build.id(201, 2), grand = Build.id(202, 3)
        t.apply(Build.fork(child, of: shell)); t.apply(Build.exec(child, ["/bin/sh"], parent: shell, real: shell))
        t.apply(Build.fork(grand, of: child))
        t.apply(Build.exit(child, parent: shell, real: shell))
        // The grandchild execs after its parent died: the kernel reports PID 1 as its parent now.
        t.apply(Build.exec(grand, ["/opt/worker"], parent: child, real: initP, at: 5_000))
        let g = t[grand]!
        #expect(g.parent == child)
        #expect(g.adoptedBy == initP)
        #expect(t.ancestry(of: grand).first?.id == child)
        #expect(t[child]!.exited)
    }

    @Test func execAddsImagesToOneProcess() {
        var t = ProcessTable()
        let p = Build.id(300, 1), sh = Build.id(301, 2)
        t.apply(Build.exec(p, ["/bin/bash"], parent: nil, real: initP))
        t.apply(Build.fork(sh, of: p))
        #expect(t[sh]!.images.map(\.filename) == ["/bin/bash"])  // inherited until it execs
        t.apply(Build.exec(sh, ["/bin/sh", "-c", "exec python3 x.py"], parent: p, real: p, at: 1))
        t.apply(Build.exec(sh, ["python3", "x.py"], parent: p, real: p, at: 2))
        #expect(t[sh]!.images.map(\.filename) == ["/bin/sh", "python3"])
        #expect(t[sh]!.name == "python3")
        #expect(t.count == 2)
    }

    /// Forked before tracing, exec'd and exited before /proc was read: only its exec and exit
    /// are seen, with no fork-time parent. Its parent at exec keeps it under its spawner.
    @Test func aProcessSeenFirstAtExecKeepsItsParentThen() {
        var t = ProcessTable()
        let shell = Identity(pid: 70, startTicks: 3)
        t.seed(ProcessRecord(id: shell, parent: initP, comm: "sh"))
        let loopShell = Identity(pid: 70, startNs: 3 * Identity.nsPerTick + 5)
        let early = Build.id(71, 9), later = Build.id(72, 10)
        t.apply(Build.exec(early, ["/bin/sh", "-c", "exit 0"], parent: nil, real: loopShell))
        t.apply(Build.exit(early, parent: nil, real: loopShell))
        t.apply(Build.fork(later, of: loopShell))
        t.apply(Build.exec(later, ["/bin/sh", "-c", "exit 0"], parent: loopShell, real: loopShell))
        #expect(t[early]!.parent == loopShell && t[early]!.parentIsCurrentOnly)
        #expect(!t[later]!.parentIsCurrentOnly)
        #expect(t.ancestry(of: early).first?.id == loopShell)
        #expect(Attribution.persistentSpawner(t.instances([early, later], bootEpochNs: 0))?.id == loopShell)
        // Seen first at its exit, the same.
        let gone = Build.id(73, 11)
        t.apply(Build.exit(gone, parent: nil, real: loopShell))
        #expect(t.ancestry(of: gone).first?.id == loopShell)
    }

    @Test func pidReuseGivesTwoIdentities() {
        var t = ProcessTable()
        let first = Build.id(400, 1), second = Build.id(400, 9)
        t.apply(Build.fork(first, of: initP)); t.apply(Build.exit(first, parent: initP, real: initP))
        t.apply(Build.fork(second, of: initP))
        #expect(first != second)
        #expect(t[first]!.exited)
        #expect(!t[second]!.exited)
        #expect(t.latest(pid: 400)?.id == second)
    }

    @Test func missedExitIsClosedByReuse() {
        var t = ProcessTable()
        let first = Build.id(401, 1), second = Build.id(401, 9)
        t.apply(Build.fork(first, of: initP))
        t.apply(Build.fork(second, of: initP))
        #expect(t[first]!.exited)
        #expect(t[first]!.exitStatus == nil)
    }

    @Test func identityTextRoundTrips() {
        let exact = Identity(pid: 5, startNs: 1_234_567_891_234)
        let seeded = Identity(pid: 5, startTicks: 123_456)
        #expect(exact != seeded)
        #expect(exact.sameTick(seeded))
        #expect(exact.description == "5@1234.567891234")
        #expect(seeded.description == "5@1234.56")
        #expect(Identity("5@1234.567891234") == exact)
        #expect(Identity("5@1234.56") == seeded)
        #expect(Identity("5@0.000000007") == Identity(pid: 5, startNs: 7))
        #expect(Identity("5@1234.5") == nil)
        #expect(Identity("x@1.00") == nil)
        #expect(Identity("5@1234") == nil)
        // Two processes with one PID inside one tick stay two.
        #expect(Identity(pid: 5, startNs: 1_234_567_891_235) != exact)
    }

    @Test func seededProcessJoinsItsKernelIdentity() {
        var t = ProcessTable()
        let seededParent = Identity(pid: 70, startTicks: 150)          // 1.50 s, from /proc
        let kernelParent = Identity(pid: 70, startNs: 1_503_000_000)   // the same process, exact
        t.seed(ProcessRecord(id: Identity(pid: 1, startTicks: 0), parent: nil, comm: "init"))
        t.seed(ProcessRecord(id: seededParent, parent: Identity(pid: 1, startTicks: 0), comm: "bash"))
        let kid = Build.id(71, 3)
        t.apply(Build.fork(kid, of: kernelParent))
        t.apply(Build.exec(kid, ["/bin/true"], parent: kernelParent, real: kernelParent))
        #expect(t.ancestry(of: kid).map(\.name) == ["bash", "init"])
        #expect(t[kernelParent]?.seeded == true)
        #expect(t[seededParent]?.id == kernelParent)
        #expect(t[kid]?.adoptedBy == nil)
        #expect(t.count == 3)
    }

    @Test func retentionEvictsOldestExitedButKeepsLiveChains() {
        var t = ProcessTable(exitedRetention: 3)
        let keeper = Build.id(10, 1), live = Build.id(11, 2)
        t.apply(Build.fork(keeper, of: initP)); t.apply(Build.fork(live, of: keeper))
        t.apply(Build.exit(keeper, parent: initP, real: initP))
        for i in 0..<10 {
            let p = Build.id(Int32(100 + i), UInt64(10 + i))
            t.apply(Build.fork(p, of: initP)); t.apply(Build.exit(p, parent: initP, real: initP))
        }
        // The exited parent of a live process stays; only 3 other exited ones remain.
        #expect(t[keeper] != nil)
        #expect(t.ancestry(of: live).first?.id == keeper)
        #expect(t.all.filter { $0.exited && $0.id != keeper }.count == 3)
        #expect(t.evicted == 7)
        #expect(t[Build.id(109, 19)] != nil)
        #expect(t[Build.id(100, 10)] == nil)
        // Once the child exits, the parent becomes evictable too.
        t.apply(Build.exit(live, parent: keeper, real: initP))
        #expect(t.all.filter(\.exited).count == 3)
    }

    @Test func seededLineageAboveUnknownIsMarked() {
        var t = ProcessTable()
        var orphan = ProcessRecord(id: Build.id(50, 1), parent: nil, comm: "worker")
        orphan.parentIsCurrentOnly = true
        t.seed(orphan)
        let kid = Build.id(51, 2)
        t.apply(Build.fork(kid, of: orphan.id))
        #expect(t[orphan.id]!.seeded)
        #expect(Lineage.chain(t, of: kid) == "worker(50) ← ?")
        let gone = Build.id(52, 3)
        t.apply(Build.fork(gone, of: Build.id(49, 0)))
        #expect(Lineage.chain(t, of: gone) == "?(49)")
    }

    @Test func imagesAreBounded() {
        var t = ProcessTable()
        let p = Build.id(60, 1)
        for i in 0..<(ProcessTable.maxImages + 5) {
            t.apply(Build.exec(p, ["/bin/x\(i)"], parent: nil, real: initP, at: UInt64(i)))
        }
        #expect(t[p]!.images.count == ProcessTable.maxImages)
        #expect(t[p]!.images.first?.filename == "/bin/x0")
        #expect(t[p]!.images.last?.filename == "/bin/x\(ProcessTable.maxImages + 4)")
        #expect(t[p]!.imagesDropped == 5)
    }

    /// One window of records taken as the daemon takes them, with or without parking: the
    /// leaves and rows a store batch gets, by identity.
    private func window(_ events: [Event], parking: Bool, seed: [ProcessRecord]) -> (leaves: [Identity: ProcessRecord], rows: [Identity: ProcessRecord], table: ProcessTable) {
        var t = ProcessTable()
        for r in seed { t.seed(r) }
        var leaves: [ProcessRecord] = []
        var dirty: [Identity: Bool] = [:]
        func noteUnparked() { for u in t.drainUnparked() { dirty[u] = true } }
        for e in events {
            if parking, case .exec(let x) = e, t.park(x) { noteUnparked(); continue }
            if parking, case .exit(let x) = e, t.leaf(exiting: x, { leaves.append(ProcessRecord($0.pointee)) }) { noteUnparked(); continue }
            let added = t.apply(e)
            noteUnparked()
            let id = t.canonical(e.process)
            if added { dirty[id] = true } else if dirty[id] == nil { dirty[id] = false }
        }
        let (l, rows) = t.changes(dirty)
        leaves += l
        return (Dictionary(uniqueKeysWithValues: leaves.map { ($0.id, $0) }),
                Dictionary(uniqueKeysWithValues: rows.map { ($0.record.id, $0.record) }), t)
    }

    /// Parking short-lived processes changes how the table gets there, never what the store gets.
    @Test func parkedProcessesBecomeTheLeavesAndRowsApplyWouldMake() {
        let sh = Build.id(100, 1), quick = Build.id(101, 2), forker = Build.id(102, 3), kid = Build.id(103, 4), runs = Build.id(104, 5)
        let twice = Build.id(105, 6), orphaned = Build.id(106, 7), orphan = Build.id(107, 8), leftKids = Build.id(108, 9)
        let oldSeeded = ProcessRecord(id: Identity(pid: 90, startTicks: 50), parent: initP, comm: "cron")
        let cronExact = Identity(pid: 90, startNs: 50 * Identity.nsPerTick + 3)
        let underCron = Build.id(109, 10)
        let events: [Event] = [
            Build.fork(sh, of: initP), Build.exec(sh, ["/bin/sh"], parent: initP, real: initP),
            // exec'd and ended, forking nothing: a leaf
            Build.exec(quick, ["/bin/true"], parent: sh, real: sh), Build.exit(quick, parent: sh, real: sh),
            // named as a parent by its child's records: filed
            Build.exec(forker, ["/bin/sh", "-c", "x"], parent: sh, real: sh),
            Build.exec(kid, ["/bin/true"], parent: forker, real: forker), Build.exit(kid, parent: forker, real: forker),
            Build.exit(forker, parent: sh, real: sh),
            // still running at the batch
            Build.exec(runs, ["/usr/bin/sleep", "9"], parent: sh, real: sh),
            // two images
            Build.exec(twice, ["/bin/sh", "-c", "exec true"], parent: sh, real: sh),
            Build.exec(twice, ["/bin/true"], parent: sh, real: sh, at: 10), Build.exit(twice, parent: sh, real: sh),
            // its parent ended first: adopted by init at its exit
            Build.exec(orphaned, ["/bin/sh"], parent: sh, real: sh),
            Build.exec(orphan, ["/opt/worker"], parent: orphaned, real: orphaned),
            Build.exit(orphaned, parent: sh, real: sh), Build.exit(orphan, parent: orphaned, real: initP, at: 5_000),
            // children left behind: a row, never a leaf
            Build.exec(leftKids, ["/bin/sh"], parent: sh, real: sh),
            .exit(ExitEvent(time: leftKids.startNs + 1, process: leftKids, parent: sh, realParent: sh, status: .exited(0), leftChildren: true)),
            // a parent seeded from /proc at tick precision: a row, as `changes` decides
            Build.exec(underCron, ["/bin/true"], parent: cronExact, real: cronExact), Build.exit(underCron, parent: cronExact, real: cronExact),
        ]
        let seed = [ProcessRecord(id: initP, parent: nil, comm: "systemd"), oldSeeded]
        let plain = window(events, parking: false, seed: seed)
        let parked = window(events, parking: true, seed: seed)
        #expect(parked.leaves == plain.leaves)
        #expect(parked.rows == plain.rows)
        #expect(Set(plain.leaves.keys) == [quick, kid, twice, orphan])
        #expect(Set(plain.rows.keys).isSuperset(of: [sh, forker, runs, orphaned, leftKids, underCron]))
        #expect(parked.leaves[orphan]?.adoptedBy == initP)
        #expect(parked.leaves[twice]?.images.map(\.filename) == ["/bin/sh", "/bin/true"])
        // What stays live is filed, and only that.
        #expect(parked.table.parkedCount == 0)
        #expect(parked.table[runs]?.image?.filename == "/usr/bin/sleep")
        #expect(parked.table[quick] == nil && plain.table[quick] != nil)
    }

    /// Filed on demand (a policy reload reads the whole table): then found, and reported as new.
    @Test func parkedProcessesAreFiledOnDemand() {
        var t = ProcessTable()
        let p = Build.id(310, 2)
        guard case .exec(let x) = Build.exec(p, ["/usr/bin/sleep", "60"], parent: initP, real: initP) else {
            Issue.record("Build.exec made no exec event"); return
        }
        let parked = t.park(x)
        #expect(parked && t[p] == nil)
        t.unparkAll()
        #expect(t[p]?.image?.filename == "/usr/bin/sleep")
        #expect(t.drainUnparked() == [p])
        #expect(t.parkedCount == 0)
    }

    /// A leaf handed out at its exit still retires a live process the table had under its PID.
    @Test func aParkedLeafClosesAMissedExitOnItsPid() {
        var t = ProcessTable()
        let old = Build.id(300, 1), reuse = Build.id(300, 9)
        t.apply(Build.fork(old, of: initP))
        guard case .exec(let x) = Build.exec(reuse, ["/bin/true"], parent: initP, real: initP),
              case .exit(let e) = Build.exit(reuse, parent: initP, real: initP) else {
            Issue.record("Build.exec/exit made no exec or exit event"); return
        }
        let parked = t.park(x)
        var handed: [Identity] = []
        let asLeaf = t.leaf(exiting: e) { handed.append($0.pointee.exit.process) }
        #expect(parked && asLeaf)
        #expect(handed == [reuse])
        #expect(t[old]!.exited)
        // A process the table knows is not parked.
        guard case .exec(let again) = Build.exec(old, ["/bin/sh"], parent: initP, real: initP) else {
            Issue.record("Build.exec made no exec event"); return
        }
        let parkedAgain = t.park(again)
        #expect(!parkedAgain)
    }
}
