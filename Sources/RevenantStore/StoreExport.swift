import Foundation
import GRDB
import RevenantCore
import RevenantHost

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
    public var enforcement: Enforcement?
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
        if let r = f.rule { conds.append("EXISTS (SELECT 1 FROM json_each(i.enforcement_rules) WHERE value = ?)"); args.append(r) }
        if let m = f.match { conds.append("(instr(i.argv, ?) > 0 OR instr(i.exe, ?) > 0)"); args.append(Data(m.utf8)); args.append(m) }
        let sql = """
            SELECT b.id AS boot_id, p.pid, p.start_ns, p.precise, p.parent_pid, p.parent_start_ns, p.comm AS pcomm, p.seeded,
                   p.exit_wall_ns, p.exit_code, p.exit_signal, b.epoch_ns + i.time_ns AS wall_ns, \(Store.imageColumns),
                   i.seq = (SELECT max(seq) FROM image WHERE process = p.rowid) AS is_last,
                   pp.comm AS parent_comm,
                   (SELECT argv FROM image WHERE process = pp.rowid ORDER BY seq DESC LIMIT 1) AS parent_argv
            FROM image i JOIN process p ON p.rowid = i.process JOIN boot b ON b.n = p.boot
            LEFT JOIN process pp ON pp.boot = p.boot AND pp.pid = p.parent_pid AND pp.start_ns = p.parent_start_ns
            \(conds.isEmpty ? "" : "WHERE " + conds.joined(separator: " AND "))
            ORDER BY wall_ns, p.rowid, i.seq
            """
        return try read { db in
            var leaves = try LeafExport(db, f)
            var n = 0
            let cursor = try Row.fetchCursor(db, sql: sql, arguments: StatementArguments(args))
            while let row = try cursor.next() {
                let r = Store.exportRow(row)
                n += try leaves.emit(through: r.wallNs, each)
                try each(r)
                n += 1
            }
            return n + (try leaves.emit(through: .max, each))
        }
    }

    /// By column position (the select list above): by name, GRDB lowercases every column name.
    static func exportRow(_ row: Row) -> ExportRow {
        let pid: Int32 = row[1]
        let start = UInt64(row[2] as Int64)
        let id = (row[3] as Bool) ? Identity(pid: pid, startNs: start) : Identity(pid: pid, startTicks: start / Identity.nsPerTick)
        var parent: Identity?
        if let pp: Int32 = row[4], let ps: Int64 = row[5] { parent = Identity(pid: pp, startNs: UInt64(ps)) }
        var status: ExitStatus?
        if let c: Int32 = row[9] { status = .exited(c) }
        if let s: Int32 = row[10] { status = .signaled(s, coreDumped: false) }
        var img = Store.image(from: row, at: 12)
        let enforcement = img.enforcement
        img.enforcement = nil
        return ExportRow(boot: row[0], id: id, parent: parent, parentComm: row[32],
                         parentArgv: (row[33] as Data?).map { Store.splitArgv([UInt8]($0)) },
                         comm: row[6], wallNs: row[11], image: img, enforcement: enforcement,
                         seeded: row[7], isLast: row[31], exitWallNs: row[8], exitStatus: status)
    }
}

/// The leaf batches' execs, merged into the export's time order. A leaf was born and ended
/// between two flushes, so batches ordered by their earliest start hold only a flush interval
/// or two of execs pending at any time: memory stays bounded as for the rows.
private struct LeafExport {
    struct Batch { var boot: Int64; var bootID: String; var epoch: Int64; var first: Int64; var records: [UInt8] }
    let db: Database
    let filter: ExportFilter
    let batches: RowCursor
    var next: Batch?
    var exhausted = false
    /// Latest first: the earliest is at the end.
    var pending: [ExportRow] = []
    var parents: [Identity: (comm: String, argv: [String]?)?] = [:]

    init(_ db: Database, _ f: ExportFilter) throws {
        self.db = db; filter = f
        var conds = ["1"]
        var args: [(any DatabaseValueConvertible)?] = []
        if let s = f.sinceWallNs { conds.append("l.last_wall_ns >= ?"); args.append(s) }
        if let u = f.untilWallNs { conds.append("l.first_wall_ns < ?"); args.append(u) }
        if let p = f.pid { conds.append("instr(l.pids, ?) > 0"); args.append(",\(p),") }
        if let m = f.match { conds.append("instr(l.keys, ?) > 0"); args.append(Data(m.utf8)) }
        batches = try Row.fetchCursor(db, sql: """
            SELECT l.boot, b.id AS boot_id, b.epoch_ns, l.first_wall_ns, l.records FROM leaf_batch l JOIN boot b ON b.n = l.boot
            WHERE \(conds.joined(separator: " AND ")) ORDER BY l.first_wall_ns
            """, arguments: StatementArguments(args))
    }

    private mutating func peek() throws -> Batch? {
        if next == nil, !exhausted {
            if let r = try batches.next() {
                let data: Data = r["records"]
                next = Batch(boot: r["boot"], bootID: r["boot_id"], epoch: r["epoch_ns"], first: r["first_wall_ns"], records: [UInt8](data))
            } else {
                exhausted = true
            }
        }
        return next
    }

    /// Emits, in time order, every pending leaf exec at or before `t`. Returns how many.
    mutating func emit(through t: Int64, _ each: (ExportRow) throws -> Void) throws -> Int {
        var n = 0
        while true {
            // No batch not yet read may start before what is emitted next.
            if let b = try peek(), b.first <= min(t, pending.last?.wallNs ?? t) {
                next = nil
                try load(b)
                continue
            }
            guard let p = pending.last, p.wallNs <= t else { return n }
            pending.removeLast()
            try each(p)
            n += 1
        }
    }

    private mutating func load(_ b: Batch) throws {
        let needle = filter.match.map { Array($0.utf8) }
        for r in try LeafCodec.decode(b.records) {
            if let p = filter.pid, r.id.pid != p { continue }
            for (k, img) in r.images.enumerated() {
                let wall = b.epoch + Int64(img.time)
                if let s = filter.sinceWallNs, wall < s { continue }
                if let u = filter.untilWallNs, wall >= u { continue }
                if let rule = filter.rule, !(img.enforcement?.rules.contains(rule) ?? false) { continue }
                if let needle, !Store.imageContains(img, needle) { continue }
                let parent = try r.parent.flatMap { try parentOf($0, boot: b.boot) }
                pending.append(ExportRow(boot: b.bootID, id: r.id, parent: r.parent, parentComm: parent?.comm, parentArgv: parent?.argv,
                                         comm: r.name, wallNs: wall, image: img, enforcement: img.enforcement, seeded: false,
                                         isLast: k == r.images.count - 1, exitWallNs: r.exitTime.map { b.epoch + Int64($0) },
                                         exitStatus: r.exitStatus))
            }
        }
        pending.sort { $0.wallNs > $1.wallNs }
    }

    /// A leaf's parent is a row (a leaf forks nothing); most leaves share a few parents.
    private mutating func parentOf(_ id: Identity, boot: Int64) throws -> (comm: String, argv: [String]?)? {
        if let known = parents[id] { return known }
        // Cached: preparing it (GRDB's authorizer included) cost more than running it, once a parent.
        let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT p.comm, (SELECT argv FROM image WHERE process = p.rowid ORDER BY seq DESC LIMIT 1) AS argv
            FROM process p WHERE p.boot = ? AND p.pid = ? AND p.start_ns = ?
            """), arguments: [boot, id.pid, Int64(id.startNs)])
        let found = row.map { r in (comm: r[0] as String, argv: (r[1] as Data?).map { Store.splitArgv([UInt8]($0)) }) }
        if parents.count > 4096 { parents.removeAll(keepingCapacity: true) }
        parents[id] = .some(found)
        return found
    }
}
