import Logging
import RevenantHost
import RevenantOutputs
import RevenantCore
import RevenantStore

/// Turns the watcher's raw changes into recorded ones: each with its writer as the process
/// table knows it, one change per save, and the journal told at most ten a second.
struct ConfigChangeRecorder {
    private var last: ConfigChange?
    /// Per-change journal lines in the current second, and those not logged one by one.
    private var logged = (second: Int64(0), lines: 0, quiet: 0)

    /// Records `raws` (and `dropped` as a gap) into `batch`; `table` files the writers it names.
    mutating func record(_ raws: [ConfigWatch.Raw], dropped: Int, table: inout ProcessTable, redactor: Redactor,
                         into batch: inout StoreBatch, report: DaemonReport) {
        if dropped > 0 {
            let now = WallClock.nowNs()
            let detail = "\(dropped) configuration changes dropped (\(ConfigInbox.limit) waiting to be recorded): their writers are not known"
            batch.gaps.append(TraceGap(kind: .configChangesLost, fromWallNs: now, toWallNs: now, lost: Int64(dropped), detail: detail))
            report.daemon("configuration changes lost", detail: detail, level: .warning, severity: 4, sync: false, timeMs: now / 1_000_000,
                          metadata: ["dropped": "\(dropped)"])
        }
        for raw in raws {
            if raw.lost {
                let detail = "configuration changes dropped (fanotify queue full): their writers are not known"
                batch.gaps.append(TraceGap(kind: .configChangesLost, fromWallNs: raw.timeWallNs, toWallNs: raw.timeWallNs, lost: 1, detail: detail))
                report.daemon("configuration changes lost", detail: detail, journal: "configuration changes lost: the fanotify queue overflowed",
                              level: .warning, severity: 4, sync: false, timeMs: raw.timeWallNs / 1_000_000, metadata: [:])
                continue
            }
            // An editor's or a tool's several events for one save are one change.
            if let last, last.path == raw.path, last.kind == raw.kind, last.writerPid == raw.pid,
               raw.timeWallNs - last.timeWallNs < 1_000_000_000 { continue }
            table.fileParked(pid: raw.pid)
            let c = change(raw, table: table, redactor: redactor)
            last = c
            batch.configChanges.append(c)
            DaemonMetrics.shared.configChange(c.kind.rawValue)
            report.audit.submit(.record(.fileActivity(c), sync: false))
            journal(c, log: report.log)
        }
    }

    private func change(_ raw: ConfigWatch.Raw, table: ProcessTable, redactor: Redactor) -> ConfigChange {
        let r = table.latest(pid: raw.pid)
        let command = r.map { r in r.image.map { redactor.apply($0.argv).joined(separator: " ") } ?? r.name } ?? "pid \(raw.pid)"
        return ConfigChange(path: raw.path, kind: raw.kind, timeWallNs: raw.timeWallNs, writerPid: raw.pid, writerId: r?.id.description,
                            command: command, ancestry: r.map { Lineage.chain(table, of: $0.id) } ?? "?",
                            loginuid: r?.image?.loginuid, uid: r?.image?.uid, session: r.flatMap { Lineage.session(table, of: $0.id) })
    }

    /// A package install writes hundreds of files: ten lines a second, then a count.
    private mutating func journal(_ c: ConfigChange, log: Logger) {
        let second = c.timeWallNs / 1_000_000_000
        if second != logged.second {
            if logged.quiet > 0 {
                log.info("configuration changes not logged one by one (the audit log and the store have each)", metadata: ["count": "\(logged.quiet)"])
            }
            logged = (second, 0, 0)
        }
        if logged.lines < 10 {
            logged.lines += 1
            log.info("configuration \(c.kind.rawValue)", metadata: ["path": "\(c.path)", "by": "\(c.command)", "ancestry": "\(c.ancestry)"])
        } else {
            logged.quiet += 1
        }
    }
}
