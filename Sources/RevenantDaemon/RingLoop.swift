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
            report.daemon("events lost", detail: detail, journal: "events lost in the kernel", level: .warning, severity: 4,
                          timeMs: now / 1_000_000, metadata: [
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

}

@available(*, unavailable)
extension RingLoop: Sendable {}
