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
/// This class is what other threads touch (stop, flush, a policy offered, a configuration
/// change seen); everything the ring thread alone touches is the `RingLoop` value it owns.
final class Ingest: Sendable {
    let config: Daemon.Config
    let log: Logger
    /// The store as opened at start (nil when it could not be): read once, at the seed.
    let store: Store?
    let writer: StoreWriter
    let audit: AuditSink
    let worker: AttributionWorker
    let boot: String
    let clock: BootClock

    struct Control {
        var tracer: Tracer?
        var stopReason: String?
        var policy: (Policy, path: String)?
    }
    let control = Mutex(Control())
    let policyOffered = Atomic<Bool>(false)
    /// SIGUSR1 (`who-spawned` on a process younger than the last flush): drain and flush now.
    let flushRequested = Atomic<Bool>(false)
    /// The store lost changes or was replaced: the next batch carries every live process.
    let snapshotRequested = Atomic<Bool>(false)
    /// A policy executable's file changed: its rules are resolved again.
    let exeChanged = Atomic<Bool>(false)
    /// Configuration changes the watcher saw, for the ring thread.
    let configInbox = ConfigInbox()

    init(config: Daemon.Config, store: Store?, writer: StoreWriter, audit: AuditSink, worker: AttributionWorker,
         boot: String, clock: BootClock, logger: Logger) {
        self.config = config; self.store = store; self.writer = writer; self.audit = audit; self.worker = worker
        self.boot = boot; self.clock = clock; log = logger
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

    /// From the configuration watcher's thread.
    func configurationChanged(_ raw: ConfigWatch.Raw) {
        if configInbox.put(raw) { control.withLock { $0.tracer }?.wake() }
    }

    /// From the executable watcher's thread: a policy executable was replaced.
    func executableChanged() {
        exeChanged.store(true, ordering: .releasing)
        control.withLock { $0.tracer }?.wake()
    }

    /// Runs the ring thread until `stop(reason:)`; its state lives and dies on that thread.
    func serve() throws {
        var ring = RingLoop(self)
        try ring.serve()
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
