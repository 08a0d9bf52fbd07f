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

/// The real BPF program in the real kernel, driven by real processes.
@Suite(.serialized) struct KernelTraceTests {
    @Test(.kernel) func chainHasForkTimeParents() async throws {
        try Kernel.check()
        let rec = try Recorder()
        let tok = token("chain")
        // A (sh) forks B (sh), which forks C (echo). "; true" stops sh from exec-ing its last command.
        let a = spawn(["/bin/sh", "-c", "/bin/sh -c '/bin/echo \(tok) >/dev/null; true'; true"])
        #expect(a.status == 0)
        let ok = await rec.wait { _ in rec.execs(containing: tok).contains { $0.comm == "echo" } }
        await rec.stop()
        try #require(ok, "no exec event for the leaf")
        let c = try #require(rec.execs(containing: tok).first { $0.comm == "echo" })
        let cFork = try #require(rec.forks(of: c.process))
        let b = try #require(rec.execs(containing: tok).first { $0.process == cFork.parent && $0.comm == "sh" })
        let bFork = try #require(rec.forks(of: b.process))
        #expect(bFork.parent.pid == a.pid)
        let aFork = try #require(rec.forks(of: bFork.parent))
        #expect(aFork.parent.pid == getpid())
        // The exec record carries the fork-time parent from the kernel map, too.
        #expect(c.parent == b.process)
        #expect(c.filename == "/bin/echo")
        #expect(c.argv == ["/bin/echo", tok])
        #expect(c.exeInode != 0)
        var cwd = [CChar](repeating: 0, count: 4096)
        #expect(c.cwd == String(cString: getcwd(&cwd, cwd.count)))
        #expect(rec.exit(of: c.process)?.status == .exited(0))
        let table = rec.table()
        #expect(table.ancestry(of: c.process).prefix(2).map(\.id) == [b.process, bFork.parent])
        #expect(rec.malformedRecords.isEmpty)
    }

    /// Two live processes whose tgids share a kernel slot: the later fork moves the earlier
    /// one to the overflow map, and its exec and exit records still carry its fork-time parent,
    /// as its child's records carry it.
    @Test(.kernel) func aProcessMovedOutOfItsSlotKeepsItsParent() async throws {
        try Kernel.check()
        let slots = Int32(Tracer.processSlots)
        let pidMaxPath = "/proc/sys/kernel/pid_max", lastPidPath = "/proc/sys/kernel/ns_last_pid"
        let pidMax = try String(contentsOfFile: pidMaxPath, encoding: .utf8)
        // Sharing a slot needs pids beyond it; the default 32,768 on small machines stays below.
        if Int32(pidMax.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 <= 2 * slots {
            try "4194304".write(toFile: pidMaxPath, atomically: false, encoding: .utf8)
        }
        defer { try? pidMax.write(toFile: pidMaxPath, atomically: false, encoding: .utf8) }
        let fifo = uniqueTempPath("slot")
        try #require(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        let rec = try Recorder()
        let tok = token("slot")
        let a = spawn(["/bin/sh", "-c", "read x < \(fifo); /bin/echo \(tok)-c; exec /bin/echo \(tok)-a"], wait: false)
        // Another fork on the machine may take the pid first: try again.
        var b: pid_t = 0
        for _ in 0..<50 where b != a.pid + slots {
            try "\(a.pid + slots - 1)".write(toFile: lastPidPath, atomically: false, encoding: .utf8)
            b = spawn(["/bin/true"]).pid
        }
        let collided = b == a.pid + slots
        let fd = open(fifo, O_WRONLY)
        if fd >= 0 { _ = write(fd, "x\n", 2); close(fd) }
        var status: Int32 = 0
        while waitpid(a.pid, &status, 0) < 0 && errno == EINTR {}
        // The script's own argv holds both tokens: the echo execs are the ones after the move.
        func echo(_ suffix: String) -> ExecEvent? { rec.execs(containing: tok + suffix).first { $0.comm == "echo" } }
        let ok = await rec.wait { _ in echo("-a").map { rec.exit(of: $0.process) != nil } ?? false }
        await rec.stop()
        try #require(collided, "pid \(a.pid + slots) went to another process 50 times")
        try #require(ok, "no exec and exit of the process moved out of its slot")
        let aExec = try #require(echo("-a"))
        #expect(aExec.process.pid == a.pid)
        #expect(aExec.parent?.pid == getpid())
        #expect(rec.exit(of: aExec.process)?.parent?.pid == getpid())
        let c = try #require(echo("-c"))
        #expect(c.parent == aExec.process)
    }

    /// The cwd walk: inside a mount (plain loads), across a mount point into the filesystem
    /// above (probe reads), at a mount's own root, and deeper than RV_CWD_DEPTH (marked cut).
    /// In a chroot, the path the process sees: the one its absolute argv paths resolve against.
    @Test(.kernel) func cwdAcrossMountsAndTooDeep() async throws {
        try Kernel.check()
        let base = uniqueTempPath("cwd")
        let deep = base + "/d/" + (1...20).map(String.init).joined(separator: "/")
        try FileManager.default.createDirectory(atPath: base + "/m", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        try #require(try sh(["/bin/mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", base + "/m"]).status == 0)
        defer { _ = try? sh(["/bin/umount", "-l", base + "/m"]) }
        try FileManager.default.createDirectory(atPath: base + "/m/x/y", withIntermediateDirectories: true)
        // A chroot: /usr bound in (a mount below the root), a directory of the jail's own.
        let jail = base + "/j"
        try FileManager.default.createDirectory(atPath: jail + "/usr", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: jail + "/data/x", withIntermediateDirectories: true)
        for l in ["bin", "lib", "lib64"] { try FileManager.default.createSymbolicLink(atPath: jail + "/" + l, withDestinationPath: "usr/" + l) }
        try #require(try sh(["/bin/mount", "--bind", "/usr", jail + "/usr"]).status == 0)
        defer { _ = try? sh(["/bin/umount", "-l", jail + "/usr"]) }
        let rec = try Recorder()
        let tok = token("cwd")
        let a = spawn(["/bin/sh", "-c", "cd \(base)/m/x/y && /bin/echo \(tok)-in; cd \(base)/m && /bin/echo \(tok)-root; cd \(deep) && /bin/echo \(tok)-deep; true"])
        #expect(a.status == 0)
        let j = spawn(["/usr/sbin/chroot", jail, "/bin/sh", "-c", "cd /data/x && /bin/echo \(tok)-jail; cd /usr/share && /bin/echo \(tok)-jailusr; cd / && /bin/echo \(tok)-jailroot"])
        #expect(j.status == 0)
        let ok = await rec.wait { _ in rec.execs(containing: tok).filter { $0.comm == "echo" }.count == 6 }
        await rec.stop()
        try #require(ok, "the six execs never arrived")
        func cwd(_ suffix: String) -> ExecEvent? { rec.execs(containing: tok + suffix).first { $0.comm == "echo" && $0.argv.last == tok + suffix } }
        #expect(cwd("-in")?.cwd == base + "/m/x/y")
        #expect(cwd("-root")?.cwd == base + "/m")
        #expect(cwd("-jail")?.cwd == "/data/x")
        #expect(cwd("-jailusr")?.cwd == "/usr/share")
        #expect(cwd("-jailroot")?.cwd == "/")
        let d = try #require(cwd("-deep"))
        #expect(d.cwdTruncated)
        #expect(d.cwd?.hasPrefix("…/") == true)
        #expect(d.cwd?.hasSuffix("/18/19/20") == true)
        #expect(d.cwd.map { deep.hasSuffix(String($0.dropFirst())) } == true)
    }

    @Test(.kernel) func doubleForkKeepsTheRealSpawner() async throws {
        try Kernel.check()
        let rec = try Recorder()
        let tok = token("dfork")
        // The outer shell starts a background subshell and exits at once; the subshell
        // execs only after its parent is gone, so the kernel has reparented it.
        let a = spawn(["/bin/sh", "-c", "( sleep 0.6; exec /bin/echo \(tok) >/dev/null ) & exit 0"])
        #expect(a.status == 0)
        // Read who the kernel reparented the orphan to, while it sleeps.
        var reaper: Int32?
        var grandPid: Int32?
        let sawExit = await rec.wait(seconds: 5) { evs in
            evs.contains { if case .exit(let x) = $0, x.process.pid == a.pid { return true }; return false }
        }
        #expect(sawExit)
        if let f = rec.events.lazy.compactMap({ e -> ForkEvent? in
            if case .fork(let f) = e, f.parent.pid == a.pid { return f }; return nil }).first {
            grandPid = f.process.pid
            reaper = ProcReader().stat(f.process.pid)?.ppid
        }
        let ok = await rec.wait { _ in rec.execs(containing: tok).contains { $0.comm == "echo" } }
        await rec.stop()
        try #require(ok, "the grandchild's exec never arrived")
        let g = try #require(rec.execs(containing: tok).first { $0.comm == "echo" })
        #expect(g.process.pid == grandPid)
        #expect(g.parent?.pid == a.pid, "fork-time parent must stay the shell that forked it")
        #expect(g.realParent.pid != a.pid)
        let table = rec.table()
        let r = try #require(table[g.process])
        #expect(r.parent?.pid == a.pid)
        #expect(r.adoptedBy?.pid == reaper)
        #expect(r.adoptedBy != nil)
        #expect(table.ancestry(of: g.process).first?.id.pid == a.pid)
    }

    @Test(.kernel) func execChainIsOneProcessWithSeveralImages() async throws {
        try Kernel.check()
        let rec = try Recorder()
        let tok = token("images")
        let a = spawn(["/bin/sh", "-c", "exec python3 -c 'import sys' \(tok)"])
        #expect(a.status == 0)
        let ok = await rec.wait { evs in
            evs.contains { if case .exit(let x) = $0, x.process.pid == a.pid { return true }; return false }
        }
        await rec.stop()
        try #require(ok)
        let table = rec.table()
        let p = try #require(table.latest(pid: a.pid))
        #expect(p.images.count >= 2, "sh then python3 (a pyenv shim adds a bash image between)")
        #expect(p.images.first?.comm == "sh")
        #expect(p.images.last?.comm.hasPrefix("python") == true)
        #expect(p.images.last?.argv.last == tok)
        #expect(p.exitStatus == .exited(0))
        // Every image belongs to the same identity: no new process per exec.
        let ids = Set(rec.events.compactMap { if case .exec(let e) = $0, e.process.pid == a.pid { return e.process }; return nil })
        #expect(ids.count == 1)
    }

    @Test(.kernel) func pidReuseGivesDistinctIdentities() async throws {
        try Kernel.check()
        let rec = try Recorder()
        let first = token("reuse1"), second = token("reuse2")
        let old = spawn(["/bin/echo", first])
        var reused = false
        for _ in 0..<50 where !reused {
            // The next PID handed out is ns_last_pid + 1; other processes may race us, so retry.
            let fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY)
            try #require(fd >= 0, "cannot open ns_last_pid: errno \(errno)")
            let text = "\(old.pid - 1)"
            _ = text.withCString { write(fd, $0, strlen($0)) }
            close(fd)
            let again = spawn(["/bin/echo", second])
            reused = again.pid == old.pid
        }
        try #require(reused, "could not get PID \(old.pid) again in 50 tries")
        let ok = await rec.wait { _ in rec.execs(containing: second).contains { $0.process.pid == old.pid } }
        await rec.stop()
        try #require(ok)
        let a = try #require(rec.execs(containing: first).first)
        let b = try #require(rec.execs(containing: second).first { $0.process.pid == old.pid })
        #expect(a.process.pid == b.process.pid)
        #expect(a.process != b.process)
        #expect(a.process.description != b.process.description)
        let table = rec.table()
        #expect(table[a.process]?.exited == true)
        #expect(table.latest(pid: old.pid)?.id == b.process)
    }

    @Test(.kernel) func fullRingBufferIsCounted() async throws {
        try Kernel.check()
        var options = Tracer.Options()
        options.ringbufBytes = 16 << 10   // holds about a dozen exec records
        options.pollMs = 2000               // and is drained rarely
        options.wakeupBytes = 1 << 30
        let rec = try Recorder(options: options)
        spawn(["/bin/sh", "-c", "i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done"])
        let counters = try rec.tracer.counters()
        await rec.stop()
        #expect(counters.ringbufFull > 0, "a storm into a 16 KiB ring must lose events, and say so")
        #expect(counters.events > 0)
    }

    /// The kernel wakes a waiting reader once the ring holds wakeup_bytes (read every
    /// query_every_bytes a CPU writes, not at every record): without that wake-up each drain
    /// here would wait out its 120 s.
    @Test(.kernel) func aFillingRingWakesItsWaitingReader() throws {
        try Kernel.check()
        var options = Tracer.Options()
        options.manual = true
        options.wakeupBytes = 64 << 10
        let tracer = try Tracer(options: options)
        defer { tracer.close() }
        let storm = spawn(["/bin/sh", "-c", "sleep 0.3; i=0; while [ $i -lt 3000 ]; do /bin/true; i=$((i+1)); done"], wait: false)
        _ = try tracer.drain(timeoutMs: 0) { _ in }
        let start = ContinuousClock.now
        var trues = 0
        while trues < 1000, ContinuousClock.now - start < .seconds(100) {
            _ = try tracer.drain(timeoutMs: 120_000) { item in
                if case .event(.exec(let e)) = item, e.filename == "/bin/true" { trues += 1 }
            }
        }
        var status: Int32 = 0
        waitpid(storm.pid, &status, 0)
        #expect(trues >= 1000, "the reader was not woken while the ring filled")
        #expect(ContinuousClock.now - start < .seconds(100))
    }

    @Test(.kernel) func countersAreZeroUnderNormalLoad() async throws {
        try Kernel.check()
        let rec = try Recorder()
        spawn(["/bin/sh", "-c", "i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done"])
        let counters = try rec.tracer.counters()
        #expect(await rec.wait { evs in evs.count >= 900 })
        await rec.stop()
        #expect(counters.ringbufFull == 0)
        #expect(counters.procMapFull == 0)
        #expect(counters.events >= 900)
    }

    @Test(.kernel) func execFromANonLeaderThreadKeepsTheProcess() async throws {
        try Kernel.check()
        let rec = try Recorder()
        let tok = token("thread")
        // A second thread calls exec: the kernel makes it the leader; the process stays one.
        let script = "import os, threading\nt = threading.Thread(target=lambda: os.execv('/bin/echo', ['echo', '\(tok)']))\nt.start(); t.join()"
        let a = spawn(["/usr/bin/python3", "-c", script])
        #expect(a.status == 0)
        let ok = await rec.wait { _ in rec.execs(containing: tok).contains { $0.comm == "echo" } }
        await rec.stop()
        try #require(ok)
        let e = try #require(rec.execs(containing: tok).first { $0.comm == "echo" })
        #expect(e.process.pid == a.pid)
        #expect(e.oldPid != a.pid, "the exec came from another thread")
        #expect(e.flags & 0x20 != 0, "RV_F_NONLEADER_EXEC")
        let py = try #require(rec.events.compactMap { ev -> ExecEvent? in
            if case .exec(let x) = ev, x.process.pid == a.pid, x.comm.hasPrefix("python") { return x }; return nil }.first)
        #expect(py.process == e.process, "same identity before and after the exec")
        #expect(rec.exit(of: e.process)?.status == .exited(0))
        // Threads are not processes: no fork event for the thread.
        #expect(!rec.events.contains { if case .fork(let f) = $0 { return f.process.pid == e.oldPid }; return false })
    }

    @Test(.kernel) func execRecordsTheLeafCgroup() async throws {
        try Kernel.check()
        // The cgroup-v2 hierarchy: /sys/fs/cgroup (pure v2) or /sys/fs/cgroup/unified (hybrid).
        let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"].first { access($0 + "/cgroup.procs", W_OK) == 0 && access($0 + "/cgroup.controllers", F_OK) == 0 }
        let base = try #require(root, "no writable cgroup-v2 hierarchy")
        let name = "rvtest-\(getpid()).service"
        let dir = base + "/" + name
        try #require(mkdir(dir, 0o755) == 0 || errno == EEXIST, "mkdir \(dir): errno \(errno)")
        defer { rmdir(dir) }
        let rec = try Recorder()
        let tok = token("cgroup")
        let a = spawn(["/bin/sh", "-c", "echo $$ > \(dir)/cgroup.procs && exec /bin/echo \(tok)"])
        #expect(a.status == 0)
        let ok = await rec.wait { _ in rec.execs(containing: tok).contains { $0.comm == "echo" } }
        await rec.stop()
        try #require(ok)
        let e = try #require(rec.execs(containing: tok).first { $0.comm == "echo" })
        #expect(e.cgroup == name)
        #expect(e.cgroupId != 1)
    }
}
