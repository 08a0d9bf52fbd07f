import Foundation
import GRDB
import GRDBSQLite
import CRevenantSQLite
import RevenantCore
import RevenantHost

/// Searching by program or text: rows and leaf batches alike.
extension Store {
    /// Processes that ran exactly this command line (any image), newest first: the last written
    /// ones, read backwards along the argv index (whose entries for one command line are in row
    /// order), so a command line run many times costs no more than one run a few times.
    public func instances(argv: [String], limit: Int = 500) throws(StoreError) -> [StoredProcess] {
        try instances(column: "argv", Data(Store.joinArgv(argv)), limit: limit) { db in try Store.leaves(db, argv: argv, limit: limit) }
    }

    /// Rows whose image has `column` = `value` (an indexed column), newest first, with `leaves`.
    func instances(column: String, _ value: some DatabaseValueConvertible, limit: Int,
                           leaves: (Database) throws -> [StoredProcess]) throws(StoreError) -> [StoredProcess] {
        try read { db in
            let rows = try Row.fetchAll(db, sql: """
                \(Store.selectProcess) WHERE p.rowid IN (
                    SELECT process FROM image WHERE \(column) = ? GROUP BY process ORDER BY process DESC LIMIT ?)
                ORDER BY p.start_wall_ns DESC LIMIT ?
                """, arguments: [value, limit * 2, limit])
            return Store.newestFirst(try rows.map { try Store.process(from: $0, db) }, try leaves(db), limit: limit)
        }
    }

    /// How many processes ran exactly this command line.
    public func instanceCount(argv: [String]) throws(StoreError) -> Int {
        try read { db in
            try (Int.fetchOne(db, sql: "SELECT count(DISTINCT process) FROM image WHERE argv = ?",
                              arguments: [Data(Store.joinArgv(argv))]) ?? 0)
                + Store.leafCount(db, argv: argv)
        }
    }

    /// Processes that ran this program (any arguments), newest first.
    public func instances(program: Program, limit: Int = 500) throws(StoreError) -> [StoredProcess] {
        try instances(column: "program", program.key, limit: limit) { db in try Store.leaves(db, program: program, limit: limit) }
    }

    /// The newest processes that ran `program` (any arguments), newest first, at most `limit`,
    /// as references: a stored row is read in full only when `processes(_:)` asks for it.
    public func instanceRefs(program: Program, limit: Int) throws(StoreError) -> [InstanceRef] {
        try read { db in
            // Along the program index, newest row first; rows are written about in start order,
            // so twice the limit are read and sorted with the leaves.
            let st = try db.cachedStatement(sql: """
                SELECT i.process, p.pid, p.start_ns, p.precise, p.start_wall_ns, i.argv FROM image i JOIN process p ON p.rowid = i.process
                WHERE i.program = ? ORDER BY i.process DESC LIMIT ?
                """)
            var refs: [InstanceRef] = []
            var last: Int64?
            var lastArgv: (bytes: [UInt8], argv: [String])?
            st.arguments = [program.key, limit * 2]
            try RawStatement(st, db).rows { r in
                let rowid = r.int(0)
                guard rowid != last else { return true }
                last = rowid
                let pid = Int32(truncatingIfNeeded: r.int(1)), start = UInt64(bitPattern: r.int(2))
                // Split once per run of the same command line.
                let bytes = r.blob(5)
                let argv = lastArgv.flatMap { $0.bytes == bytes ? $0.argv : nil } ?? Store.splitArgv(bytes)
                lastArgv = (bytes, argv)
                refs.append(InstanceRef(id: r.int(3) != 0 ? Identity(pid: pid, startNs: start) : Identity(pid: pid, startTicks: start / Identity.nsPerTick),
                                        startWallNs: r.int(4), argv: argv, row: rowid, leaf: nil))
                return true
            }
            let leaves = try Store.leaves(db, program: program, limit: limit).map {
                InstanceRef(id: $0.record.id, startWallNs: $0.startWallNs, argv: $0.record.image?.argv, row: nil, leaf: $0)
            }
            return Array((refs + leaves).sorted { $0.startWallNs > $1.startWallNs }.prefix(limit))
        }
    }

    /// The processes of these references, in their order.
    public func processes(_ refs: [InstanceRef]) throws(StoreError) -> [StoredProcess] {
        try read { db in
            let st = try db.cachedStatement(sql: """
                SELECT \(Store.processColumns), \(Store.imageColumns)
                FROM process p JOIN boot b ON b.n = p.boot LEFT JOIN image i ON i.process = p.rowid WHERE p.rowid = ? ORDER BY i.seq
                """)
            return try refs.compactMap { ref in
                if let l = ref.leaf { return l }
                st.arguments = [ref.row]
                var p: StoredProcess?
                try RawStatement(st, db).rows { row in
                    if p == nil { p = Store.process(raw: row) }
                    if !row.isNull(Store.processColumnCount) { p?.record.images.append(Store.image(raw: row, at: Store.processColumnCount)) }
                    return true
                }
                return p
            }
        }
    }

    /// How many processes ran this program (any arguments): the stored rows, plus the leaves that
    /// ran one of these command lines, from the batches' key counts (newest batch first, none
    /// decoded); counting stops past `cap` (`capped`: there are more).
    public func instanceCount(program: Program, commandLines: Set<[String]>, cap: Int) throws(StoreError) -> (count: Int, capped: Bool) {
        try read { db in
            let rows = try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM (SELECT DISTINCT process FROM image WHERE program = ? LIMIT ?)"),
                                        arguments: [program.key, cap + 1]) ?? 0
            guard rows <= cap else { return (cap, true) }
            let leaves = try Store.leafCount(db, argvs: commandLines, upTo: cap - rows + 1)
            return (min(rows + leaves, cap), rows + leaves > cap)
        }
    }

    /// How many processes ran this program.
    public func instanceCount(program: Program) throws(StoreError) -> Int {
        try read { db in
            try (Int.fetchOne(db, sql: "SELECT count(DISTINCT process) FROM image WHERE program = ?",
                              arguments: [program.key]) ?? 0)
                + Store.leafCount(db, program: program)
        }
    }

    /// Processes whose exe or command line contains `text`, newest first. Past
    /// `commandLinesUpTo` distinct command lines every image row is searched instead.
    public func matching(_ text: String, limit: Int = 500, commandLinesUpTo: Int = 2_000) throws(StoreError) -> [StoredProcess] {
        try read { db in
            let needle = Data(text.utf8)
            let selected: String, arguments: StatementArguments
            if let lines = try Store.commandLines(db, upTo: commandLinesUpTo) {
                let hits = lines.filter { Store.contains($0.argv, needle) || Store.contains($0.exe, needle) }
                selected = hits.isEmpty ? "SELECT NULL WHERE 0" : """
                    SELECT i.process FROM (VALUES \(Array(repeating: "(?, ?)", count: hits.count).joined(separator: ", "))) v
                    JOIN image i ON i.argv = v.column1 AND i.exe = v.column2
                    """
                arguments = StatementArguments(hits.flatMap { [$0.argv, $0.exe] })
            } else {
                selected = "SELECT DISTINCT process FROM image WHERE instr(argv, ?) > 0 OR instr(exe, ?) > 0"
                arguments = [needle, text]
            }
            let rows = try Row.fetchAll(db, sql: "\(Store.selectProcess) WHERE p.rowid IN (\(selected)) ORDER BY p.start_wall_ns DESC LIMIT ?",
                                        arguments: arguments + [limit])
            return Store.newestFirst(try rows.map { try Store.process(from: $0, db) },
                                     try Store.leaves(db, containing: text, limit: limit), limit: limit)
        }
    }

    /// The distinct (command line, exe) pairs of the image rows, one index seek each; nil when
    /// there are more than `upTo`. Values are passed back as read, so a seek stays among
    /// values of the same storage class.
    static func commandLines(_ db: Database, upTo cap: Int) throws -> [(argv: DatabaseValue, exe: DatabaseValue)]? {
        // Two single-column ranges: SQLite seeks on `argv > ?`, not on `(argv, exe) > (?, ?)`.
        let nextArgv = try db.cachedStatement(sql: "SELECT argv FROM image WHERE argv > ? ORDER BY argv LIMIT 1")
        let firstExe = try db.cachedStatement(sql: "SELECT exe FROM image WHERE argv = ? ORDER BY exe LIMIT 1")
        let nextExe = try db.cachedStatement(sql: "SELECT exe FROM image WHERE argv = ? AND exe > ? ORDER BY exe LIMIT 1")
        var out: [(argv: DatabaseValue, exe: DatabaseValue)] = []
        var argv = try DatabaseValue.fetchOne(db.cachedStatement(sql: "SELECT argv FROM image ORDER BY argv LIMIT 1"))
        while let a = argv {
            var exe = try DatabaseValue.fetchOne(firstExe, arguments: [a])
            while let e = exe {
                guard out.count < cap else { return nil }
                out.append((a, e))
                exe = try DatabaseValue.fetchOne(nextExe, arguments: [a, e])
            }
            argv = try DatabaseValue.fetchOne(nextArgv, arguments: [a])
        }
        return out
    }

    /// Whether a text or blob holds these bytes, as SQLite's instr.
    static func contains(_ value: DatabaseValue, _ needle: Data) -> Bool {
        let bytes: Data
        switch value.storage {
        case .blob(let d): bytes = d
        case .string(let s): bytes = Data(s.utf8)
        default: return false
        }
        return bytes.withUnsafeBytes { h in needle.withUnsafeBytes { ByteSearch.contains(h.bindMemory(to: UInt8.self), $0.bindMemory(to: UInt8.self)) } }
    }
}
