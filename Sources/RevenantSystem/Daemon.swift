import Foundation
import Logging
import RevenantCore
import Synchronization

/// `revenant run`: traces, keeps the ProcessTable, and writes the history store in batches.
public final class Daemon: Sendable {
    public struct Config: Sendable {
        public var dbPath = Store.defaultPath
        /// Exited processes older than this are deleted from the store.
        public var retentionSeconds: Int64 = 7 * 24 * 3600
        /// Store row bound; beyond it the oldest exited processes go first.
        public var maxProcesses = 2_000_000
        /// A batch is written when this many changes are pending or `flushMs` has passed: each
        /// flush has a fixed cost (a transaction, a WAL append), and larger batches did not help
        /// at high rates (docs/benchmarks.md).
        public var flushChanges = 2048
        public var flushMs = FlushRequest.intervalMs
        public var retentionEverySeconds = 60
        public var tracer: Tracer.Options = {
            var o = Tracer.Options()
            o.tryLSM = true   // the deny tier, where BPF LSM is active
            o.manual = true   // drained on the daemon's own thread, one wake-up per drain
            // Wake-ups cost more than the work at low rates (futex + IPI on a VM): the reader
            // drains once a flush. Matched execs still wake it at once, 1 MiB pending always
            // does, and a stop or reload wakes it through an eventfd.
            o.pollMs = Int32(FlushRequest.intervalMs)
            // A process that execs is first seen at its exec (a third fewer records).
            o.lazyForks = true
            return o
        }()
        public var version = "0.1.0"
        /// Policy file; nil runs without enforcement.
        public var policyPath: String?
        /// Benchmark only: leave kill rules to userspace (pidfd after the ring-buffer event).
        public var userspaceKill = false
        /// Audit log (JSON lines, OCSF, hash-chained); nil writes none.
        public var auditPath: String?
        /// Audit every exec and exit, not only those a rule matched.
        public var auditAll = false
        /// Applied to every command line before it is stored, logged or audited.
        public var redactor = Redactor()
        public init() {}
    }

    private let config: Config
    private let log: Logger
    private struct Control {
        var tracer: Tracer?
        var stopReason: String?
    }
    private let control = Mutex(Control())
    /// SIGHUP: set, then the serving loop is woken (eventfd) and re-reads the policy.
    private let reloadRequested = Atomic<Bool>(false)
    /// SIGUSR1 (`who-spawned` on a process younger than the last flush): drain and flush now.
    private let flushRequested = Atomic<Bool>(false)
    private struct AuditState {
        var log: AuditLog?
        var failures = 0
    }
    private let audit = Mutex(AuditState())

    /// A write failure never stops enforcement: it is logged loudly (the first, then every
    /// 1,000th), and the log records the gap once it is writable again.
    private func record(_ e: AuditEvent, sync: Bool = false) {
        audit.withLock { st in
            guard let a = st.log else { return }
            do {
                try a.append(e, sync: sync)
                if st.failures > 0 {
                    self.log.notice("audit log writable again", metadata: ["lost_records": "\(st.failures)", "file": "\(a.path)"])
                    st.failures = 0
                }
            } catch {
                st.failures += 1
                if st.failures == 1 || st.failures % 1000 == 0 {
                    self.log.critical("AUDIT LOG WRITE FAILED: records are being lost; enforcement continues",
                                      metadata: ["error": "\(error)", "lost_records": "\(st.failures)"])
                }
            }
        }
    }

    public init(config: Config, logger: Logger) {
        self.config = config
        self.log = logger
    }

    /// Stops ingest; `run()` then flushes, records the stop and returns. Safe from any thread.
    public func stop(reason: String) {
        let t = control.withLock { c in
            if c.stopReason == nil { c.stopReason = reason }
            return c.tracer
        }
        t?.stop()
    }

    /// Reads a value through an in-place access: with `dict[key, default: v]` it lists the key
    /// if absent and returns what is listed, in one lookup.
    @inline(__always) static func touch(_ b: inout Bool) -> Bool { b }

    /// Drains the ring and writes the store now, instead of at the next interval. Safe from any thread.
    public func flushSoon() {
        flushRequested.store(true, ordering: .releasing)
        control.withLock { $0.tracer }?.wake()
    }

    /// Re-reads the policy (SIGHUP). An invalid file is logged; the running policy stays.
    /// Asked for during start-up, it happens once the first policy is in force.
    public func reload() {
        reloadRequested.store(true, ordering: .releasing)
        control.withLock { $0.tracer }?.wake()
    }

    /// Runs until `stop(reason:)`, on a thread of its own: reading the ring, applying records and
    /// writing the store all happen there, with no hop between threads per drain.
    public func run() async throws {
        try await withCheckedThrowingContinuation { (k: CheckedContinuation<Void, any Error>) in
            let t = Thread {
                do { try self.serve(); k.resume() } catch { k.resume(throwing: error) }
            }
            t.name = "revenant-daemon"
            t.stackSize = 8 << 20
            t.start()
        }
    }

    private func serve() throws {
        let store = try Store(path: config.dbPath)
        if let path = config.auditPath {
            let a = try AuditLog(path: path)
            audit.withLock { $0.log = a }
        }
        record(.daemon("start", timeMs: WallClock.nowMs(), detail: "store \(config.dbPath)"), sync: true)
        let clock = BootClock()
        let boot = BootClock.bootID()
        let run = try store.beginRun(boot: boot, bootEpochNs: clock.bootEpochNs, version: config.version,
                                     nowWallNs: WallClock.nowNs())
        log.info("store opened", metadata: ["db": "\(config.dbPath)", "run": "\(run)", "boot": "\(boot)"])

        let tracer: Tracer
        do {
            tracer = try Tracer(options: config.tracer)
        } catch {
            try? store.endRun(run, nowWallNs: WallClock.nowNs(), reason: "BPF load failed", lostEvents: 0)
            throw error
        }
        let early = control.withLock { c in
            c.tracer = tracer
            return c.stopReason != nil
        }
        if early { tracer.stop() }
        // Whatever happens below, the programs are detached when serving ends.
        defer { tracer.close() }
        log.info("tracing attached", metadata: ["programs": "tp_btf/sched_process_{fork,exec,exit}",
                                                "ringbuf_mib": "\(config.tracer.ringbufBytes >> 20)",
                                                "deny_program": "\(tracer.lsmActive ? "attached" : tracer.lsmStatus.split(separator: "\n").first.map(String.init) ?? "")"])

        // Seed after attaching, so nothing starts in a gap between the two.
        // In a class: nested functions reading a captured struct variable copied it whole, every
        // field retained and released, on each call.
        let held = Held(ProcessTable())
        var batch = StoreBatch(boot: boot, bootEpochNs: clock.bootEpochNs)
        let found = ProcReader().all()
        // After a restart on the same boot, what the earlier run saw start keeps its exact key
        // and fork-time lineage instead of a second, tick-precision row built from /proc.
        let earlier = try store.exactRecords(boot: boot, seeing: found.map(\.id))
        for r in found { if let k = earlier[r.id] { held.value.restore(k, seenAs: r.id) } }
        for r in found where earlier[r.id] == nil {
            held.value.seed(r)
            guard var s = held.value[r.id] else { continue }
            s.parent = s.parent.map { held.value.canonical($0) }
            batch.processes.append(s)
            if let img = r.images.first { batch.images.append((r.id, 0, img)) }
        }
        try store.write(batch, run: run, nowWallNs: WallClock.nowNs())
        // What an earlier run on this boot left running and /proc no longer shows ended unseen.
        let gone = try store.markGone(boot: boot, running: found.map(\.id), goneByWallNs: WallClock.nowNs())
        log.info("seeded from /proc", metadata: ["processes": "\(batch.processes.count)", "known_from_earlier_run": "\(earlier.count)",
                                                 "ended_while_not_traced": "\(gone)"])

        let enforcer = Enforcer(tracer: tracer, lsmActive: tracer.lsmActive)
        var policy: CompiledPolicy?
        if let path = config.policyPath {
            do {
                policy = try installPolicy(path, enforcer: enforcer, tracer: tracer, table: held.value)
            } catch {
                tracer.stop()
                try? store.endRun(run, nowWallNs: WallClock.nowNs(), reason: "invalid policy", lostEvents: 0)
                throw error
            }
        } else {
            log.notice("no policy: tracing only")
        }

        // Changed since the last flush; true for a process forked since (no row holds it yet).
        var dirty: [Identity: Bool] = [:]
        // Processes whose exit is audited: a rule matched them (or every one, with --audit all).
        var audited: [Identity: [String]] = [:]
        batch = StoreBatch(boot: boot, bootEpochNs: clock.bootEpochNs)
        var lastFlush = ContinuousClock.now
        let flushEvery = Duration.milliseconds(config.flushMs)
        var nextFlush = ContinuousClock.now + flushEvery
        var lastRetention = ContinuousClock.now
        var lost = TraceCounters.zero
        var ingested = 0
        var malformed = 0
        // The last exec texts box the redactor found nothing to hide in.
        var cleanTexts: ExecTexts?

        func flush(force: Bool = false) throws {
            let counters = (try? tracer.counters()) ?? lost
            if counters.ringbufFull != lost.ringbufFull || counters.procMapFull != lost.procMapFull {
                log.warning("events lost in the kernel", metadata: [
                    "ringbuf_full": "\(counters.ringbufFull)", "procmap_full": "\(counters.procMapFull)",
                    "new": "\(counters.ringbufFull - lost.ringbufFull)"])
                lost = counters
            }
            batch.rekeys = held.value.drainRekeys()
            let rows = held.value.changes(dirty, leavesInto: &batch.leaves)
            for (r, born) in rows {
                // Born since the last flush: no image of it is stored yet, and its execs were
                // not batched one by one. More than the table keeps (`maxImages`) in one
                // interval are counted in images_dropped, not stored.
                if born, !r.imageInherited {
                    for (k, img) in r.images.enumerated() { batch.images.append((r.id, k == 0 ? 0 : k + r.imagesDropped, img)) }
                }
                batch.processes.append(r)
            }
            dirty.removeAll(keepingCapacity: true)
            if force || !batch.isEmpty || ContinuousClock.now - lastFlush > .seconds(5) {
                try store.write(batch, run: run, nowWallNs: WallClock.nowNs(),
                                lostEvents: Int64(lost.ringbufFull))
                lastFlush = ContinuousClock.now
            }
            batch = StoreBatch(boot: boot, bootEpochNs: clock.bootEpochNs)
            audit.withLock { $0.log?.syncIfDirty() }
            if ContinuousClock.now - lastRetention > .seconds(config.retentionEverySeconds) {
                lastRetention = ContinuousClock.now
                let cutoff = WallClock.nowNs() - config.retentionSeconds * 1_000_000_000
                let n = try store.enforceRetention(exitedBeforeWallNs: cutoff, maxProcesses: config.maxProcesses, currentBoot: boot)
                if n > 0 { log.info("retention", metadata: ["deleted": "\(n)"]) }
            }
        }

        /// One record from the kernel: redact, enforce, audit, apply to the table, batch for the store.
        /// Execs and exits are decoded straight into their handlers: moved through `Event` and
        /// `TraceItem`, opened by accessors and patterns, each was copied whole many times.
        @inline(__always) func handle(_ raw: UnsafeRawBufferPointer, _ memo: inout EventDecoder.Memo) throws {
            switch EventDecoder.kind(raw) {
            case .exec:
                let x: ExecEvent
                do throws(DecodeError) { x = try EventDecoder.exec(raw, memo: &memo) } catch { return skip(error) }
                try takeExec(x)
            case .exit:
                let x: ExitEvent
                do throws(DecodeError) { x = try EventDecoder.exit(raw) } catch { return skip(error) }
                try takeExit(x)
            case .other:
                let e: Event
                do throws(DecodeError) { e = try EventDecoder.decode(raw, memo: &memo) } catch { return skip(error) }
                try takeOther(e)
            }
        }
        /// A record that could not be decoded: counted and logged, never fatal.
        func skip(_ error: DecodeError) {
            malformed += 1
            log.warning("malformed record skipped", metadata: ["error": "\(error)"])
        }
        /// An exec, moved in.
        @inline(__always) func takeExec(_ x: consuming ExecEvent) throws {
            // A policy match is judged on the real command line: kept aside only for a match.
            let matched = x.matched
            let real: ExecEvent? = matched != 0 ? x : nil
            // Secrets leave the command line here, before the table, the store and the logs see it.
            // A respawn loop's execs share one texts box: found clean once, it is not scanned again.
            if !config.redactor.patterns.isEmpty, x.texts !== cleanTexts {
                if let hidden = config.redactor.redacted(x.argv) { x.argv = hidden } else { cleanTexts = x.texts }
            }
            ingested += 1
            // Short-lived processes skip the table: held back at their exec, handed to the
            // store's leaves at their exit (most end within a batch, forking nothing).
            if !config.auditAll, matched == 0, held.value.parkable(x) {
                held.value.hold(consume x)
                noteUnparked()
                if pending >= config.flushChanges { try flush() }
                return
            }
            try file(.exec(consume x), matched: matched, real: real)
        }
        /// An exit.
        @inline(__always) func takeExit(_ x: ExitEvent) throws {
            ingested += 1
            if !config.auditAll, held.value.leaf(exiting: x, into: &batch.leaves) {
                noteUnparked()
                if pending >= config.flushChanges { try flush() }
                return
            }
            try file(.exit(x), matched: nil, real: nil)
        }
        /// A fork or a deny record.
        func takeOther(_ e: Event) throws {
            if case .deny(let d) = e, let policy {
                held.value.unpark(namedBy: e)
                let names = policy.rules(in: d.matched).map { "\"\($0.name)\"" }.joined(separator: ", ")
                if let r = held.value[held.value.canonical(d.process)] {
                    record(.launch(r, ancestry: held.value.ancestry(of: r.id), bootEpochNs: clock.bootEpochNs, timeMs: WallClock.nowMs(),
                                   rules: policy.rules(in: d.matched).map(\.name), tier: EnforcementTier.deny.rawValue,
                                   blocked: true, message: "denied exec of \(d.filename) (rule \(names))"), sync: true)
                }
                log.warning("denied exec (rule \(names))", metadata: [
                    "pid": "\(d.process.pid)", "id": "\(d.process)", "exe": "\(d.filename)",
                    "tier": "\(EnforcementTier.deny.rawValue)",
                    "ancestry": "\(Lineage.chain(held.value, of: held.value.canonical(d.process)))"])
            }
            ingested += 1
            try file(e, matched: nil, real: nil)
        }
        /// A record the fast ways above did not take, into the table. `matched`: an exec's rule
        /// bits (nil for any other record); `real`: a matching exec before redaction.
        func file(_ e: consuming Event, matched: UInt64?, real: ExecEvent?) throws {
            let added = held.value.apply(e)
            noteUnparked()
            let id = held.read { $0.canonical(e.process) }
            let born: Bool
            // Added to the table: no row holds it yet (with lazy forks, an exec or exit can add one).
            if added { dirty[id] = true; born = true } else { born = Daemon.touch(&dirty[id, default: false]) }
            if let matched, !born || matched != 0 || config.auditAll,
               case (let seq, var img)? = held.value.latestImage(of: id) {
                if let x = real, let policy, let done = enforce(x, policy: policy, table: held.value, bootEpochNs: clock.bootEpochNs) {
                    img.enforcement = done
                    held.value.replaceLatestImage(of: id, with: img)
                    audited[id] = done.rules
                } else if config.auditAll, let r = held.value[id] {
                    record(.launch(r, ancestry: held.value.ancestry(of: id), bootEpochNs: clock.bootEpochNs, timeMs: WallClock.nowMs(),
                                   rules: [], tier: nil, blocked: false, message: "exec \(img.argv.joined(separator: " "))"))
                    audited[id] = []
                }
                // A process born since the last flush has no row yet: the flush takes its images.
                if !born { batch.images.append((id, seq, img)) }
            }
            // Only exits that are audited cost a table lookup.
            if e.isExit, let rules = audited.removeValue(forKey: id) ?? (config.auditAll ? [] : nil), let r = held.value[id] {
                record(.terminate(r, ancestry: held.value.ancestry(of: id), bootEpochNs: clock.bootEpochNs,
                                  timeMs: WallClock.nowMs(), rules: rules))
            }
            if pending >= config.flushChanges { try flush() }
        }
        /// Filed from the parked ones by a record naming them: no row holds them yet.
        func noteUnparked() {
            if held.read({ $0.hasUnparked }) { for u in held.value.drainUnparked() { dirty[u] = true } }
        }
        /// Changes waiting for the next store batch.
        var pending: Int { dirty.count + batch.images.count + batch.leaves.count + held.read { $0.parkedCount } }

        /// What the kernel map holds that no record named yet: live processes that forked and
        /// have neither exec'd nor exited (lazy forks). For a who-spawned asking, and at a stop,
        /// so a restart on this boot finds their exact identity and fork-time parent.
        func announceLive() throws {
            guard config.tracer.lazyForks else { return }
            for f in tracer.unannounced() { try takeOther(.fork(f)) }
        }

        do {
            while true {
                if reloadRequested.exchange(false, ordering: .acquiringAndReleasing) {
                    // kill_existing logs each victim's ancestry from the table: every process in it.
                    held.value.unparkAll()
                    noteUnparked()
                    if let path = config.policyPath {
                        do {
                            policy = try installPolicy(path, enforcer: enforcer, tracer: tracer, table: held.value)
                        } catch {
                            log.error("policy reload rejected, previous policy stays in force", metadata: ["error": "\(error)"])
                            record(.daemon("policy rejected", timeMs: WallClock.nowMs(), detail: "\(error)", severity: 3), sync: true)
                        }
                    } else {
                        log.warning("SIGHUP: no policy file to reload (start with --policy)")
                    }
                }
                let untilFlush = max(0, Int32((nextFlush - ContinuousClock.now) / .milliseconds(1)))
                // false: stop was asked for and the ring is drained.
                guard try tracer.drainRecords(timeoutMs: min(config.tracer.pollMs, untilFlush), { raw, memo in try handle(raw, &memo) }) else { break }
                if flushRequested.exchange(false, ordering: .acquiringAndReleasing) {
                    // Everything the ring holds now goes in: the asker's process started before it asked.
                    _ = try tracer.drainRecords(timeoutMs: 0) { raw, memo in try handle(raw, &memo) }
                    try announceLive()
                    try flush(force: true)
                    nextFlush = ContinuousClock.now + flushEvery
                    log.info("flushed on request (SIGUSR1)")
                } else if ContinuousClock.now >= nextFlush {
                    try flush()
                    nextFlush = ContinuousClock.now + flushEvery
                }
            }
        } catch {
            try? store.endRun(run, nowWallNs: WallClock.nowNs(), reason: "store write failed: \(error)", lostEvents: Int64(lost.ringbufFull))
            throw error
        }
        try announceLive()
        try flush()
        let reason = control.withLock { $0.stopReason } ?? "event stream ended"
        try store.endRun(run, nowWallNs: WallClock.nowNs(), reason: reason, lostEvents: Int64(lost.ringbufFull))
        record(.daemon("stop", timeMs: WallClock.nowMs(), detail: "\(reason); \(ingested) events, \(lost.ringbufFull) lost"), sync: true)
        audit.withLock { $0.log?.close() }
        log.info("stopped", metadata: ["reason": "\(reason)", "events": "\(ingested)", "malformed": "\(malformed)",
                                       "lost": "\(lost.ringbufFull)"])
    }

    /// Loads, checks and installs a policy; kills matching running processes where asked.
    private func installPolicy(_ path: String, enforcer: Enforcer, tracer: Tracer, table: ProcessTable) throws -> CompiledPolicy {
        var compiled = try PolicyLoader.load(path, bitBase: enforcer.nextBitBase)
        if config.userspaceKill {
            compiled.audit |= compiled.kill | compiled.deny
            compiled.kill = 0
            compiled.deny = 0
        }
        let missing = try enforcer.install(compiled)
        for m in missing {
            log.warning("policy exe does not exist here: its rules match only by script or comm", metadata: ["exe": "\(m)"])
        }
        let tiers = Set(compiled.rules.compactMap { enforcer.tier(for: $0.action)?.rawValue }).sorted()
        log.notice("policy loaded", metadata: [
            "file": "\(path)", "rules": "\(compiled.rules.count)",
            "tier": "\(tiers.isEmpty ? "audit only" : tiers.joined(separator: ", "))",
            "lsm": "\(enforcer.lsmActive ? (tracer.lsmSeesArgv ? "active" : "active (exe and exec path only: tracefs not mounted, argv scripts are killed at exec)") : "not active: deny rules are killed at exec")"])
        record(.daemon("policy loaded", timeMs: WallClock.nowMs(),
                       detail: "\(path): \(compiled.rules.count) rules; \(tiers.isEmpty ? "audit only" : tiers.joined(separator: ", "))"),
               sync: true)
        killExisting(compiled, table: table)
        return compiled
    }

    private func killExisting(_ policy: CompiledPolicy, table: ProcessTable) {
        let wanted = policy.rules.enumerated().filter { $0.element.killExisting && $0.element.action != .audit }
        guard !wanted.isEmpty else { return }
        let mask = wanted.reduce(UInt64(0)) { $0 | policy.bitFor($1.offset) }
        let reader = ProcReader()
        for pid in reader.pids() where pid > 1 && pid != getpid() {
            guard let r = reader.record(pid), let img = r.image else { continue }
            let exeKey = fileID("/proc/\(pid)/exe").map { (DeviceNumber.kernel(fromUser: $0.dev), $0.ino) }
            var exeMask: UInt64 = 0
            for (path, m) in policy.exeKeys {
                if let f = fileID(path), let k = exeKey, DeviceNumber.kernel(fromUser: f.dev) == k.0, f.ino == k.1 { exeMask |= m }
            }
            let keys = ScriptHash.keys(forExec: img.argv, filename: img.filename, cwd: img.cwd)
            let hit = policy.matches(exeMask: exeMask, scriptKeys: keys, comm: r.comm, argv: img.argv) & mask
            guard hit != 0 else { continue }
            let names = policy.rules(in: hit).map(\.name)
            let ok = PidfdKiller.kill(r.id, reader: reader)
            log.warning("kill_existing: \(ok ? "killed" : "could not kill") a running process", metadata: [
                "pid": "\(pid)", "id": "\(r.id)", "rules": "\(names.joined(separator: ","))",
                "argv": "\(config.redactor.apply(img.argv).joined(separator: " "))", "ancestry": "\(Lineage.chain(table, of: table.canonical(r.id)))"])
        }
    }

    /// Instances of each matched command line (newest last), for attribution in the audit log.
    /// Bound: 16 instances for each of at most 4,096 command lines; attribution is recomputed at
    /// most once a second per command line (a blocked program respawned in a tight loop must not
    /// turn every exec into configuration reads).
    private let matchedInstances = Mutex<[String: (ids: [Identity], reported: AuditEvent.Respawn?, atNs: Int64)]>([:])

    /// What respawns the program `id` runs, once it has been seen at least twice.
    private func respawn(of id: Identity, table: ProcessTable, bootEpochNs: Int64, rules: [String]) -> AuditEvent.Respawn? {
        guard let r = table[id], let argv = r.image?.argv, !argv.isEmpty else { return nil }
        let key = argv.joined(separator: "\0")
        let now = WallClock.nowNs()
        let (ids, cached): ([Identity], AuditEvent.Respawn?) = matchedInstances.withLock { m in
            if m[key] == nil && m.count >= 4096 { m.removeAll() }
            var entry = m[key] ?? ([], nil, 0)
            if !entry.ids.contains(id) { entry.ids.append(id) }
            if entry.ids.count > 16 { entry.ids.removeFirst(entry.ids.count - 16) }
            m[key] = entry
            return (entry.ids, entry.reported != nil && now - entry.atNs < 1_000_000_000 ? entry.reported : nil)
        }
        if var c = cached { c.instances = ids.count; return c }
        let instances = table.instances(ids, bootEpochNs: bootEpochNs)
        guard instances.count >= 2 else { return nil }
        let rep = Attributor.report(Attribution.analyze(instances), instances: instances, root: "/", reader: ProcReader())
        let summary = AuditEvent.Respawn(
            mechanism: rep.mechanism, unit: rep.unit, spawner_pid: rep.spawner?.pid, spawner_uid: rep.spawner?.id,
            file: rep.source?.file, line: rep.source?.line, text: rep.source?.text, instances: rep.instances,
            confidence: rep.confidence, remediation: rep.remediation)
        // A finding record when the answer is new or has changed (not for every further instance).
        let changed = matchedInstances.withLock { m -> Bool in
            let old = m[key]?.reported
            m[key]?.reported = summary
            m[key]?.atNs = now
            return old.map { $0.mechanism != summary.mechanism || $0.spawner_uid != summary.spawner_uid
                || $0.file != summary.file || $0.line != summary.line } ?? true
        }
        if changed {
            record(.finding(r, ancestry: table.ancestry(of: id), bootEpochNs: bootEpochNs, timeMs: WallClock.nowMs(),
                            rules: rules, respawn: summary), sync: true)
            log.notice("respawn finding: \(argv.joined(separator: " ")) is respawned by \(summary.mechanism)", metadata: [
                "spawner": "\(summary.spawner_uid ?? "?")", "source": "\(summary.file.map { "\($0):\(summary.line ?? 0)" } ?? "not found")",
                "instances": "\(summary.instances)"])
        }
        return summary
    }

    /// Logs and audits an enforcement with its lineage; kills from userspace when the kernel could not.
    /// `e` carries the raw command line (argv globs match it); logs show the redacted one.
    private func enforce(_ e: ExecEvent, policy: CompiledPolicy, table: ProcessTable, bootEpochNs: Int64) -> Enforcement? {
        // argv globs refine what the kernel matched.
        var mask = e.matched
        for (i, r) in policy.rules.enumerated() where r.match.argv != nil && mask & policy.bitFor(i) != 0 {
            if !Glob.match(r.match.argv!, e.argv.joined(separator: " ")) { mask &= ~policy.bitFor(i) }
        }
        let rules = policy.rules(in: mask)
        guard !rules.isEmpty else { return nil }
        let names = Enforcement.ruleList(rules.map(\.name))
        let text: String
        var tier: EnforcementTier?
        var blocked = false
        switch e.action {
        case .kill:
            text = "killed at exec by the kernel (rule \(names))"
            tier = .killAtExec
            blocked = true
        case .killFailed:
            blocked = PidfdKiller.kill(e.process)
            text = blocked ? "killed from userspace, the kernel could not (rule \(names))" : "kill failed (rule \(names))"
            tier = .userspaceKill
        case .deny:
            text = "denied (rule \(names))"
            tier = .deny
            blocked = true
        case .audit where config.userspaceKill && rules.contains { $0.action != .audit }:
            blocked = PidfdKiller.kill(e.process)
            text = blocked ? "killed from userspace (rule \(names))" : "userspace kill missed: already gone (rule \(names))"
            tier = .userspaceKill
        case .audit, .none:
            let strongest = rules.map(\.action).max() ?? .audit
            text = strongest == .audit ? "audited (rule \(names))" : "matched \(strongest) rule \(names) but the kernel did not act"
        }
        let id = table.canonical(e.process)
        if let r = table[id] {
            let why = respawn(of: id, table: table, bootEpochNs: bootEpochNs, rules: rules.map(\.name))
            record(.launch(r, ancestry: table.ancestry(of: id), bootEpochNs: bootEpochNs, timeMs: WallClock.nowMs(),
                           rules: rules.map(\.name), tier: tier?.rawValue, blocked: blocked, message: text, respawnedBy: why),
                   sync: blocked)
        }
        log.log(level: tier == nil ? .info : .warning, "\(text)", metadata: [
            "pid": "\(e.process.pid)", "id": "\(e.process)", "exe": "\(e.filename)",
            "argv": "\((table[id]?.image?.argv ?? []).joined(separator: " "))", "tier": "\(tier?.rawValue ?? "none")",
            "ancestry": "\(Lineage.chain(table, of: id))"])
        return Enforcement(rules: rules.map(\.name), tier: tier, blocked: blocked, message: text)
    }

}

/// A value kept by reference, for state that nested functions share.
final class Held<Value> {
    /// Used by the serve loop's thread alone: the runtime check on each access showed in profiles.
    @exclusivity(unchecked) var value: Value
    init(_ value: Value) { self.value = value }
    /// In place: a non-mutating call on `value` from a nested function copied the whole value
    /// for the call (every table retained and released), once per record.
    @inline(__always) func read<R>(_ body: (inout Value) throws -> R) rethrows -> R { try body(&value) }
}
