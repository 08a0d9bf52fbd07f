import Foundation
import GRDB
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

/// The daemon with its real store, and `who-spawned` reading that store.
@Suite(.serialized) struct DaemonTests {
    @Test(.kernel) func whoSpawnedSeesBothIncarnationsOfAReusedPid() async throws {
        try Kernel.check()
        let d = try DaemonUnderTest(name: "reuse")
        try await d.start()
        let tok = token("chain")
        // A (sh) → leaf (sh, then exec sleep). A waits for the leaf, then runs `true`.
        let a = spawn(["/bin/sh", "-c", "/bin/sh -c 'exec /bin/sleep 30'; true # \(tok)"], wait: false)
        var leaf: Int32?
        for _ in 0..<100 where leaf == nil {
            try await Task.sleep(for: .milliseconds(20))
            leaf = childrenOf(a.pid).first
        }
        let first = try #require(leaf, "the leaf never started")
        try await Task.sleep(for: .milliseconds(100))
        kill(first, SIGKILL)
        var st: Int32 = 0
        waitpid(a.pid, &st, 0)

        // Hand the same PID to a new process spawned by this test.
        var reused = false
        for _ in 0..<50 where !reused {
            try setNextPid(first)
            reused = spawn(["/bin/echo", tok + "-second"]).pid == first
        }
        try #require(reused, "could not get PID \(first) again")
        try await d.settle()
        // The echo was born and ended between two flushes and forked nothing: a leaf, stored
        // with others in one batch row, and read back below like any process.
        let asLeaf = try await DatabaseQueue(path: d.db).read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM leaf_batch WHERE instr(pids, ?) > 0", arguments: [",\(first),"]) ?? 0
        }
        #expect(asLeaf >= 1)

        let newest = try whoSpawnedJSON(first, db: d.db)
        let incs = try #require(newest["incarnations"] as? [[String: Any]])
        #expect(incs.count >= 2)
        // Newest first: the echo spawned by this test.
        #expect((newest["images"] as? [[String: Any]])?.last?["argv"] as? [String] == ["/bin/echo", tok + "-second"])
        let anc2 = try #require(newest["ancestry"] as? [[String: Any]])
        #expect(anc2.first?["pid"] as? Int == Int(getpid()))

        // The killed one, by its identity: forked by A, exec'd sleep, died of SIGKILL. Other
        // processes (parallel suites) may have held the PID in between: look it up by content.
        var found: (String, [String: Any])?
        for inc in incs.dropFirst() {
            guard let id = inc["id"] as? String else { continue }
            let j = try whoSpawnedJSON(first, db: d.db, extra: ["--id", id])
            if (j["images"] as? [[String: Any]])?.last?["exe"] as? String == "/bin/sleep" { found = (id, j); break }
        }
        let (killedId, old) = try #require(found, "no incarnation of \(first) ran /bin/sleep")
        #expect(old["id"] as? String == killedId)
        #expect(old["exit_status"] as? String == "signal 9 (SIGKILL)")
        let images = try #require(old["images"] as? [[String: Any]])
        #expect(images.map { $0["exe"] as? String } == ["/bin/sh", "/bin/sleep"])
        let anc1 = try #require(old["ancestry"] as? [[String: Any]])
        #expect(anc1.first?["pid"] as? Int == Int(a.pid))
        #expect((anc1.first?["argv"] as? [String])?.last?.contains(tok) == true)
        #expect(anc1.dropFirst().first?["pid"] as? Int == Int(getpid()))
        #expect(newest["id"] as? String != killedId)

        // The text form lists both incarnations.
        let text = try revenant(["who-spawned", String(first), "--db", d.db])
        #expect(text.status == 0)
        #expect(text.out.contains("incarnations"))
        #expect(text.out.contains(killedId))
        d.stop()
    }

    @Test(.kernel) func doubleForkedProcessPointsAtItsRealSpawner() async throws {
        try Kernel.check()
        let d = try DaemonUnderTest(name: "dfork")
        try await d.start()
        let tok = token("dfork")
        // The shell backgrounds a subshell and exits; the subshell later execs the worker.
        let a = spawn(["/bin/sh", "-c", "( sleep 0.4; exec /usr/bin/python3 -c 'import time; time.sleep(20)' \(tok) ) & exit 0"])
        #expect(a.status == 0)
        try await Task.sleep(for: .milliseconds(900))
        let worker = try #require(((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).first { p in
            ((try? String(contentsOfFile: "/proc/\(p)/cmdline", encoding: .utf8)) ?? "").hasPrefix("/usr/bin/python3\u{0}-c\u{0}import time; time.sleep(20)\u{0}\(tok)")
        }, "worker not found")
        defer { kill(worker, SIGKILL) }
        try await d.settle()
        let j = try whoSpawnedJSON(worker, db: d.db)
        let anc = try #require(j["ancestry"] as? [[String: Any]])
        #expect(anc.first?["pid"] as? Int == Int(a.pid), "the fork-time parent is the shell that exited")
        #expect(anc.first?["exited"] as? Bool == true)
        #expect(j["adopted_by"] as? String != nil)
        #expect(j["source"] as? String == "store")
        d.stop()
    }

    @Test(.kernel) func seededProcessIsMarked() async throws {
        try Kernel.check()
        let early = spawn(["/bin/sleep", "30"], wait: false)
        defer { kill(early.pid, SIGKILL); var s: Int32 = 0; waitpid(early.pid, &s, 0) }
        let d = try DaemonUnderTest(name: "seeded")
        try await d.start()
        try await d.settle()
        let j = try whoSpawnedJSON(early.pid, db: d.db)
        #expect(j["seeded"] as? Bool == true)
        let anc = try #require(j["ancestry"] as? [[String: Any]])
        #expect(anc.first?["pid"] as? Int == Int(getpid()))
        #expect(anc.first?["seeded"] as? Bool == true)
        #expect((j["lineage_end"] as? String)?.contains("already running when revenant started") == true)
        let text = try revenant(["who-spawned", String(early.pid), "--db", d.db])
        #expect(text.out.contains("seeded"))
        d.stop()
    }

    @Test(.kernel) func killDashNineLeavesAConsistentStore() async throws {
        try Kernel.check()
        let d = try DaemonUnderTest(name: "crash")
        try await d.start()
        let burst = spawn(["/bin/sh", "-c", "i=0; while [ $i -lt 3000 ]; do /bin/true; i=$((i+1)); done"], wait: false)
        // Past the first flush: the crash must find flushed batches to keep consistent.
        try await Task.sleep(for: .milliseconds(FlushRequest.storeLagMs + 600))
        d.kill9()
        var st: Int32 = 0
        waitpid(burst.pid, &st, 0)
        let store = try Store(path: d.db, readOnly: true)
        #expect(try store.integrityCheck() == ["ok"])
        #expect(try store.processCount() > 100)
        let orphans = try store.orphanedParents()
        #expect(orphans.isEmpty, "processes whose parent is missing: \(orphans.prefix(5))")
        let run = try #require(try store.runs().last)
        #expect(run.stoppedWallNs == nil, "a crash leaves the run open: the gap is visible")
        // A new daemon opens the same store and records a clean run.
        let again = DaemonUnderTestReuse(d)
        try await again.start()
        again.stop()
        let runs = try Store(path: d.db, readOnly: true).runs()
        #expect(runs.count == 2)
        #expect(runs.last?.stopReason == "signal", "second daemon: exit \(again.process.terminationStatus), log: \((try? String(contentsOfFile: d.dir + "/daemon2.log", encoding: .utf8)) ?? "")")
    }

    /// A restart (systemd's Restart=on-failure) on the same boot and store: processes the first
    /// run saw start are found again in /proc by the second, which must keep their one exact row
    /// and fork-time parent — whether they exit under the second run or outlive it.
    @Test(.kernel) func restartOnTheSameStoreKeepsOneRowPerProcess() async throws {
        try Kernel.check()
        let d = try DaemonUnderTest(name: "restart")
        try await d.start()
        let exiting = spawn(["/bin/sleep", "120"], wait: false)
        let staying = spawn(["/bin/sleep", "120"], wait: false)
        let endsWhileDown = spawn(["/bin/sleep", "120"], wait: false)
        defer { kill(staying.pid, SIGKILL); waitpid(staying.pid, nil, 0) }
        try await d.settle()
        d.stop()
        kill(endsWhileDown.pid, SIGKILL)
        waitpid(endsWhileDown.pid, nil, 0)   // no daemon sees this exit
        let again = DaemonUnderTestReuse(d)
        try await again.start()
        let log2 = { (try? String(contentsOfFile: d.dir + "/daemon2.log", encoding: .utf8)) ?? "" }
        kill(exiting.pid, SIGTERM)
        var st: Int32 = 0
        waitpid(exiting.pid, &st, 0)   // its exit reaches the second daemon as an event
        try await d.settle()
        #expect(again.process.isRunning, "the second daemon survives: \(log2())")
        let store = try Store(path: d.db, readOnly: true)
        for (pid, exits) in [(exiting.pid, true), (staying.pid, false)] {
            let rows = try store.incarnations(pid: pid)
            #expect(rows.count == 1, "pid \(pid): \(rows.map(\.record.id))")
            #expect(rows.first?.record.id.precise == true)
            #expect(rows.first?.record.parent?.pid == getpid(), "fork-time parent kept across the restart")
            #expect((rows.first?.exitWallNs != nil) == exits)
        }
        #expect(log2().contains("known_from_earlier_run"))
        // The one that ended while no daemon ran: no exit made up, marked gone by the restart.
        let marks = try DatabaseQueue(path: d.db).read { db in
            try Row.fetchAll(db, sql: "SELECT pid, exit_wall_ns, gone_by_wall_ns FROM process WHERE pid IN (?, ?, ?)",
                             arguments: [exiting.pid, staying.pid, endsWhileDown.pid])
        }
        for row in marks {
            let pid: Int32 = row["pid"]
            let gone = (row["gone_by_wall_ns"] as Int64?) != nil
            #expect(gone == (pid == endsWhileDown.pid), "pid \(pid): \(row)")
            if pid == endsWhileDown.pid { #expect((row["exit_wall_ns"] as Int64?) == nil) }
        }
        #expect(marks.count == 3)
        let gone = try revenant(["who-spawned", String(endsWhileDown.pid), "--db", d.db])
        #expect(gone.out.contains("gone, exit not seen (ended by ") && gone.out.contains("while revenant was not running)"), "\(gone.out)")
        again.stop()
    }

    /// who-spawned on a process younger than the daemon's last flush asks the daemon to drain and
    /// flush now (SIGUSR1) and answers from the store, with the fork-time parent, instead of
    /// waiting out the flush interval or falling back to /proc.
    /// The daemon loads the tracer with lazy forks: a process that only forked is announced by
    /// the kernel just before a descendant's exec names it, and one with no such descendant is
    /// read from the kernel map when who-spawned asks for a flush.
    @Test(.kernel) func processesThatOnlyForkedKeepTheirPlaceInTheLineage() async throws {
        try Kernel.check()
        let d = try DaemonUnderTest(name: "lazy-fork")
        try await d.start()
        let tok = token("lazy")
        let out = d.dir + "/pids"
        // Top forks A and Z and exits; A (never execs) forks B, which execs; Z just sleeps.
        let script = """
            import os, sys, time
            r, w = os.pipe()
            a = os.fork()
            if a == 0:
                b = os.fork()
                if b == 0:
                    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(30)', sys.argv[1]])
                os.write(w, f"{b}\\n".encode()); time.sleep(30); os._exit(0)
            z = os.fork()
            if z == 0:
                time.sleep(30); os._exit(0)
            print(a, os.read(r, 64).decode().strip(), z, flush=True)
            """
        let top = spawn(["/usr/bin/python3", "-c", script, tok], stdout: out)
        #expect(top.status == 0)
        let pids = try String(contentsOfFile: out, encoding: .utf8).split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
        try #require(pids.count == 3, "\(pids)")
        let (a, b, z) = (pids[0], pids[1], pids[2])
        defer { for p in [a, b, z] { kill(p, SIGKILL) } }

        // No flush asked for: the kernel announced A before B's exec.
        try await d.settle()
        let store = try Store(path: d.db, readOnly: true)
        let ra = try #require(try store.incarnations(pid: a).first?.record, "A not stored: \(d.logText)")
        #expect(ra.parent?.pid == top.pid)
        #expect(ra.name == "python3", "A inherits its parent's image: \(ra)")
        let rb = try #require(try store.incarnations(pid: b).first?.record)
        #expect(rb.parent == ra.id)
        #expect(try store.incarnations(pid: z).isEmpty, "Z is not announced until asked for")

        // Z: read from the kernel map on the flush who-spawned asks for, with its fork-time parent.
        let requests = d.logText.components(separatedBy: "flushed on request").count
        let j = try whoSpawnedJSON(z, db: d.db)
        #expect(j["source"] as? String == "store", "\(j)")
        #expect((j["ancestry"] as? [[String: Any]])?.first?["pid"] as? Int == Int(top.pid), "\(j)")
        #expect(d.logText.components(separatedBy: "flushed on request").count == requests + 1, "\(d.logText)")

        // A bare fork still running at a stop is stored then, exactly, for a restart on this boot.
        let out2 = d.dir + "/pid2"
        let top2 = spawn(["/usr/bin/python3", "-c", "import os, time\nc = os.fork()\nif c == 0: time.sleep(30); os._exit(0)\nprint(c, flush=True)"],
                         stdout: out2)
        let y = try #require(Int32(try String(contentsOfFile: out2, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { kill(y, SIGKILL) }
        d.stop()
        let ry = try #require(try store.incarnations(pid: y).first?.record, "Y not stored at the stop")
        #expect(ry.parent?.pid == top2.pid)
        #expect(ry.id.precise)
    }

    /// A bare fork that exits leaving a child behind is that child's parent even when the child
    /// is first seen long after (lazy forks): it is stored as a row, not a leaf, so the
    /// child's chain goes through it.
    @Test(.kernel) func aParentThatExitedBeforeItsChildWasSeenStaysInTheChain() async throws {
        try Kernel.check()
        let d = try DaemonUnderTest(name: "orphaner")
        try await d.start()
        let out = d.dir + "/pids", go = d.dir + "/go"
        // Top forks X; X forks C and exits at once; C waits for `go`, then execs sleep.
        let script = """
            import os, sys, time
            r, w = os.pipe()
            x = os.fork()
            if x == 0:
                c = os.fork()
                if c == 0:
                    while not os.path.exists(sys.argv[1]): time.sleep(0.05)
                    os.execv('/bin/sleep', ['sleep', '30'])
                os.write(w, f"{c}\\n".encode()); os._exit(0)
            os.waitpid(x, 0)
            print(x, os.read(r, 64).decode().strip(), flush=True)
            """
        let top = spawn(["/usr/bin/python3", "-c", script, go], stdout: out)
        #expect(top.status == 0)
        let pids = try String(contentsOfFile: out, encoding: .utf8).split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
        try #require(pids.count == 2, "\(pids)")
        let (x, c) = (pids[0], pids[1])
        defer { kill(c, SIGKILL) }
        try await d.settle()   // X's exit is stored before anything names C
        FileManager.default.createFile(atPath: go, contents: nil)
        for _ in 0..<100 {
            if ((try? String(contentsOfFile: "/proc/\(c)/cmdline", encoding: .utf8)) ?? "").hasPrefix("sleep") { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let j = try whoSpawnedJSON(c, db: d.db)
        let anc = try #require(j["ancestry"] as? [[String: Any]], "\(j)")
        #expect(anc.map { $0["pid"] as? Int }.prefix(2) == [Int(x), Int(top.pid)], "\(j)")
        #expect(j["source"] as? String == "store", "\(j)")
        d.stop()
    }

    @Test(.kernel) func whoSpawnedAsksTheDaemonToFlush() async throws {
        try Kernel.check()
        let d = try DaemonUnderTest(name: "flush-now")
        try await d.start()
        try await d.settle()   // just after a flush: the next one is ~2 s away
        let young = spawn(["/bin/sleep", "60"], wait: false)
        defer { kill(young.pid, SIGKILL); waitpid(young.pid, nil, 0) }
        let j = try whoSpawnedJSON(young.pid, db: d.db)
        #expect(j["source"] as? String == "store", "\(j)")
        #expect((j["ancestry"] as? [[String: Any]])?.first?["pid"] as? Int == Int(getpid()), "\(j)")
        #expect(d.logText.contains("flushed on request (SIGUSR1)"), "\(d.logText)")

        // One that has already ended, before any flush held it: asked for, not "unknown PID".
        try await d.settle()
        let gone = spawn(["/bin/sh", "-c", "exit 3"])
        let requests = d.logText.components(separatedBy: "flushed on request").count
        let g = try whoSpawnedJSON(gone.pid, db: d.db)
        #expect(g["exit_status"] as? String == "exit 3", "\(g)")
        #expect((g["ancestry"] as? [[String: Any]])?.first?["pid"] as? Int == Int(getpid()), "\(g)")
        #expect(d.logText.components(separatedBy: "flushed on request").count == requests + 1, "\(d.logText)")
        d.stop()
    }

    /// A stop that lands while the daemon is still loading (BPF, seeding, the policy) is a clean
    /// stop: exit 0 and a "stopped" line, not a failure on maps closed under the policy loader.
    @Test(.kernel) func signalDuringStartUpStopsCleanly() async throws {
        try Kernel.check()
        for delayMs in [150, 400, 700, 1000] {
            let d = try DaemonUnderTest(name: "early-\(delayMs)")
            let policy = d.dir + "/policy.yaml"
            try "rules:\n  - name: never\n    match: { script: /opt/never/worker.py }\n    action: kill\n"
                .write(toFile: policy, atomically: true, encoding: .utf8)
            FileManager.default.createFile(atPath: d.log, contents: nil)
            d.process.executableURL = URL(fileURLWithPath: revenantBinary)
            d.process.arguments = ["run", "--db", d.db, "--audit-log", d.audit, "--policy", policy]
            d.process.standardError = FileHandle(forWritingAtPath: d.log)
            d.process.standardOutput = FileHandle.nullDevice
            try d.process.run()
            try await Task.sleep(for: .milliseconds(delayMs))
            Glibc.kill(d.process.processIdentifier, SIGINT)
            d.process.waitUntilExit()
            #expect(d.process.terminationStatus == 0, "SIGINT after \(delayMs) ms: \(d.logText)")
            #expect(d.logText.contains("reason=signal") && !d.logText.contains("Bad file descriptor")
                    && !d.logText.contains("policy failed"), "SIGINT after \(delayMs) ms: \(d.logText)")
        }
    }

    @Test(.kernel) func unknownPidAndBadStoreSaySo() async throws {
        try Kernel.check()
        let d = try DaemonUnderTest(name: "unknown")
        try await d.start()
        d.stop()
        // A PID above pid_max is never running and never stored.
        let r = try revenant(["who-spawned", "99999999", "--db", d.db])
        #expect(r.status == 1)
        #expect(r.err.contains("no process with PID 99999999"))
        let bad = d.dir + "/not-a-db"
        FileManager.default.createFile(atPath: bad, contents: Data("garbage".utf8))
        let b = try revenant(["who-spawned", "99999999", "--db", bad])
        #expect(b.status == 2)
        #expect(b.err.contains(bad))
        let missing = try revenant(["who-spawned", "99999999", "--db", d.dir + "/missing.db"])
        #expect(missing.status == 2)
        #expect(missing.err.contains("missing.db"))
        #expect(missing.err.contains("no such file"))
    }
}
