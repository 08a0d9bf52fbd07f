import ArgumentParser
import Foundation
import RevenantCore
import RevenantQuery
import RevenantDaemon

enum ExportFormat {
    /// One flat object per exec, keys sorted (the form JSONEncoder gave it before it was written
    /// by hand): time, boot, pid, id, parent_pid, parent_id, parent_comm, exe, argv, cwd, uid,
    /// cgroup, seeded, enforcement, exit_time, exit_code, signal.
    static func jsonl(_ r: ExportRow) -> [UInt8] {
        var j = JSONBytes(capacity: 512)
        j.object { j in
            j.field("argv", r.image.argv); j.field("boot", r.boot); j.field("cgroup", r.image.cgroup); j.field("cwd", r.image.cwd)
            j.field("enforcement", r.enforcement?.message); j.field("exe", r.image.filename)
            switch r.exitStatus {
            case .exited(let c): j.field("exit_code", c)
            default: break
            }
            if let x = r.exitWallNs { j.key("exit_time"); j.isoTime(x) }
            j.field("id", r.id.description); j.field("parent_comm", r.parentComm)
            j.field("parent_id", r.parent?.description); j.field("parent_pid", r.parent?.pid); j.field("pid", r.id.pid)
            j.field("seeded", r.seeded)
            if case .signaled(let s, _) = r.exitStatus { j.field("signal", s) }
            j.key("time"); j.isoTime(r.wallNs)
            j.field("uid", r.image.uid)
        }
        return j.bytes
    }

    static func text(_ g: TraceGap) -> String { "trace gap (\(g.kind.rawValue)) until \(Fmt.iso(g.toWallNs)): \(g.detail)" }

    /// A trace gap in csv: its time, and the text in the enforcement column.
    static func csv(_ g: TraceGap) -> String {
        var cols = [String](repeating: "", count: CSVColumn.allCases.count)
        cols[CSVColumn.time.rawValue] = Fmt.iso(g.fromWallNs)
        cols[CSVColumn.enforcement.rawValue] = text(g)
        return cols.map(CSVBytes.slowCell).joined(separator: ",")
    }

    /// The csv columns, in order: `csv(_: ExportRow)` writes them so, and readers find them by name.
    enum CSVColumn: Int, CaseIterable {
        case time, boot, pid, id, parent_pid, parent_id, parent_comm, exe, cmd_line, cwd, uid, cgroup, seeded, enforcement
        case exit_time, exit_code, signal
    }

    static let csvHeader = CSVColumn.allCases.map { "\($0)" }.joined(separator: ",")

    /// The columns of `csvHeader`, each a `CSVBytes` cell.
    static func csv(_ r: ExportRow) -> [UInt8] {
        var c = CSVBytes()
        c.cell(isoTime: r.wallNs); c.cell(r.boot); c.cell(Int64(r.id.pid)); c.cell(r.id.description); c.cell(r.parent.map { Int64($0.pid) })
        c.cell(r.parent?.description); c.cell(r.parentComm); c.cell(r.image.filename); c.cell(r.image.argv.joined(separator: " "))
        c.cell(r.image.cwd); c.cell(Int64(r.image.uid)); c.cell(r.image.cgroup); c.cell(r.seeded ? "1" : "0"); c.cell(r.enforcement?.message)
        c.cell(isoTime: r.exitWallNs)
        var code: Int64?, sig: Int64?
        switch r.exitStatus {
        case .exited(let x): code = Int64(x)
        case .signaled(let x, _): sig = Int64(x)
        case nil: break
        }
        c.cell(code); c.cell(sig)
        return c.bytes
    }

    static func ocsf(_ r: ExportRow) -> [AuditEvent] {
        var p = ProcessRecord(id: r.id, parent: r.parent, comm: r.comm)
        p.images = [r.image]
        p.exitStatus = r.exitStatus
        var ancestry: [ProcessRecord] = []
        if let pid = r.parent {
            var pr = ProcessRecord(id: pid, parent: nil, comm: r.parentComm ?? "?")
            if let a = r.parentArgv { pr.images = [Image(time: 0, filename: a.first ?? "", argv: a, comm: pr.comm)] }
            ancestry = [pr]
        }
        let bootEpochNs = r.wallNs - Int64(r.image.time)
        let e = r.enforcement
        // Built once for the launch, its message and the terminate.
        let process = AuditEvent.process(p, ancestry: ancestry, bootEpochNs: bootEpochNs)
        var out = [AuditEvent.launch(p, ancestry: ancestry, bootEpochNs: bootEpochNs, timeMs: r.wallNs / 1_000_000,
                                     rules: e?.rules ?? [], tier: e?.tier, blocked: e?.blocked ?? false,
                                     message: e?.message ?? "exec " + (process.cmd_line ?? ""), process: process)]
        if r.isLast, let x = r.exitWallNs {
            out.append(.terminate(p, ancestry: ancestry, bootEpochNs: bootEpochNs, timeMs: x / 1_000_000, rules: e?.rules ?? [],
                                  process: process))
        }
        return out
    }
}

extension TimeArgument {
    /// A point in time, or an age (`90s`, `15m`, `2h`, `7d`) counted back from now.
    static func wallNs(_ s: String, flag: String) throws -> Int64 {
        if let secs = duration(s), !s.allSatisfy(\.isNumber) { return Int64((Date().timeIntervalSince1970 - secs) * 1e9) }
        guard let d = parse(s) else { throw Failure("\(flag) \(s): expected ISO 8601, HH:MM[:SS], Unix seconds or an age like 2h") }
        return Int64(d.timeIntervalSince1970 * 1e9)
    }

    /// `300`, `90s`, `15m`, `2h`, `7d` in seconds.
    static func duration(_ s: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        if let u = s.last, let mul = units[u], let n = Double(s.dropLast()), n >= 0 { return n * mul }
        return Double(s).flatMap { $0 >= 0 ? $0 : nil }
    }
}
