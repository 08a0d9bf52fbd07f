import Foundation
import GRDB
import RevenantCore

/// Which execs `revenant export` streams.
public struct ExportFilter: Sendable {
    public var sinceWallNs: Int64?
    public var untilWallNs: Int64?
    public var pid: Int32?
    /// A policy rule's name, as recorded with the enforcement.
    public var rule: String?
    /// Text in the command line or exe path.
    public var match: String?
    public init() {}
}

/// One exec (process image) with its process and fork-time parent, as exported.
public struct ExportRow: Sendable {
    public var boot: String
    public var id: Identity
    public var parent: Identity?
    public var parentComm: String?
    public var parentArgv: [String]?
    public var comm: String
    public var wallNs: Int64
    public var image: Image
    public var enforcement: String?
    public var seeded: Bool
    /// True for the process's latest image: its exit, if any, follows it.
    public var isLast: Bool
    public var exitWallNs: Int64?
    public var exitStatus: ExitStatus?
}

extension Store {
    /// Streams matching execs in time order through a cursor: memory stays constant whatever
    /// the store's size (SQLite sorts in its own bounded temp storage). Returns the row count.
    @discardableResult
    public func export(_ f: ExportFilter, each: (ExportRow) throws -> Void) throws(StoreError) -> Int {
        var conds: [String] = []
        var args: [(any DatabaseValueConvertible)?] = []
        if let s = f.sinceWallNs { conds.append("b.epoch_ns + i.time_ns >= ?"); args.append(s) }
        if let u = f.untilWallNs { conds.append("b.epoch_ns + i.time_ns < ?"); args.append(u) }
        if let p = f.pid { conds.append("p.pid = ?"); args.append(p) }
        if let r = f.rule { conds.append("instr(i.enforcement, ?) > 0"); args.append("\"\(r)\"") }
        if let m = f.match { conds.append("(instr(i.argv, ?) > 0 OR instr(i.exe, ?) > 0)"); args.append(Data(m.utf8)); args.append(m) }
        let sql = """
            SELECT b.id AS boot_id, p.pid, p.start_ns, p.precise, p.parent_pid, p.parent_start_ns, p.comm AS pcomm, p.seeded,
                   p.exit_wall_ns, p.exit_code, p.exit_signal, b.epoch_ns + i.time_ns AS wall_ns, i.*,
                   i.seq = (SELECT max(seq) FROM image WHERE process = p.rowid) AS is_last,
                   pp.comm AS parent_comm,
                   (SELECT argv FROM image WHERE process = pp.rowid ORDER BY seq DESC LIMIT 1) AS parent_argv
            FROM image i JOIN process p ON p.rowid = i.process JOIN boot b ON b.n = p.boot
            LEFT JOIN process pp ON pp.boot = p.boot AND pp.pid = p.parent_pid AND pp.start_ns = p.parent_start_ns
            \(conds.isEmpty ? "" : "WHERE " + conds.joined(separator: " AND "))
            ORDER BY wall_ns, p.rowid, i.seq
            """
        return try readRows(sql: sql, arguments: StatementArguments(args)) { row in
            let precise: Bool = row["precise"]
            let pid: Int32 = row["pid"]
            let start = UInt64(row["start_ns"] as Int64)
            let id = precise ? Identity(pid: pid, startNs: start) : Identity(pid: pid, startTicks: start / Identity.nsPerTick)
            var parent: Identity?
            if let pp: Int32 = row["parent_pid"], let ps: Int64 = row["parent_start_ns"] { parent = Identity(pid: pp, startNs: UInt64(ps)) }
            let argv: Data = row["argv"]
            let img = Image(time: UInt64(row["time_ns"] as Int64), filename: row["exe"], interpreter: row["interpreter"],
                            argv: Store.splitArgv([UInt8](argv)), argvTruncated: row["argv_truncated"], comm: row["comm"],
                            uid: UInt32(row["uid"] as Int64), euid: UInt32(row["euid"] as Int64), gid: UInt32(row["gid"] as Int64),
                            cgroup: row["cgroup"], cwd: row["cwd"])
            var status: ExitStatus?
            if let c: Int32 = row["exit_code"] { status = .exited(c) }
            if let s: Int32 = row["exit_signal"] { status = .signaled(s, coreDumped: false) }
            try each(ExportRow(boot: row["boot_id"], id: id, parent: parent, parentComm: row["parent_comm"],
                               parentArgv: (row["parent_argv"] as Data?).map { Store.splitArgv([UInt8]($0)) },
                               comm: row["pcomm"], wallNs: row["wall_ns"], image: img, enforcement: row["enforcement"],
                               seeded: row["seeded"], isLast: row["is_last"], exitWallNs: row["exit_wall_ns"], exitStatus: status))
        }
    }
}
