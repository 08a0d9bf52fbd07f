import Foundation
import Logging
import RevenantCore
import RevenantOutputs
import RevenantQuery
import RevenantStore
import RevenantKernel
import RevenantHost
import ServiceLifecycle

/// Writes audit records in the order the ingest thread saw the events, on a thread of its own.
/// A launch that asks for attribution waits here (at most the worker's time bound) for the
/// answer, so the finding and the launch still precede every later record.
final class AuditSink: Service, @unchecked Sendable {
    enum Entry: Sendable {
        case record(AuditEvent, sync: Bool)
        /// A matched launch; `respawn` says what to ask the attribution worker.
        case launch(AuditEvent, sync: Bool, respawn: AttributionWorker.Request?)
        /// fsync what was written without `sync` (once a flush).
        case sync
        case close
    }

    private let entries = WorkQueue<Entry>(capacity: 4096)
    private let file: AuditLog?
    private let forwarders: [SyslogForwarder]
    private let worker: AttributionWorker
    private let log: Logger
    private var failures = 0

    init(file: AuditLog?, forwarders: [SyslogForwarder] = [], worker: AttributionWorker, logger: Logger) {
        self.file = file; self.forwarders = forwarders; self.worker = worker; log = logger
    }

    func submit(_ e: Entry) { entries.put(e) }

    func run() async throws {
        try await onOwnThread("revenant-audit") { self.drain() }
        // Done once the ingest closed it; the group ends services in its own order.
        try? await gracefulShutdown()
    }

    private func drain() {
        while true {
            switch entries.take() {
            case .record(let e, let sync):
                write(e, sync: sync)
            case .launch(var e, let sync, let request):
                if let request, let answer = worker.attribute(request) {
                    if let finding = answer.finding { write(finding, sync: true) }
                    e.revenant.respawned_by = answer.respawn
                }
                write(e, sync: sync)
            case .sync:
                // Retried at every flush while failing, so the gap is on record without waiting for the next event.
                if failures > 0, let file, let lost = try? file.recordGap() {
                    log.notice("audit log writable again", metadata: ["lost_records": "\(lost)", "file": "\(file.path)"])
                    failures = 0
                }
                file?.syncIfDirty()
            case .close:
                file?.close()
                for f in forwarders { f.drain(seconds: 2) }
                return
            }
        }
    }

    /// A write failure never stops enforcement: it is logged loudly (the first, then every
    /// 1,000th), and the log records the gap once it is writable again.
    private func write(_ e: AuditEvent, sync: Bool) {
        guard let file else { return }
        do {
            let written = try file.append(e, sync: sync)
            for f in forwarders { f.send(line: written.line, event: written.event) }
            if failures > 0 {
                log.notice("audit log writable again", metadata: ["lost_records": "\(failures)", "file": "\(file.path)"])
                failures = 0
            }
        } catch {
            failures += 1
            DaemonMetrics.shared.auditFailure()
            if failures == 1 || failures % 1000 == 0 {
                log.critical("AUDIT LOG WRITE FAILED: records are being lost; enforcement continues",
                             metadata: ["error": "\(error)", "lost_records": "\(failures)"])
            }
        }
    }
}
