import Foundation
import Logging
import RevenantCore
import ServiceLifecycle

/// Writes the batches the ingest thread hands over, in order, on a thread of its own, and
/// keeps the store's retention. A batch is written in one transaction: a crash loses at most
/// the batches still queued (at most `capacity`; the ingest waits when that many are queued).
final class StoreWriter: Service, @unchecked Sendable {
    enum Job: Sendable {
        case batch(StoreBatch, lostEvents: Int64)
        /// The run ended: the last job.
        case end(reason: String, lostEvents: Int64)
    }

    static let capacity = 16
    let store: Store
    let run: Int64
    let boot: String
    private let jobs = WorkQueue<Job>(capacity: StoreWriter.capacity)
    private let log: Logger
    private let retentionSeconds: Int64
    private let maxProcesses: Int
    private let retentionEvery: Duration
    /// Told when a write fails, so tracing stops with the reason.
    var onFailure: @Sendable (String) -> Void = { _ in }

    init(store: Store, run: Int64, boot: String, config: Daemon.Config, logger: Logger) {
        self.store = store; self.run = run; self.boot = boot; log = logger
        retentionSeconds = config.retentionSeconds
        maxProcesses = config.maxProcesses
        retentionEvery = .seconds(config.retentionEverySeconds)
    }

    /// From the ingest thread. Waits while `capacity` batches are queued.
    func submit(_ job: Job) { jobs.put(job) }

    func run() async throws {
        try await onOwnThread("revenant-store") { try self.drain() }
        // Done once the ingest's last job is written; the group ends services in its own order.
        try? await gracefulShutdown()
    }

    private func drain() throws {
        var lastRetention = ContinuousClock.now
        while true {
            switch jobs.take() {
            case .batch(let b, let lost):
                do {
                    try store.write(b, run: run, nowWallNs: WallClock.nowNs(), lostEvents: lost)
                    if ContinuousClock.now - lastRetention > retentionEvery {
                        lastRetention = ContinuousClock.now
                        let cutoff = WallClock.nowNs() - retentionSeconds * 1_000_000_000
                        let n = try store.enforceRetention(exitedBeforeWallNs: cutoff, maxProcesses: maxProcesses, currentBoot: boot)
                        if n > 0 { log.info("retention", metadata: ["deleted": "\(n)"]) }
                    }
                } catch {
                    try? store.endRun(run, nowWallNs: WallClock.nowNs(), reason: "store write failed: \(error)", lostEvents: lost)
                    onFailure("store write failed: \(error)")
                    throw error
                }
            case .end(let reason, let lost):
                try store.endRun(run, nowWallNs: WallClock.nowNs(), reason: reason, lostEvents: lost)
                return
            }
        }
    }
}
