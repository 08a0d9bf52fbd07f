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
        /// A batch is written when this many changes are pending or `flushMs` has passed.
        public var flushChanges = 4096
        public var flushMs = 200
        public var retentionEverySeconds = 60
        public var tracer = Tracer.Options()
        public var version = "0.1.0"
        public init() {}
    }

    private let config: Config
    private let log: Logger
    private struct Control {
        var tracer: Tracer?
        var stopReason: String?
    }
    private let control = Mutex(Control())

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

    private enum Input: Sendable {
        case item(TraceItem)
        case tick
    }

    public func run() async throws {
        let store = try Store(path: config.dbPath)
        let clock = BootClock()
        let boot = Daemon.bootID()
        let run = try store.beginRun(boot: boot, bootEpochNs: clock.bootEpochNs, version: config.version,
                                     nowWallNs: Daemon.wallNs())
        log.info("store opened", metadata: ["db": "\(config.dbPath)", "run": "\(run)", "boot": "\(boot)"])

        let tracer: Tracer
        do {
            tracer = try Tracer(options: config.tracer)
        } catch {
            try? store.endRun(run, nowWallNs: Daemon.wallNs(), reason: "BPF load failed", lostEvents: 0)
            throw error
        }
        let early = control.withLock { c in
            c.tracer = tracer
            return c.stopReason != nil
        }
        if early { tracer.stop() }
        log.info("tracing attached", metadata: ["programs": "tp_btf/sched_process_{fork,exec,exit}",
                                                "ringbuf_mib": "\(config.tracer.ringbufBytes >> 20)"])

        // Seed after attaching, so nothing starts in a gap between the two.
        var table = ProcessTable()
        var batch = StoreBatch(boot: boot, bootEpochNs: clock.bootEpochNs)
        for r in ProcReader().all() {
            table.seed(r)
            batch.processes.append(table[r.id]!)
            if let img = r.images.first { batch.images.append((r.id, 0, img)) }
        }
        try store.write(batch, run: run, nowWallNs: Daemon.wallNs())
        log.info("seeded from /proc", metadata: ["processes": "\(batch.processes.count)"])

        let (inputs, cont) = AsyncStream.makeStream(of: Input.self)
        let pump = Task.detached {
            for await item in tracer.events { cont.yield(.item(item)) }
            cont.finish()
        }
        let flushMs = config.flushMs
        let ticker = Task.detached {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(flushMs))
                cont.yield(.tick)
            }
        }

        var dirty: [Identity: Void] = [:]
        batch = StoreBatch(boot: boot, bootEpochNs: clock.bootEpochNs)
        var lastFlush = ContinuousClock.now
        var lastRetention = ContinuousClock.now
        var lost = TraceCounters.zero
        var ingested = 0
        var malformed = 0

        func flush() throws {
            let counters = (try? tracer.counters()) ?? lost
            if counters.ringbufFull != lost.ringbufFull || counters.procMapFull != lost.procMapFull {
                log.warning("events lost in the kernel", metadata: [
                    "ringbuf_full": "\(counters.ringbufFull)", "procmap_full": "\(counters.procMapFull)",
                    "new": "\(counters.ringbufFull - lost.ringbufFull)"])
                lost = counters
            }
            batch.rekeys = table.drainRekeys()
            // Parents under their current key: a seeded parent may have been re-keyed since.
            batch.processes = dirty.keys.compactMap { id in
                table[id].map { r in
                    var r = r
                    r.parent = r.parent.map(table.canonical)
                    r.adoptedBy = r.adoptedBy.map(table.canonical)
                    return r
                }
            }
            dirty.removeAll(keepingCapacity: true)
            if !batch.isEmpty || ContinuousClock.now - lastFlush > .seconds(5) {
                try store.write(batch, run: run, nowWallNs: Daemon.wallNs(),
                                lostEvents: Int64(lost.ringbufFull))
                lastFlush = ContinuousClock.now
            }
            batch = StoreBatch(boot: boot, bootEpochNs: clock.bootEpochNs)
            if ContinuousClock.now - lastRetention > .seconds(config.retentionEverySeconds) {
                lastRetention = ContinuousClock.now
                let cutoff = Daemon.wallNs() - config.retentionSeconds * 1_000_000_000
                let n = try store.enforceRetention(exitedBeforeWallNs: cutoff, maxProcesses: config.maxProcesses)
                if n > 0 { log.info("retention", metadata: ["deleted": "\(n)"]) }
            }
        }

        do {
            for await input in inputs {
                switch input {
                case .tick:
                    try flush()
                case .item(.malformed(let e)):
                    malformed += 1
                    log.warning("malformed record skipped", metadata: ["error": "\(e)"])
                case .item(.event(let e)):
                    table.apply(e)
                    ingested += 1
                    let id = table.canonical(e.process)
                    dirty[id] = ()
                    if case .exec = e, let r = table[id], let img = r.image {
                        batch.images.append((id, r.images.count - 1 + r.imagesDropped, img))
                    }
                    if dirty.count + batch.images.count >= config.flushChanges { try flush() }
                }
            }
        } catch {
            ticker.cancel()
            tracer.stop()
            try? store.endRun(run, nowWallNs: Daemon.wallNs(), reason: "store write failed: \(error)", lostEvents: Int64(lost.ringbufFull))
            throw error
        }
        ticker.cancel()
        await pump.value
        try flush()
        let reason = control.withLock { $0.stopReason } ?? "event stream ended"
        try store.endRun(run, nowWallNs: Daemon.wallNs(), reason: reason, lostEvents: Int64(lost.ringbufFull))
        log.info("stopped", metadata: ["reason": "\(reason)", "events": "\(ingested)", "malformed": "\(malformed)",
                                       "lost": "\(lost.ringbufFull)"])
    }

    public static func wallNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Identities are per boot: the kernel's boot id keys them in the store.
    public static func bootID() -> String {
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown-boot"
    }
}
