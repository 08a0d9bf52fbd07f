import Logging
import RevenantCore
import RevenantHost
import RevenantOutputs

/// The one place an event the daemon tells goes to the journal, the audit log and the metrics
/// together, so the three never disagree on what happened.
struct DaemonReport {
    let log: Logger
    let audit: AuditSink

    /// A daemon event (policy loaded, events lost…): a journal line (`journal`, else `what`)
    /// and an audit record.
    func daemon(_ what: String, detail: String, journal: String? = nil, level: Logger.Level = .notice, severity: Int = 1,
                sync: Bool = true, timeMs: Int64 = WallClock.nowMs(), metadata: Logger.Metadata = [:]) {
        log.log(level: level, "\(journal ?? what)", metadata: metadata.isEmpty ? ["detail": "\(detail)"] : metadata)
        audit.submit(.record(.daemon(what, timeMs: timeMs, detail: detail, severity: severity), sync: sync))
    }

    /// An enforcement: counted, a launch record (when the process is known), a journal line
    /// (`journal`, else the record's message).
    func enforced(_ done: Enforcement, launch: AuditEvent?, respawn: AttributionWorker.Request?, journal: String? = nil,
                  metadata: Logger.Metadata) {
        DaemonMetrics.shared.enforced(rules: done.rules, tier: done.tier?.rawValue, blocked: done.blocked)
        if let launch { audit.submit(.launch(launch, sync: done.blocked, respawn: respawn)) }
        var m = metadata
        m["rule"] = "\(done.rules.joined(separator: ","))"
        m["tier"] = "\(done.tier?.rawValue ?? "none")"
        log.log(level: done.tier == nil ? .info : .warning, "\(journal ?? done.message)", metadata: m)
    }
}
