import Foundation
import Logging
import RevenantCore
import RevenantOutputs
import RevenantQuery
import RevenantStore
import RevenantKernel
import RevenantHost
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The ring-buffer thread: reads the kernel's records, acts where the kernel could not, keeps
/// the fork-time lineage, and hands store batches to the `StoreWriter` and audit records to
/// the `AuditSink`. Nothing here waits on a file the daemon does not own: attribution, the
/// store's writes and the audit log's fsyncs happen on their own threads.
///
/// Everything below `// MARK: ring thread` is touched by that thread alone.
final class Ingest: @unchecked Sendable {
    private let config: Daemon.Config
    private let log: Logger
    /// The store as opened at start (nil when it could not be): read once, at the seed.
    private let store: Store?
    private let writer: StoreWriter
    private let audit: AuditSink
    private let worker: AttributionWorker
    private let boot: String
    private let clock: BootClock

    private struct Control {
        var tracer: Tracer?
        var stopReason: String?
        var policy: (Policy, path: String)?
    }
    private let control = Mutex(Control())
    private let policyOffered = Atomic<Bool>(false)
    /// SIGUSR1 (`who-spawned` on a process younger than the last flush): drain and flush now.
    private let flushRequested = Atomic<Bool>(false)
    /// The store lost changes or was replaced: the next batch carries every live process.
    private let snapshotRequested = Atomic<Bool>(false)
    /// A policy executable's file changed: its rules are resolved again.
    private let exeChanged = Atomic<Bool>(false)
    /// Configuration changes the watcher saw, for the ring thread.
    private let configPending = Mutex<[ConfigWatch.Raw]>([])
    /// Changes seen and not recorded because `configPendingLimit` were waiting.
    private let configDropped = Atomic<Int>(0)
    static let configPendingLimit = 65_536
    /// Per-change log lines in the current second, and those not logged one by one.
    @exclusivity(unchecked) private var configLogged = (second: Int64(0), lines: 0, quiet: 0)
    private let configPendingCount = Atomic<Int>(0)

    init(config: Daemon.Config, store: Store?, writer: StoreWriter, audit: AuditSink, worker: AttributionWorker,
         boot: String, clock: BootClock, logger: Logger) {
        self.config = config; self.store = store; self.writer = writer; self.audit = audit; self.worker = worker
        self.boot = boot; self.clock = clock; log = logger
        batch = StoreBatch(boot: boot, bootEpochNs: clock.bootEpochNs)
    }

    // MARK: any thread

    /// Ends ingest: the thread drains the ring, writes the last batch and returns. The first
    /// reason given is the one recorded.
    func stop(reason: String) {
        let t = control.withLock { c in
            if c.stopReason == nil { c.stopReason = reason }
            return c.tracer
        }
        t?.stop()
    }

    /// From the store writer: its history lost changes, so the next batch re-sends every live process.
    func requestSnapshot() { snapshotRequested.store(true, ordering: .releasing) }

    /// Drains the ring and hands the store a batch now, instead of at the next interval.
    func flushSoon() {
        flushRequested.store(true, ordering: .releasing)
        control.withLock { $0.tracer }?.wake()
    }

    /// A checked policy, installed by the ring thread at its next turn.
    func offer(_ policy: Policy, path: String) {
        let t = control.withLock { c in
            c.policy = (policy, path)
            return c.tracer
        }
        policyOffered.store(true, ordering: .releasing)
        t?.wake()
    }

    // MARK: ring thread

    @exclusivity(unchecked) private var table = ProcessTable()
    @exclusivity(unchecked) private var batch: StoreBatch
    /// Changed since the last flush; true for a process forked since (no row holds it yet).
    @exclusivity(unchecked) private var dirty: [Identity: Bool] = [:]
    /// Processes whose exit is audited: a rule matched them (or every one, with --audit all).
    @exclusivity(unchecked) private var audited: [Identity: [String]] = [:]
    /// The last exec texts box the redactor found nothing to hide in.
    @exclusivity(unchecked) private var cleanTexts: ExecTexts?
    @exclusivity(unchecked) private var tracer: Tracer!
    @exclusivity(unchecked) private var enforcer: Enforcer!
    @exclusivity(unchecked) private var policy: CompiledPolicy?
    @exclusivity(unchecked) private var lost = TraceCounters.zero
    @exclusivity(unchecked) private var ingested = 0
    /// Records by type since the last flush, handed to the metrics there.
    @exclusivity(unchecked) private var typeCounts = (fork: 0, exec: 0, exit: 0, deny: 0, malformed: 0)
    @exclusivity(unchecked) private var malformed = 0
    @exclusivity(unchecked) private var lastFlush = ContinuousClock.now
    @exclusivity(unchecked) private var lastFlushWallNs = WallClock.nowNs()
    @exclusivity(unchecked) private var pinned = false
    @exclusivity(unchecked) private var isReady = false
    @exclusivity(unchecked) private var configWatch: ConfigWatch?
    @exclusivity(unchecked) private var lastConfigChange: ConfigChange?
    @exclusivity(unchecked) private var lastWatchdog = ContinuousClock.now
    /// The policy in force and its file, resolved again when one of its executables changes.
    @exclusivity(unchecked) private var installed: (Policy, String)?
    @exclusivity(unchecked) private var exeWatch: ExeWatch?
    /// Instances of each matched command line (newest last), for attribution: 16 for each of
    /// at most 4,096 command lines.
    @exclusivity(unchecked) private var matchedInstances: [String: [Identity]] = [:]

    /// Runs until `stop(reason:)`. Always hands the writer its last job and the sink its
    /// close, whatever ends it.
    func serve() throws {
        var reason = "event stream ended"
        defer {
            writer.submit(.end(reason: reason, lostEvents: Int64(lost.ringbufFull)))
            audit.submit(.record(.daemon("stop", timeMs: WallClock.nowMs(),
                                         detail: "\(reason); \(ingested) events, \(lost.ringbufFull) lost"), sync: true))
            audit.submit(.close)
        }
        do {
            tracer = try Tracer(options: config.tracer)
        } catch {
            reason = "BPF load failed"
            throw error
        }
        let early = control.withLock { c in
            c.tracer = tracer
            return c.stopReason != nil
        }
        if early { tracer.stop() }
        // Whatever happens below, the programs are detached when serving ends.
        defer { tracer.close() }
        let probed: Tracer = tracer
        DaemonMetrics.shared.ringProbe.withLock { $0 = { [weak probed] in probed?.ringFill() } }
        log.info("tracing attached", metadata: ["programs": "tp_btf/sched_process_{fork,exec,exit}",
                                                "ringbuf_mib": "\(config.tracer.ringbufBytes >> 20)",
                                                "deny_program": "\(tracer.lsmActive ? "attached" : tracer.lsmStatus.split(separator: "\n").first.map(String.init) ?? "")"])
        do {
            try seed()
            watchConfiguration()
            enforcer = Enforcer(tracer: tracer, lsmActive: tracer.lsmActive)
            // Said once the programs are attached: readers take it (or "policy loaded") as ready.
            if config.policyPath == nil {
                pinOnce()
                log.notice("no policy: tracing only")
                ready("tracing, no policy")
            }
            try loop()
            try announceLive()
            try flush()
        } catch {
            reason = control.withLock { $0.stopReason } ?? "ingest failed: \(error)"
            throw error
        }
        reason = control.withLock { $0.stopReason } ?? reason
        log.info("stopped", metadata: ["reason": "\(reason)", "events": "\(ingested)", "malformed": "\(malformed)",
                                       "lost": "\(lost.ringbufFull)"])
    }

    /// After attaching, so nothing starts in a gap between the two.
    private func seed() throws {
        var first = StoreBatch(boot: boot, bootEpochNs: clock.bootEpochNs)
        let began = ContinuousClock.now
        var told = began
        let found = ProcReader().all(every: 1000) { read, total in
            // Said every 2 s on a big host, so a slow start is seen to be working.
            guard ContinuousClock.now - told > .seconds(2) else { return }
            told = ContinuousClock.now
            log.info("seeding from /proc", metadata: ["read": "\(read)", "of": "\(total)"])
        }
        // After a restart on the same boot, what the earlier run saw start keeps its exact key
        // and fork-time lineage instead of a second, tick-precision row built from /proc.
        let earlier = (try? store?.exactRecords(boot: boot, seeing: found.map(\.id))) ?? [:]
        for r in found { if let k = earlier[r.id] { table.restore(k, seenAs: r.id) } }
        for var r in found where earlier[r.id] == nil {
            // Seeded command lines leave the process like traced ones: redacted first.
            for k in r.images.indices { if let hidden = config.redactor.redacted(r.images[k].argv) { r.images[k].argv = hidden } }
            table.seed(r)
            guard var s = table[r.id] else { continue }
            s.parent = s.parent.map { table.canonical($0) }
            first.processes.append(s)
            if let img = r.images.first { first.images.append((r.id, 0, img)) }
        }
        writer.submit(.seed(first, running: found.map(\.id), atWallNs: WallClock.nowNs()))
        log.info("seeded from /proc", metadata: ["processes": "\(first.processes.count)", "known_from_earlier_run": "\(earlier.count)",
                                                 "seconds": "\(String(format: "%.2f", Double((ContinuousClock.now - began).components.attoseconds) / 1e18 + Double((ContinuousClock.now - began).components.seconds)))"])
    }

    private func loop() throws {
        let flushEvery = Duration.milliseconds(config.flushMs)
        var nextFlush = ContinuousClock.now + flushEvery
        while true {
            // The watchdog is fed here: a hung ingest stops feeding it and systemd restarts the daemon.
            if let every = SystemdNotify.watchdogEvery, ContinuousClock.now - lastWatchdog >= every {
                SystemdNotify.send("WATCHDOG=1")
                lastWatchdog = ContinuousClock.now
            }
            if policyOffered.exchange(false, ordering: .acquiringAndReleasing),
               let (p, path) = control.withLock({ c in defer { c.policy = nil }; return c.policy }) {
                install(p, path: path)
            }
            if exeChanged.exchange(false, ordering: .acquiringAndReleasing), let (p, path) = installed {
                let replaced = enforcer.replacedExecutables()
                if !replaced.isEmpty {
                    log.notice("policy executable replaced: its rules are resolved again", metadata: ["exe": "\(replaced.joined(separator: " "))"])
                    install(p, path: path)
                }
            }
            let untilFlush = max(0, Int32((nextFlush - ContinuousClock.now) / .milliseconds(1)))
            // false: stop was asked for and the ring is drained.
            guard try tracer.drainRecords(timeoutMs: min(config.tracer.pollMs, untilFlush), { raw, memo in try handle(raw, &memo) }) else {
                // Stopping: the changes already seen are recorded before the last flush.
                if configPendingCount.load(ordering: .acquiring) > 0 { recordConfigChanges() }
                return
            }
            // After a drain that began after the change was seen: the writer's exec, which came
            // before its write, is in the table.
            if configPendingCount.load(ordering: .acquiring) > 0 {
                _ = try tracer.drainRecords(timeoutMs: 0) { raw, memo in try handle(raw, &memo) }
                recordConfigChanges()
            }
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
    }

    private func flush(force: Bool = false) throws {
        let counters = (try? tracer.counters()) ?? lost
        let now = WallClock.nowNs()
        if counters.ringbufFull != lost.ringbufFull || counters.procMapFull != lost.procMapFull {
            let ring = counters.ringbufFull - lost.ringbufFull, map = counters.procMapFull - lost.procMapFull
            log.warning("events lost in the kernel", metadata: [
                "ringbuf_full": "\(counters.ringbufFull)", "procmap_full": "\(counters.procMapFull)",
                "new": "\(ring)"])
            // An interval, not only a counter: readers mark what crosses it as uncertain.
            let detail = "\(ring) events dropped (ring buffer full), \(map) processes untracked (process map full)"
            batch.gaps.append(TraceGap(kind: .eventsLost, fromWallNs: lastFlushWallNs, toWallNs: now,
                                       lost: Int64(ring + map), detail: detail))
            audit.submit(.record(.daemon("events lost", timeMs: now / 1_000_000, detail: detail, severity: 4), sync: true))
            DaemonMetrics.shared.lost("ringbuf_full", Int(ring))
            DaemonMetrics.shared.lost("procmap_full", Int(map))
            lost = counters
        }
        lastFlushWallNs = now
        let m = DaemonMetrics.shared, t = typeCounts
        m.events("fork", t.fork); m.events("exec", t.exec); m.events("exit", t.exit); m.events("deny", t.deny); m.malformed(t.malformed)
        typeCounts = (0, 0, 0, 0, 0)
        if snapshotRequested.exchange(false, ordering: .acquiringAndReleasing) {
            for r in table.all where !r.exited { dirty[r.id] = true }
        }
        batch.rekeys = table.drainRekeys()
        let rows = table.changes(dirty, leavesInto: &batch.leaves)
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
        // An empty batch every 5 s still tells readers the daemon is alive (`last_seen`).
        if force || !batch.isEmpty || ContinuousClock.now - lastFlush > .seconds(5) {
            writer.submit(.batch(batch, lostEvents: Int64(lost.ringbufFull)))
            lastFlush = ContinuousClock.now
        }
        batch = StoreBatch(boot: boot, bootEpochNs: clock.bootEpochNs)
        audit.submit(.sync)
    }

    /// One record from the kernel: redact, enforce, audit, apply to the table, batch for the store.
    /// Execs and exits are decoded straight into their handlers: moved through `Event` and
    /// `TraceItem`, opened by accessors and patterns, each was copied whole many times.
    @inline(__always) private func handle(_ raw: UnsafeRawBufferPointer, _ memo: inout EventDecoder.Memo) throws {
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
    private func skip(_ error: DecodeError) {
        malformed += 1
        typeCounts.malformed += 1
        log.warning("malformed record skipped", metadata: ["error": "\(error)"])
    }

    /// An exec, moved in.
    @inline(__always) private func takeExec(_ x: consuming ExecEvent) throws {
        // A policy match is judged on the real command line: kept aside only for a match.
        let matched = x.matched
        let real: ExecEvent? = matched != 0 ? x : nil
        // Secrets leave the command line here, before the table, the store and the logs see it.
        // A respawn loop's execs share one texts box: found clean once, it is not scanned again.
        if !config.redactor.patterns.isEmpty, x.texts !== cleanTexts {
            if let hidden = config.redactor.redacted(x.argv) { x.argv = hidden } else { cleanTexts = x.texts }
        }
        ingested += 1
        typeCounts.exec += 1
        // Short-lived processes skip the table: held back at their exec, handed to the
        // store's leaves at their exit (most end within a batch, forking nothing).
        if !config.auditAll, matched == 0, table.parkable(x) {
            table.hold(consume x)
            noteUnparked()
            if pending >= config.flushChanges { try flush() }
            return
        }
        try file(.exec(consume x), matched: matched, real: real)
    }

    /// An exit.
    @inline(__always) private func takeExit(_ x: ExitEvent) throws {
        ingested += 1
        typeCounts.exit += 1
        // A writer of a watched file is usually short-lived: it is looked up before its exit
        // takes it out of the table (one atomic load per exit otherwise).
        if configPendingCount.load(ordering: .acquiring) > 0 { recordConfigChanges(writer: x.process.pid) }
        if !config.auditAll, table.leaf(exiting: x, into: &batch.leaves) {
            noteUnparked()
            if pending >= config.flushChanges { try flush() }
            return
        }
        try file(.exit(x), matched: nil, real: nil)
    }

    /// A fork or a deny record.
    private func takeOther(_ e: Event) throws {
        if case .deny(let d) = e, let policy {
            table.unpark(namedBy: e)
            let rules = policy.rules(in: d.matched).map(\.name)
            let text = "denied exec of \(d.filename) (rule \(Enforcement.ruleList(rules)))"
            if let r = table[table.canonical(d.process)] {
                audit.submit(.record(.launch(r, ancestry: table.ancestry(of: r.id), bootEpochNs: clock.bootEpochNs, timeMs: WallClock.nowMs(),
                                             rules: rules, tier: EnforcementTier.deny.rawValue, blocked: true, message: text), sync: true))
            }
            log.warning("denied exec (rule \(Enforcement.ruleList(rules)))", metadata: [
                "pid": "\(d.process.pid)", "rule": "\(rules.joined(separator: ","))", "id": "\(d.process)", "exe": "\(d.filename)",
                "tier": "\(EnforcementTier.deny.rawValue)",
                "ancestry": "\(Lineage.chain(table, of: table.canonical(d.process)))"])
            DaemonMetrics.shared.enforced(rules: rules, tier: EnforcementTier.deny.rawValue, blocked: true)
        }
        if case .deny = e { typeCounts.deny += 1 } else { typeCounts.fork += 1 }
        ingested += 1
        try file(e, matched: nil, real: nil)
    }

    /// A record the fast ways above did not take, into the table. `matched`: an exec's rule
    /// bits (nil for any other record); `real`: a matching exec before redaction.
    private func file(_ e: consuming Event, matched: UInt64?, real: ExecEvent?) throws {
        let added = table.apply(e)
        noteUnparked()
        let id = table.canonical(e.process)
        let born: Bool
        // Added to the table: no row holds it yet (with lazy forks, an exec or exit can add one).
        if added { dirty[id] = true; born = true } else { born = Ingest.touch(&dirty[id, default: false]) }
        if let matched, !born || matched != 0 || config.auditAll,
           case (let seq, var img)? = table.latestImage(of: id) {
            if let x = real, let policy, let done = enforce(x, policy: policy) {
                img.enforcement = done
                table.replaceLatestImage(of: id, with: img)
                audited[id] = done.rules
            } else if config.auditAll, let r = table[id] {
                audit.submit(.record(.launch(r, ancestry: table.ancestry(of: id), bootEpochNs: clock.bootEpochNs, timeMs: WallClock.nowMs(),
                                             rules: [], tier: nil, blocked: false, message: "exec \(img.argv.joined(separator: " "))"), sync: false))
                audited[id] = []
            }
            // A process born since the last flush has no row yet: the flush takes its images.
            if !born { batch.images.append((id, seq, img)) }
        }
        // Only exits that are audited cost a table lookup.
        if e.isExit, let rules = audited.removeValue(forKey: id) ?? (config.auditAll ? [] : nil), let r = table[id] {
            audit.submit(.record(.terminate(r, ancestry: table.ancestry(of: id), bootEpochNs: clock.bootEpochNs,
                                            timeMs: WallClock.nowMs(), rules: rules), sync: false))
        }
        if pending >= config.flushChanges { try flush() }
    }

    /// Reads a value through an in-place access: with `dict[key, default: v]` it lists the key
    /// if absent and returns what is listed, in one lookup.
    @inline(__always) private static func touch(_ b: inout Bool) -> Bool { b }

    /// Filed from the parked ones by a record naming them: no row holds them yet.
    private func noteUnparked() {
        if table.hasUnparked { for u in table.drainUnparked() { dirty[u] = true } }
    }

    /// Changes waiting for the next store batch.
    private var pending: Int { dirty.count + batch.images.count + batch.leaves.count + table.parkedCount }

    /// What the kernel map holds that no record named yet: live processes that forked and
    /// have neither exec'd nor exited (lazy forks). For a who-spawned asking, and at a stop,
    /// so a restart on this boot finds their exact identity and fork-time parent.
    private func announceLive() throws {
        guard config.tracer.lazyForks else { return }
        for f in tracer.unannounced() { try takeOther(.fork(f)) }
    }

    // MARK: policy and enforcement (ring thread)

    /// Compiles for the free half of the maps, installs, and kills matching running processes
    /// where asked. A failure keeps the running policy.
    private func install(_ p: Policy, path: String) {
        // kill_existing logs each victim's ancestry from the table: every process in it.
        table.unparkAll()
        noteUnparked()
        do {
            var compiled = try PolicyCompiler.compile(p, context: PolicyLoader.safetyContext(), bitBase: enforcer.nextBitBase)
            if config.userspaceKill {
                compiled.audit |= compiled.kill | compiled.deny
                compiled.kill = 0
                compiled.deny = 0
            }
            let missing = try enforcer.install(compiled)
            for m in missing {
                log.warning("policy exe does not exist here: its rules match only by script or comm", metadata: ["exe": "\(m)"])
            }
            policy = compiled
            installed = (p, path)
            DaemonMetrics.shared.policy(rules: compiled.rules.count)
            watchExecutables(p)
            let tiers = Set(compiled.rules.compactMap { enforcer.tier(for: $0.action)?.rawValue }).sorted()
            log.notice("policy loaded", metadata: [
                "file": "\(path)", "rules": "\(compiled.rules.count)",
                "tier": "\(tiers.isEmpty ? "audit only" : tiers.joined(separator: ", "))",
                "lsm": "\(enforcer.lsmActive ? (tracer.lsmSeesArgv ? "active" : "active (exe and exec path only: tracefs not mounted, argv scripts are killed at exec)") : "not active: deny rules are killed at exec")"])
            audit.submit(.record(.daemon("policy loaded", timeMs: WallClock.nowMs(),
                                         detail: "\(path): \(compiled.rules.count) rules; \(tiers.isEmpty ? "audit only" : tiers.joined(separator: ", "))"),
                                 sync: true))
            overridden(compiled.rules, path: path)
            pinOnce()
            ready("enforcing \(compiled.rules.count) rules from \(path)")
            killExisting(compiled)
        } catch {
            log.error("policy install failed, previous policy stays in force", metadata: ["error": "\(error)"])
            audit.submit(.record(.daemon("policy rejected", timeMs: WallClock.nowMs(), detail: "\(error)", severity: 3), sync: true))
        }
    }

    private func watchConfiguration() {
        var error: String?
        configWatch = ConfigWatch(changed: { [weak self] raw in
            guard let self else { return }
            // Bounded: a storm the ingest cannot keep up with is a counted loss, not memory.
            guard configPending.withLock({ p -> Bool in
                guard p.count < Ingest.configPendingLimit else { return false }
                p.append(raw)
                return true
            }) else { configDropped.add(1, ordering: .relaxed); return }
            configPendingCount.add(1, ordering: .releasing)
            control.withLock { $0.tracer }?.wake()
        }, error: &error)
        if let w = configWatch {
            worker.sourceNamed.withLock { $0 = { [weak w] file in w?.watch(file: file) } }
            worker.rootSeen.withLock { $0 = { [weak w] root in w?.watch(root: root) } }
            log.info("configuration sources watched", metadata: ["directories": "\(w.watched.joined(separator: " "))"])
        } else {
            log.warning("configuration sources not watched: changes to units, crontabs and configs are not attributed", metadata: ["error": "\(error ?? "?")"])
        }
    }

    /// Each change to a watched configuration file, with its writer as the table knows it;
    /// `writer`: only that process's changes (it is exiting, its exec already taken).
    private func recordConfigChanges(writer: Int32? = nil) {
        let raws = configPending.withLock { p -> [ConfigWatch.Raw] in
            let mine = writer.map { w in p.filter { $0.pid == w } } ?? p
            if let w = writer { p.removeAll { $0.pid == w } } else { p.removeAll() }
            configPendingCount.store(p.count, ordering: .releasing)
            return mine
        }
        let dropped = configDropped.exchange(0, ordering: .relaxed)
        if dropped > 0 {
            let now = WallClock.nowNs()
            let detail = "\(dropped) configuration changes dropped (\(Ingest.configPendingLimit) waiting to be recorded): their writers are not known"
            batch.gaps.append(TraceGap(kind: .configChangesLost, fromWallNs: now, toWallNs: now, lost: Int64(dropped), detail: detail))
            audit.submit(.record(.daemon("configuration changes lost", timeMs: now / 1_000_000, detail: detail, severity: 4), sync: false))
            log.warning("configuration changes lost", metadata: ["dropped": "\(dropped)"])
        }
        for raw in raws {
            if raw.lost {
                let detail = "configuration changes dropped (fanotify queue full): their writers are not known"
                batch.gaps.append(TraceGap(kind: .configChangesLost, fromWallNs: raw.timeWallNs, toWallNs: raw.timeWallNs, lost: 1, detail: detail))
                audit.submit(.record(.daemon("configuration changes lost", timeMs: raw.timeWallNs / 1_000_000, detail: detail, severity: 4), sync: false))
                log.warning("configuration changes lost: the fanotify queue overflowed")
                continue
            }
            // An editor's or a tool's several events for one save are one change.
            if let last = lastConfigChange, last.path == raw.path, last.kind == raw.kind, last.writerPid == raw.pid,
               raw.timeWallNs - last.timeWallNs < 1_000_000_000 { continue }
            table.fileParked(pid: raw.pid)
            noteUnparked()
            let r = table.latest(pid: raw.pid)
            let command = r.map { r in r.image.map { config.redactor.apply($0.argv).joined(separator: " ") } ?? r.name } ?? "pid \(raw.pid)"
            let c = ConfigChange(path: raw.path, kind: raw.kind, timeWallNs: raw.timeWallNs, writerPid: raw.pid, writerId: r?.id.description,
                                 command: command, ancestry: r.map { Lineage.chain(table, of: $0.id) } ?? "?",
                                 loginuid: r?.image?.loginuid, uid: r?.image?.uid, session: r.flatMap { Lineage.session(table, of: $0.id) })
            lastConfigChange = c
            batch.configChanges.append(c)
            DaemonMetrics.shared.configChange(c.kind.rawValue)
            audit.submit(.record(.fileActivity(c), sync: false))
            // A package install writes hundreds of files: ten lines a second, then a count.
            let second = c.timeWallNs / 1_000_000_000
            if second != configLogged.second {
                if configLogged.quiet > 0 {
                    log.info("configuration changes not logged one by one (the audit log and the store have each)", metadata: ["count": "\(configLogged.quiet)"])
                }
                configLogged = (second, 0, 0)
            }
            if configLogged.lines < 10 {
                configLogged.lines += 1
                log.info("configuration \(c.kind.rawValue)", metadata: ["path": "\(c.path)", "by": "\(c.command)", "ancestry": "\(c.ancestry)"])
            } else {
                configLogged.quiet += 1
            }
        }
    }

    /// READY=1 once the programs are attached and the first policy is in force (a unit's
    /// `Type=notify`: units ordered after it start only then); later calls update STATUS=.
    private func ready(_ status: String) {
        SystemdNotify.send(isReady ? "STATUS=\(status)" : "READY=1\nSTATUS=\(status)")
        isReady = true
    }

    private func watchExecutables(_ p: Policy) {
        let paths = p.rules.compactMap(\.match.exe)
        if exeWatch == nil, !paths.isEmpty {
            exeWatch = ExeWatch { [weak self] _ in
                guard let self else { return }
                exeChanged.store(true, ordering: .releasing)
                control.withLock { $0.tracer }?.wake()
            }
            if exeWatch == nil {
                log.warning("policy executables not watched (inotify unavailable): an upgraded one is matched again only on SIGHUP",
                            metadata: ["errno": "\(errno)"])
            }
        }
        exeWatch?.watch(paths)
    }

    /// With --pin, once this daemon's programs enforce its policy: they replace an earlier
    /// daemon's pinned ones, which kept enforcing until now.
    private func pinOnce() {
        guard let dir = config.pinDir, !pinned else { return }
        pinned = true
        do {
            try tracer.pin(dir)
            log.notice("programs pinned: kill at exec stays in force if the daemon stops", metadata: ["dir": "\(dir)"])
            audit.submit(.record(.daemon("programs pinned", timeMs: WallClock.nowMs(), detail: dir), sync: true))
        } catch {
            log.critical("PIN FAILED: enforcement ends with this daemon", metadata: ["dir": "\(dir)", "error": "\(error)"])
        }
    }

    /// Rules the rails would refuse, loaded because they say `allow_dangerous: true`: each is
    /// logged at critical level and recorded in the audit log at every load.
    private func overridden(_ rules: [PolicyRule], path: String) {
        let context = PolicyLoader.safetyContext()
        for r in rules where r.allowDangerous {
            guard let why = PolicyCompiler.danger(r, context: context) else { continue }
            log.critical("safety rails overridden by allow_dangerous: true", metadata: [
                "rule": "\(r.name)", "file": "\(path):\(r.line)", "why": "\(why)", "action": "\(r.action.rawValue)"])
            audit.submit(.record(.daemon("safety rails overridden", timeMs: WallClock.nowMs(),
                                         detail: "\(path):\(r.line): rule \"\(r.name)\" (\(r.action.rawValue)): \(why)", severity: 4),
                                 sync: true))
        }
    }

    private func killExisting(_ policy: CompiledPolicy) {
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

    /// Logs and audits an enforcement with its lineage; kills from userspace when the kernel could not.
    /// `e` carries the raw command line (argv globs match it); logs show the redacted one.
    private func enforce(_ e: ExecEvent, policy: CompiledPolicy) -> Enforcement? {
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
        let done = Enforcement(rules: rules.map(\.name), tier: tier, blocked: blocked, message: text)
        DaemonMetrics.shared.enforced(rules: done.rules, tier: tier?.rawValue, blocked: blocked)
        let id = table.canonical(e.process)
        if let r = table[id] {
            let ancestry = table.ancestry(of: id)
            let launch = AuditEvent.launch(r, ancestry: ancestry, bootEpochNs: clock.bootEpochNs, timeMs: WallClock.nowMs(),
                                           rules: done.rules, tier: tier?.rawValue, blocked: blocked, message: text)
            audit.submit(.launch(launch, sync: blocked, respawn: respawnRequest(r, ancestry: ancestry, rules: done.rules)))
        }
        log.log(level: tier == nil ? .info : .warning, "\(text)", metadata: [
            "pid": "\(e.process.pid)", "id": "\(e.process)", "exe": "\(e.filename)", "rule": "\(done.rules.joined(separator: ","))",
            "argv": "\((table[id]?.image?.argv ?? []).joined(separator: " "))", "tier": "\(tier?.rawValue ?? "none")",
            "ancestry": "\(Lineage.chain(table, of: id))"])
        return done
    }

    /// What the attribution worker needs to answer for this launch: the program's latest
    /// instances, gathered from the table here, unless it answered for them within a second.
    private func respawnRequest(_ r: ProcessRecord, ancestry: [ProcessRecord], rules: [String]) -> AttributionWorker.Request? {
        guard let argv = r.image?.argv, !argv.isEmpty else { return nil }
        let key = argv.joined(separator: "\0")
        if matchedInstances[key] == nil && matchedInstances.count >= 4096 { matchedInstances.removeAll() }
        var ids = matchedInstances[key] ?? []
        if !ids.contains(r.id) { ids.append(r.id) }
        if ids.count > 16 { ids.removeFirst(ids.count - 16) }
        matchedInstances[key] = ids
        let instances = worker.wantsInstances(key, nowNs: WallClock.nowNs()) ? table.instances(ids, bootEpochNs: clock.bootEpochNs) : []
        return AttributionWorker.Request(key: key, instances: instances, count: ids.count, process: r, ancestry: ancestry,
                                         bootEpochNs: clock.bootEpochNs, rules: rules)
    }
}

/// The ingest thread as a service: a graceful shutdown (SIGTERM, SIGINT, or another service
/// ending) stops it, and SIGUSR1 asks it to flush.
struct IngestService: Service {
    let ingest: Ingest

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sigusr1) { ingest.flushSoon() }
                }
                try await onOwnThread("revenant-ingest") { try ingest.serve() }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            ingest.stop(reason: "signal")
        }
    }
}
