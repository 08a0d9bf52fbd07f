import Foundation
import GRDB
import GRDBSQLite
import CRevenantSQLite
import RevenantCore
import RevenantHost

/// Rows to values and back: the column lists read by position, argv bytes, transactions.
extension Store {
    /// Process rows with their boot's id (`boot_id`).
    /// Read by position in `process(from:_:)`: GRDB's lookup of a column by name compares
    /// lowercased names, which was most of an ancestry walk.
    static let processColumnCount: Int32 = 19
    static let processColumns = """
        p.rowid, p.pid, p.start_ns, p.precise, p.parent_pid, p.parent_start_ns, p.comm, p.parent_current_only,
        p.adopted_pid, p.adopted_start_ns, p.seeded, p.images_dropped, p.exit_ns, p.exit_code, p.exit_signal,
        b.id, p.start_wall_ns, p.exit_wall_ns, p.gone_by_wall_ns
        """
    static let selectProcess = "SELECT \(processColumns) FROM process p JOIN boot b ON b.n = p.boot"

    /// The boot's integer key, adding the boot on first sight.
    static func bootKey(_ db: Database, _ id: String, epochNs: Int64) throws -> Int64 {
        try db.cachedStatement(sql: "INSERT INTO boot (id, epoch_ns) VALUES (?, ?) ON CONFLICT (id) DO NOTHING")
            .execute(arguments: [id, epochNs])
        guard let n = try Int64.fetchOne(db.cachedStatement(sql: "SELECT n FROM boot WHERE id = ?"), arguments: [id]) else {
            throw DatabaseError(resultCode: .SQLITE_INTERNAL, message: "boot \(id) vanished")
        }
        return n
    }

    static func fetch(_ db: Database, boot: String, pid: Int32, startNs: Int64) throws -> StoredProcess? {
        // Cached: an ancestry walk runs it once a link, and preparing a statement (GRDB's
        // authorizer included) cost more than running it.
        try Row.fetchOne(db.cachedStatement(sql: "\(selectProcess) WHERE p.boot = (SELECT n FROM boot WHERE id = ?) AND p.pid = ? AND p.start_ns = ?"),
                         arguments: [boot, pid, startNs]).map { try process(from: $0, db) }
    }

    static func process(from row: Row, _ db: Database?) throws -> StoredProcess {
        let rowid: Int64 = row[0]
        let pid: Int32 = row[1]
        let start = UInt64(row[2] as Int64)
        let precise: Bool = row[3]
        let id = precise ? Identity(pid: pid, startNs: start) : Identity(pid: pid, startTicks: start / Identity.nsPerTick)
        var parent: Identity?
        if let pp: Int32 = row[4], let ps: Int64 = row[5] {
            // A parent at exact tick boundary may be a seeded (tick) identity; the key is what matters.
            parent = Identity(pid: pp, startNs: UInt64(ps))
        }
        var r = ProcessRecord(id: id, parent: parent, comm: row[6])
        r.parentIsCurrentOnly = row[7]
        if let ap: Int32 = row[8], let s: Int64 = row[9] {
            r.adoptedBy = Identity(pid: ap, startNs: UInt64(s))
        }
        r.seeded = row[10]
        r.imagesDropped = row[11]
        if let e: Int64 = row[12] {
            r.exitTime = UInt64(e)
            if let c: Int32 = row[13] { r.exitStatus = .exited(c) }
            if let s: Int32 = row[14] { r.exitStatus = .signaled(s, coreDumped: false) }
        }
        guard let db else { return StoredProcess(boot: row[15], record: r, startWallNs: row[16], exitWallNs: row[17], goneByWallNs: row[18]) }
        r.images = try Row.fetchAll(db.cachedStatement(sql: "SELECT \(imageColumns) FROM image i WHERE i.process = ? ORDER BY i.seq"),
                                    arguments: [rowid]).map { image(from: $0, at: 0) }
        return StoredProcess(boot: row[15], record: r, startWallNs: row[16], exitWallNs: row[17], goneByWallNs: row[18])
    }

    /// Read by position in `image(from:at:)`.
    static let imageColumns = """
        i.time_ns, i.exe, i.interpreter, i.exe_dev, i.exe_ino, i.argv, i.argv_truncated, i.comm, i.uid, i.euid, i.gid, i.loginuid,
        i.cgroup_id, i.cgroup, i.cwd, i.enforcement, i.enforcement_rules, i.enforcement_tier, i.enforcement_blocked
        """

    /// `process(from:_:)` without images, from SQLite's columns.
    static func process(raw row: RawStatement.RawRow) -> StoredProcess {
        let pid = Int32(truncatingIfNeeded: row.int(1)), start = UInt64(bitPattern: row.int(2))
        let id = row.int(3) != 0 ? Identity(pid: pid, startNs: start) : Identity(pid: pid, startTicks: start / Identity.nsPerTick)
        var r = ProcessRecord(id: id, parent: row.optInt(4).flatMap { pp in row.optInt(5).map { Identity(pid: Int32(truncatingIfNeeded: pp), startNs: UInt64(bitPattern: $0)) } },
                              comm: row.text(6))
        r.parentIsCurrentOnly = row.int(7) != 0
        if let ap = row.optInt(8), let s = row.optInt(9) { r.adoptedBy = Identity(pid: Int32(truncatingIfNeeded: ap), startNs: UInt64(bitPattern: s)) }
        r.seeded = row.int(10) != 0
        r.imagesDropped = Int(row.int(11))
        if let e = row.optInt(12) {
            r.exitTime = UInt64(bitPattern: e)
            if let c = row.optInt(13) { r.exitStatus = .exited(Int32(truncatingIfNeeded: c)) }
            if let s = row.optInt(14) { r.exitStatus = .signaled(Int32(truncatingIfNeeded: s), coreDumped: false) }
        }
        return StoredProcess(boot: row.text(15), record: r, startWallNs: row.int(16), exitWallNs: row.optInt(17), goneByWallNs: row.optInt(18))
    }

    /// `image(from:at:)` from SQLite's columns.
    static func image(raw i: RawStatement.RawRow, at k: Int32) -> Image {
        var img = Image(time: UInt64(bitPattern: i.int(k)), filename: i.text(k + 1), interpreter: i.optText(k + 2),
                        exeDevice: UInt64(bitPattern: i.int(k + 3)), exeInode: UInt64(bitPattern: i.int(k + 4)),
                        argv: Store.splitArgv(i.blob(k + 5)), argvTruncated: i.int(k + 6) != 0, comm: i.text(k + 7),
                        uid: UInt32(truncatingIfNeeded: i.int(k + 8)), euid: UInt32(truncatingIfNeeded: i.int(k + 9)),
                        gid: UInt32(truncatingIfNeeded: i.int(k + 10)), loginuid: i.optInt(k + 11).map { UInt32(truncatingIfNeeded: $0) },
                        cgroupId: UInt64(bitPattern: i.int(k + 12)), cgroup: i.text(k + 13), cwd: i.optText(k + 14))
        if let message = i.optText(k + 15) {
            let rules = i.optText(k + 16).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
            img.enforcement = Enforcement(rules: rules, tier: i.optText(k + 17).flatMap(EnforcementTier.init(stored:)),
                                          blocked: (i.optInt(k + 18) ?? 0) != 0, message: message)
        }
        return img
    }

    static func image(from i: Row, at k: Int) -> Image {
        let argv: Data = i[k + 5]
        var img = Image(time: UInt64(i[k] as Int64), filename: i[k + 1], interpreter: i[k + 2],
                        exeDevice: UInt64(bitPattern: i[k + 3]), exeInode: UInt64(bitPattern: i[k + 4]),
                        argv: Store.splitArgv([UInt8](argv)), argvTruncated: i[k + 6], comm: i[k + 7],
                        uid: UInt32(i[k + 8] as Int64), euid: UInt32(i[k + 9] as Int64), gid: UInt32(i[k + 10] as Int64),
                        loginuid: (i[k + 11] as Int64?).map { UInt32($0) }, cgroupId: UInt64(bitPattern: i[k + 12]),
                        cgroup: i[k + 13], cwd: i[k + 14])
        if let message: String = i[k + 15] {
            let rules = (i[k + 16] as String?).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
            img.enforcement = Enforcement(rules: rules, tier: (i[k + 17] as String?).flatMap(EnforcementTier.init(stored:)),
                                          blocked: (i[k + 18] as Bool?) ?? false, message: message)
        }
        return img
    }

    static func joinArgv(_ argv: [String]) -> [UInt8] { ArgvBytes.join(argv) }

    static func splitArgv(_ b: [UInt8]) -> [String] { ArgvBytes.split(b) }

    func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do { return try db.read(body) } catch { throw StoreError(path: path, reason: Store.explain(error)) }
    }

    func write<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do { return try db.write(body) } catch { throw StoreError(path: path, reason: Store.explain(error)) }
    }

    static func rulesJSON(_ rules: [String]) -> String {
        (try? JSONEncoder().encode(rules)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    }

    /// The enforcement fields of an image row (nil when no rule matched it).
    static func enforcement(_ row: Row) -> Enforcement? {
        guard let message: String = row["enforcement"] else { return nil }
        let rules = (row["enforcement_rules"] as String?).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
        let tier = (row["enforcement_tier"] as String?).flatMap(EnforcementTier.init(stored:))
        return Enforcement(rules: rules, tier: tier, blocked: (row["enforcement_blocked"] as Bool?) ?? false, message: message)
    }
}
