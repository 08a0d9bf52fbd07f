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

/// `revenant run`: a `ServiceGroup` of the ingest thread (ring → table → batches), the store
/// writer, the audit sink, the attribution worker and the policy service. `stop()` (SIGTERM,
/// SIGINT) shuts it down gracefully at any moment, start-up included: the ingest drains the
/// ring and hands over its last batch, then the writer and the sink finish what they were given.
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
            // A process that execs is first seen at its exec: no fork record for it.
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
        /// Pin the programs here (bpffs) once the first policy is in force; nil: they end with the daemon.
        public var pinDir: String?
        /// Applied to every command line before it is stored, logged or audited.
        public var redactor = Redactor()
        /// Serves the metrics (bound by the caller, so a taken port fails before anything loads).
        public var metrics: MetricsServer?
        /// Syslog receivers the audit stream is also sent to (what the audit log records).
        public var forward: [SyslogForwarder.Target] = []
        public init() {}
    }

    private let config: Config
    private let log: Logger
    private let group = Mutex<(running: ServiceGroup?, stopAsked: Bool)>((nil, false))

    public init(config: Config, logger: Logger) {
        self.config = config
        self.log = logger
    }

    /// Shuts the daemon down gracefully; asked before `run()` has started its services, they
    /// start and stop at once. Safe from any thread (a signal handler).
    public func stop() {
        let g = group.withLock { s -> ServiceGroup? in
            s.stopAsked = true
            return s.running
        }
        if let g { Task { await g.triggerGracefulShutdown() } }
    }

    /// Runs until `stop()`, or until a service fails (its error is rethrown).
    public func run() async throws {
        // Handled by the services: ignored until their handlers are in place.
        signal(SIGHUP, SIG_IGN)
        signal(SIGUSR1, SIG_IGN)
        let file = config.auditPath.map { AuditLog(opening: $0) }
        if let file, !file.isOpen {
            log.critical("AUDIT LOG UNWRITABLE at start: enforcement continues; records are counted and the gap recorded once it opens",
                         metadata: ["file": "\(file.path)", "error": "\(file.lastError ?? "-")"])
        }
        let worker = AttributionWorker(logger: log)
        let forwarders = config.forward.map { SyslogForwarder(target: $0) }
        for f in forwarders { log.info("audit stream forwarded", metadata: ["to": "\(f.target)"]) }
        let audit = AuditSink(file: file, forwarders: forwarders, worker: worker, logger: log)
        audit.submit(.record(.daemon("start", timeMs: WallClock.nowMs(), detail: "store \(config.dbPath)"), sync: true))
        let clock = BootClock()
        let boot = BootClock.bootID()
        // Opened here, tried again while it fails: tracing and enforcement never wait for it.
        let writer = StoreWriter(config: config, boot: boot, bootEpochNs: clock.bootEpochNs, logger: log)
        let ingest = Ingest(config: config, store: writer.storeAtStart, writer: writer, audit: audit, worker: worker,
                            boot: boot, clock: clock, logger: log)
        writer.onSnapshotNeeded = { ingest.requestSnapshot() }
        // Shut down in reverse: the ingest first, so the others receive everything it saw.
        let members: [any Service] = (config.metrics.map { [$0] } ?? []) + [audit, writer, worker,
                                       PolicyService(path: config.policyPath, ingest: ingest, audit: audit, log: log),
                                       IngestService(ingest: ingest)]
        var groupLog = log
        groupLog.logLevel = .warning
        let services = ServiceGroup(configuration: .init(
            services: members.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                                           failureTerminationBehavior: .gracefullyShutdownGroup) },
            logger: groupLog))
        if group.withLock({ s in s.running = services; return s.stopAsked }) { await services.triggerGracefulShutdown() }
        do {
            try await services.run()
        } catch let e as BPFError {
            throw KernelLoadError(description: e.description)
        }
    }
}
