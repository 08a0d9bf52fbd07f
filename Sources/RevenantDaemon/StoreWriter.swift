import Foundation
import Logging
import RevenantCore
import RevenantOutputs
import RevenantQuery
import RevenantStore
import RevenantKernel
import RevenantHost
import ServiceLifecycle

/// Writes the batches the ingest thread hands over, in order, on a thread of its own, and
/// keeps the store's retention. A batch is written in one transaction.
///
/// Tracing and enforcement never wait for the store: when it cannot be opened or written (a
/// full or read-only filesystem, a removed file), batches are kept in memory, oldest dropped
/// beyond `keptWhileUnwritable`, and the store is tried again every `retryEvery`. Once it
/// takes writes again the kept batches go in, followed by a gap record of what was lost, and
/// the ingest is asked for a snapshot of the live processes.
final class StoreWriter: Service, @unchecked Sendable {
    enum Job: Sendable {
        /// The processes /proc showed at start; `running` marks what an earlier run left open.
        case seed(StoreBatch, running: [Identity], atWallNs: Int64)
        case batch(StoreBatch, lostEvents: Int64)
        /// The run ended: the last job.
        case end(reason: String, lostEvents: Int64)
    }

    static let capacity = 16
    /// Batches kept in memory while the store is unwritable: at a flush every 2 s, two
    /// minutes of a quiet host; at most 256 × 2,048 process changes.
    static let keptWhileUnwritable = 256
    static let retryEvery: Duration = .seconds(5)

    let path: String
    let boot: String
    let bootEpochNs: Int64
    let version: String
    private let jobs = WorkQueue<Job>(capacity: StoreWriter.capacity)
    private let log: Logger
    private let retentionSeconds: Int64
    private let maxProcesses: Int
    private let retentionEvery: Duration

    // Writer thread only, after init.
    private var store: Store?
    private var run: Int64?
    private var kept: [Job] = []
    private var outage: (sinceWallNs: Int64, reason: String, dropped: Int64)?
    private var lastAttempt = ContinuousClock.now
    private var lastLost: Int64 = 0
    /// Asked when changes were lost or the store was replaced: the ingest re-sends every live process.
    var onSnapshotNeeded: @Sendable () -> Void = {}

    init(config: Daemon.Config, boot: String, bootEpochNs: Int64, logger: Logger) {
        path = config.dbPath; self.boot = boot; self.bootEpochNs = bootEpochNs; version = config.version; log = logger
        retentionSeconds = config.retentionSeconds
        maxProcesses = config.maxProcesses
        retentionEvery = .seconds(config.retentionEverySeconds)
        _ = open(reason: "at start")
        storeAtStart = store
    }

    /// The store opened at start, for the ingest's one read of an earlier run's records.
    private(set) var storeAtStart: Store?

    /// From the ingest thread. Waits while `capacity` batches are queued.
    func submit(_ job: Job) { jobs.put(job) }

    func run() async throws {
        try await onOwnThread("revenant-store") { self.drain() }
        // Done once the ingest's last job is written; the group ends services in its own order.
        try? await gracefulShutdown()
    }

    private func drain() {
        var lastRetention = ContinuousClock.now
        while true {
            let job = jobs.take()
            if case .end(let reason, let lost) = job {
                attempt(force: true)
                if let store, let run, kept.isEmpty {
                    do { try store.endRun(run, nowWallNs: WallClock.nowNs(), reason: reason, lostEvents: lost) } catch {
                        log.critical("store: the run's end could not be recorded", metadata: ["error": "\(error)"])
                    }
                } else {
                    log.critical("STORE UNWRITABLE AT STOP: \(kept.count) batches never reached it", metadata: [
                        "db": "\(path)", "changes": "\(kept.reduce(0) { $0 + StoreWriter.changes($1) })"])
                }
                return
            }
            keep(job)
            attempt(force: false)
            if outage == nil, let store, ContinuousClock.now - lastRetention > retentionEvery {
                lastRetention = ContinuousClock.now
                let cutoff = WallClock.nowNs() - retentionSeconds * 1_000_000_000
                do {
                    // One transaction: a pass over a big store is told while it runs, every 5 s.
                    let began = ContinuousClock.now
                    let ticker = RetentionTicker(log: log, began: began)
                    let n = try store.enforceRetention(exitedBeforeWallNs: cutoff, maxProcesses: maxProcesses, currentBoot: boot)
                    ticker.done()
                    let took = ContinuousClock.now - began
                    if n > 0 || took > .seconds(1) {
                        log.info("retention", metadata: ["deleted": "\(n)", "seconds": "\(took.components.seconds)"])
                    }
                } catch {
                    log.error("retention failed; tried again in \(retentionEvery)", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    private func keep(_ job: Job) {
        kept.append(job)
        guard kept.count > StoreWriter.keptWhileUnwritable else { return }
        let dropped = kept.removeFirst()
        outage?.dropped += StoreWriter.changes(dropped)
    }

    static func changes(_ job: Job) -> Int64 {
        switch job {
        case .seed(let b, _, _), .batch(let b, _): Int64(b.changes)
        case .end: 0
        }
    }

    /// Writes what is kept, oldest first; during an outage at most once a `retryEvery`.
    private func attempt(force: Bool) {
        if outage != nil, !force, ContinuousClock.now - lastAttempt < StoreWriter.retryEvery { return }
        lastAttempt = ContinuousClock.now
        if let s = store, s.fileReplaced {
            store = nil
            failed("the store file was removed or replaced: reopening \(path)", error: nil)
            onSnapshotNeeded()
        }
        if store == nil, !open(reason: "again") { return }
        guard let store, let run else { return }
        while let job = kept.first {
            do {
                switch job {
                case .seed(let b, let running, let at):
                    try store.write(b, run: run, nowWallNs: WallClock.nowNs())
                    // What an earlier run on this boot left running and /proc no longer shows ended unseen.
                    let gone = try store.markGone(boot: boot, running: running, goneByWallNs: at)
                    if gone > 0 { log.info("ended while not traced", metadata: ["processes": "\(gone)"]) }
                case .batch(let b, let lost):
                    let t0 = ContinuousClock.now
                    try store.write(b, run: run, nowWallNs: WallClock.nowNs(), lostEvents: lost)
                    let took = ContinuousClock.now - t0
                    DaemonMetrics.shared.storeWritten(seconds: Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18,
                                                      bytes: store.fileBytes())
                    lastLost = lost
                case .end: break
                }
            } catch {
                DaemonMetrics.shared.storeFailure()
                failed("store write failed", error: error)
                return
            }
            kept.removeFirst()
        }
        guard let o = outage else { return }
        let now = WallClock.nowNs()
        let gap = TraceGap(kind: .storeUnwritable, fromWallNs: o.sinceWallNs, toWallNs: now, lost: o.dropped,
                           detail: "\(o.reason); \(o.dropped) process changes not written")
        var b = StoreBatch(boot: boot, bootEpochNs: bootEpochNs)
        b.gaps = [gap]
        do { try store.write(b, run: run, nowWallNs: now, lostEvents: lastLost) } catch {
            failed("store write failed", error: error)
            return
        }
        outage = nil
        log.notice("store writable again", metadata: ["db": "\(path)", "unwritable_s": "\((now - o.sinceWallNs) / 1_000_000_000)",
                                                     "changes_lost": "\(o.dropped)"])
        if o.dropped > 0 { onSnapshotNeeded() }
    }

    /// Opens the store and begins this run in it.
    private func open(reason: String) -> Bool {
        do {
            let s = try Store(path: path)
            run = try s.beginRun(boot: boot, bootEpochNs: bootEpochNs, version: version, nowWallNs: WallClock.nowNs())
            store = s
            log.info("store opened", metadata: ["db": "\(path)", "run": "\(run!)", "boot": "\(boot)", "when": "\(reason)"])
            return true
        } catch {
            failed("cannot open the store", error: error)
            return false
        }
    }

    private func failed(_ what: String, error: (any Error)?) {
        guard outage == nil else { return }
        outage = (WallClock.nowNs(), what + (error.map { ": \($0)" } ?? ""), 0)
        log.critical("STORE UNWRITABLE: \(what); tracing and enforcement continue, history is kept in memory and written when it can be", metadata: [
            "db": "\(path)", "error": "\(error.map { "\($0)" } ?? "-")", "kept_batches_max": "\(StoreWriter.keptWhileUnwritable)",
            "retry_every": "\(StoreWriter.retryEvery)"])
    }
}

/// Logs "retention pass running" every 5 s until `done()`: one long transaction otherwise says
/// nothing until it ends.
final class RetentionTicker: Sendable {
    private let finished = DispatchSemaphore(value: 0)

    init(log: Logger, began: ContinuousClock.Instant, every: Duration = .seconds(5)) {
        let finished = finished
        Thread.detachNewThread {
            while finished.wait(timeout: .now() + .milliseconds(Int(every.components.seconds * 1000))) == .timedOut {
                log.notice("retention pass running", metadata: ["seconds": "\((ContinuousClock.now - began).components.seconds)"])
            }
        }
    }

    func done() { finished.signal() }
}
