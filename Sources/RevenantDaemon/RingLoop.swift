import Foundation
import Logging
import RevenantCore
import RevenantHost
import RevenantKernel
import RevenantOutputs
import RevenantStore
import Synchronization

/// The ring thread's state and work, owned by that thread alone: created in `Ingest.serve()`,
/// never shared, so it needs neither locks nor exclusivity escapes.
struct RingLoop {
    let ingest: Ingest
    let config: Daemon.Config
    let log: Logger
    let store: Store?
    let writer: StoreWriter
    let audit: AuditSink
    let worker: AttributionWorker
    let boot: String
    let clock: BootClock
    let report: DaemonReport
    var configRecorder = ConfigChangeRecorder()

    var table = ProcessTable()
    var batch: StoreBatch
    /// Changed since the last flush; true for a process forked since (no row holds it yet).
    var dirty: [Identity: Bool] = [:]
    /// Processes whose exit is audited: a rule matched them (or every one, with --audit all).
    var audited: [Identity: [String]] = [:]
    /// The last exec texts box the redactor found nothing to hide in.
    var cleanTexts: ExecTexts?
    var tracer: Tracer!
    var enforcer: Enforcer!
    var policy: CompiledPolicy?
    var lost = TraceCounters.zero
    var ingested = 0
    /// Records by type since the last flush, handed to the metrics there.
    var typeCounts = (fork: 0, exec: 0, exit: 0, deny: 0, malformed: 0)
    var malformed = 0
    var lastFlush = ContinuousClock.now
    var lastFlushWallNs = WallClock.nowNs()
    var pinned = false
    var isReady = false
    var configWatch: ConfigWatch?
    var lastConfigChange: ConfigChange?
    var lastWatchdog = ContinuousClock.now
    /// The policy in force and its file, resolved again when one of its executables changes.
    var installed: (Policy, String)?
    var exeWatch: ExeWatch?
    /// Instances of each matched command line (newest last), for attribution: 16 for each of
    /// at most 4,096 command lines.
    var matchedInstances: [String: [Identity]] = [:]


    init(_ ingest: Ingest) {
        self.ingest = ingest
        config = ingest.config; log = ingest.log; store = ingest.store; writer = ingest.writer
        audit = ingest.audit; worker = ingest.worker; boot = ingest.boot; clock = ingest.clock
        report = DaemonReport(log: ingest.log, audit: ingest.audit)
        batch = StoreBatch(boot: boot, bootEpochNs: clock.bootEpochNs)
    }

    /// Runs until `stop(reason:)`. Always hands the writer its last job and the sink its
    /// close, whatever ends it.
    mutating func serve() throws {
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
        let early = ingest.control.withLock { c in
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
            reason = ingest.control.withLock { $0.stopReason } ?? "ingest failed: \(error)"
            throw error
        }
        reason = ingest.control.withLock { $0.stopReason } ?? reason
        log.info("stopped", metadata: ["reason": "\(reason)", "events": "\(ingested)", "malformed": "\(malformed)",
                                       "lost": "\(lost.ringbufFull)"])
    }

    /// After attaching, so nothing starts in a gap between the two.
    mutating func seed() throws {
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

    mutating func loop() throws {
        let flushEvery = Duration.milliseconds(config.flushMs)
        var nextFlush = ContinuousClock.now + flushEvery
        while true {
            // The watchdog is fed here: a hung ingest stops feeding it and systemd restarts the daemon.
            if let every = SystemdNotify.watchdogEvery, ContinuousClock.now - lastWatchdog >= every {
                SystemdNotify.send("WATCHDOG=1")
                lastWatchdog = ContinuousClock.now
            }
            if ingest.policyOffered.exchange(false, ordering: .acquiringAndReleasing),
               let (p, path) = ingest.control.withLock({ c in defer { c.policy = nil }; return c.policy }) {
                install(p, path: path)
            }
            if ingest.exeChanged.exchange(false, ordering: .acquiringAndReleasing), let (p, path) = installed {
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
                if !ingest.configInbox.isEmpty { recordConfigChanges() }
                return
            }
            // After a drain that began after the change was seen: the writer's exec, which came
            // before its write, is in the table.
            if !ingest.configInbox.isEmpty {
                _ = try tracer.drainRecords(timeoutMs: 0) { raw, memo in try handle(raw, &memo) }
                recordConfigChanges()
            }
            if ingest.flushRequested.exchange(false, ordering: .acquiringAndReleasing) {
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

    mutating func flush(force: Bool = false) throws {
        let counters = (try? tracer.counters()) ?? lost
        let now = WallClock.nowNs()
        if counters.ringbufFull != lost.ringbufFull || counters.procMapFull != lost.procMapFull {
            let ring = counters.ringbufFull - lost.ringbufFull, map = counters.procMapFull - lost.procMapFull
            // An interval, not only a counter: readers mark what crosses it as uncertain.
            let detail = "\(ring) events dropped (ring buffer full), \(map) processes untracked (process map full)"
            batch.gaps.append(TraceGap(kind: .eventsLost, fromWallNs: lastFlushWallNs, toWallNs: now,
                                       lost: Int64(ring + map), detail: detail))
            report.daemon("events lost", detail: detail, level: .warning, severity: 4, timeMs: now / 1_000_000, metadata: [
                "ringbuf_full": "\(counters.ringbufFull)", "procmap_full": "\(counters.procMapFull)", "new": "\(ring)"])
            DaemonMetrics.shared.lost("ringbuf_full", Int(ring))
            DaemonMetrics.shared.lost("procmap_full", Int(map))
            lost = counters
        }
        lastFlushWallNs = now
        let m = DaemonMetrics.shared, t = typeCounts
        m.events("fork", t.fork); m.events("exec", t.exec); m.events("exit", t.exit); m.events("deny", t.deny); m.malformed(t.malformed)
        typeCounts = (0, 0, 0, 0, 0)
        if ingest.snapshotRequested.exchange(false, ordering: .acquiringAndReleasing) {
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
    @inline(__always) mutating func handle(_ raw: UnsafeRawBufferPointer, _ memo: inout EventDecoder.Memo) throws {
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
    mutating func skip(_ error: DecodeError) {
        malformed += 1
        typeCounts.malformed += 1
        log.warning("malformed record skipped", metadata: ["error": "\(error)"])
    }

    /// An exec, moved in.
    @inline(__always) mutating func takeExec(_ x: consuming ExecEvent) throws {
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
    @inline(__always) mutating func takeExit(_ x: ExitEvent) throws {
        ingested += 1
        typeCounts.exit += 1
        // A writer of a watched file is usually short-lived: it is looked up before its exit
        // takes it out of the table (one atomic load per exit otherwise).
        if !ingest.configInbox.isEmpty { recordConfigChanges(writer: x.process.pid) }
        if !config.auditAll, table.leaf(exiting: x, into: &batch.leaves) {
            noteUnparked()
            if pending >= config.flushChanges { try flush() }
            return
        }
        try file(.exit(x), matched: nil, real: nil)
    }

    /// A fork or a deny record.
    mutating func takeOther(_ e: Event) throws {
        if case .deny(let d) = e, let policy {
            table.unpark(namedBy: e)
            let done = EnforcementDecision.denied(filename: d.filename, rules: policy.rules(in: d.matched).map(\.name))
            let id = table.canonical(d.process)
            let launch = table[id].map { r in
                AuditEvent.launch(r, ancestry: table.ancestry(of: r.id), bootEpochNs: clock.bootEpochNs, timeMs: WallClock.nowMs(),
                                  rules: done.rules, tier: done.tier, blocked: true, message: done.message)
            }
            report.enforced(done, launch: launch, respawn: nil, metadata: [
                "pid": "\(d.process.pid)", "id": "\(d.process)", "exe": "\(d.filename)", "ancestry": "\(Lineage.chain(table, of: id))"])
        }
        if case .deny = e { typeCounts.deny += 1 } else { typeCounts.fork += 1 }
        ingested += 1
        try file(e, matched: nil, real: nil)
    }

    /// A record the fast ways above did not take, into the table. `matched`: an exec's rule
    /// bits (nil for any other record); `real`: a matching exec before redaction.
    mutating func file(_ e: consuming Event, matched: UInt64?, real: ExecEvent?) throws {
        let added = table.apply(e)
        noteUnparked()
        let id = table.canonical(e.process)
        let born: Bool
        // Added to the table: no row holds it yet (with lazy forks, an exec or exit can add one).
        if added { dirty[id] = true; born = true } else { born = RingLoop.touch(&dirty[id, default: false]) }
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
    mutating func noteUnparked() {
        if table.hasUnparked { for u in table.drainUnparked() { dirty[u] = true } }
    }

    /// Changes waiting for the next store batch.
    var pending: Int { dirty.count + batch.images.count + batch.leaves.count + table.parkedCount }

    /// What the kernel map holds that no record named yet: live processes that forked and
    /// have neither exec'd nor exited (lazy forks). For a who-spawned asking, and at a stop,
    /// so a restart on this boot finds their exact identity and fork-time parent.
    mutating func announceLive() throws {
        guard config.tracer.lazyForks else { return }
        for f in tracer.unannounced() { try takeOther(.fork(f)) }
    }

    // MARK: policy and enforcement (ring thread)

    /// Compiles for the free half of the maps, installs, and kills matching running processes
    /// where asked. A failure keeps the running policy.
    mutating func install(_ p: Policy, path: String) {
        // kill_existing logs each victim's ancestry from the table: every process in it.
        table.unparkAll()
        noteUnparked()
        do {
            let done = try PolicyInstall(p, enforcer: enforcer, userspaceKill: config.userspaceKill)
            for m in done.missing {
                log.warning("policy exe does not exist here: its rules match only by script or comm", metadata: ["exe": "\(m)"])
            }
            policy = done.compiled
            installed = (p, path)
            DaemonMetrics.shared.policy(rules: done.compiled.rules.count)
            watchExecutables(p)
            let lsm = enforcer.lsmActive ? (tracer.lsmSeesArgv ? "active" : "active (exe and exec path only: tracefs not mounted, argv scripts are killed at exec)") : "not active: deny rules are killed at exec"
            report.daemon("policy loaded", detail: "\(path): \(done.compiled.rules.count) rules; \(done.tierText)", metadata: [
                "file": "\(path)", "rules": "\(done.compiled.rules.count)", "tier": "\(done.tierText)", "lsm": "\(lsm)"])
            overridden(done.compiled.rules, path: path)
            pinOnce()
            ready("enforcing \(done.compiled.rules.count) rules from \(path)")
            for v in done.killExisting() {
                log.warning("kill_existing: \(v.killed ? "killed" : "could not kill") a running process", metadata: [
                    "pid": "\(v.record.id.pid)", "id": "\(v.record.id)", "rules": "\(v.rules.joined(separator: ","))",
                    "argv": "\(config.redactor.apply(v.record.image?.argv ?? []).joined(separator: " "))",
                    "ancestry": "\(Lineage.chain(table, of: table.canonical(v.record.id)))"])
            }
        } catch {
            report.daemon("policy rejected", detail: "\(error)", level: .error, severity: 3,
                          metadata: ["error": "\(error)", "outcome": "previous policy stays in force"])
        }
    }

    mutating func watchConfiguration() {
        var error: String?
        configWatch = ConfigWatch(changed: { [weak ingest] raw in ingest?.configurationChanged(raw) }, error: &error)
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
    mutating func recordConfigChanges(writer: Int32? = nil) {
        let (raws, dropped) = ingest.configInbox.take(writer: writer)
        configRecorder.record(raws, dropped: dropped, table: &table, redactor: config.redactor, into: &batch, report: report)
        noteUnparked()
    }

    /// READY=1 once the programs are attached and the first policy is in force (a unit's
    /// `Type=notify`: units ordered after it start only then); later calls update STATUS=.
    mutating func ready(_ status: String) {
        SystemdNotify.send(isReady ? "STATUS=\(status)" : "READY=1\nSTATUS=\(status)")
        isReady = true
    }

    mutating func watchExecutables(_ p: Policy) {
        let paths = p.rules.compactMap(\.match.exe)
        if exeWatch == nil, !paths.isEmpty {
            exeWatch = ExeWatch { [weak ingest] _ in ingest?.executableChanged() }
            if exeWatch == nil {
                log.warning("policy executables not watched (inotify unavailable): an upgraded one is matched again only on SIGHUP",
                            metadata: ["errno": "\(errno)"])
            }
        }
        exeWatch?.watch(paths)
    }

    /// With --pin, once this daemon's programs enforce its policy: they replace an earlier
    /// daemon's pinned ones, which kept enforcing until now.
    mutating func pinOnce() {
        guard let dir = config.pinDir, !pinned else { return }
        pinned = true
        do {
            try tracer.pin(dir)
            report.daemon("programs pinned", detail: dir, metadata: ["dir": "\(dir)", "effect": "kill at exec stays in force if the daemon stops"])
        } catch {
            log.critical("PIN FAILED: enforcement ends with this daemon", metadata: ["dir": "\(dir)", "error": "\(error)"])
        }
    }

    /// Rules the rails would refuse, loaded because they say `allow_dangerous: true`: each is
    /// logged at critical level and recorded in the audit log at every load.
    func overridden(_ rules: [PolicyRule], path: String) {
        let context = PolicyLoader.safetyContext()
        for r in rules where r.allowDangerous {
            guard let why = PolicyCompiler.danger(r, context: context) else { continue }
            report.daemon("safety rails overridden", detail: "\(path):\(r.line): rule \"\(r.name)\" (\(r.action.rawValue)): \(why)",
                          level: .critical, severity: 4,
                          metadata: ["rule": "\(r.name)", "file": "\(path):\(r.line)", "why": "\(why)", "action": "\(r.action.rawValue)"])
        }
    }

    /// Decides (see `EnforcementDecision`), kills from userspace when the kernel could not, and
    /// reports it with its lineage. `e` carries the raw command line (argv globs match it); logs
    /// show the redacted one.
    mutating func enforce(_ e: ExecEvent, policy: CompiledPolicy) -> Enforcement? {
        guard let decision = EnforcementDecision(kernel: e.action, matched: e.matched, argv: e.argv, policy: policy,
                                                 userspaceKill: config.userspaceKill) else { return nil }
        let killed = decision.step == .none ? false : PidfdKiller.kill(e.process)
        let done = decision.outcome(killed: killed)
        let id = table.canonical(e.process)
        var launch: AuditEvent?, respawn: AttributionWorker.Request?
        if let r = table[id] {
            let ancestry = table.ancestry(of: id)
            launch = AuditEvent.launch(r, ancestry: ancestry, bootEpochNs: clock.bootEpochNs, timeMs: WallClock.nowMs(),
                                       rules: done.rules, tier: done.tier, blocked: done.blocked, message: done.message)
            respawn = respawnRequest(r, ancestry: ancestry, rules: done.rules)
        }
        report.enforced(done, launch: launch, respawn: respawn, metadata: [
            "pid": "\(e.process.pid)", "id": "\(e.process)", "exe": "\(e.filename)",
            "argv": "\((table[id]?.image?.argv ?? []).joined(separator: " "))", "ancestry": "\(Lineage.chain(table, of: id))"])
        return done
    }

    /// What the attribution worker needs to answer for this launch: the program's latest
    /// instances, gathered from the table here, unless it answered for them within a second.
    mutating func respawnRequest(_ r: ProcessRecord, ancestry: [ProcessRecord], rules: [String]) -> AttributionWorker.Request? {
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

@available(*, unavailable)
extension RingLoop: Sendable {}
