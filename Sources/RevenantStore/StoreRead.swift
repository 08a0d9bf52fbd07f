import Foundation
import GRDB
import GRDBSQLite
import CRevenantSQLite
import RevenantCore
import RevenantHost

/// Reading one process, its incarnations and its fork-time ancestry.
extension Store {
    /// Every stored process with this PID, newest first (across boots).
    public func incarnations(pid: Int32, limit: Int = 100) throws(StoreError) -> [StoredProcess] {
        try read { db in
            // One seek per boot along the unique key.
            let rows = try Row.fetchAll(db, sql: "\(Store.selectProcess) WHERE p.boot IN (SELECT n FROM boot) AND p.pid = ? ORDER BY p.start_wall_ns DESC LIMIT ?",
                                        arguments: [pid, limit])
            return Store.newestFirst(try rows.map { try Store.process(from: $0, db) }, try Store.leaves(db, pid: pid), limit: limit)
        }
    }

    public func process(boot: String, id: Identity) throws(StoreError) -> StoredProcess? {
        try read { db in
            try Store.fetch(db, boot: boot, pid: id.pid, startNs: Int64(id.startNs))
                ?? Store.leaves(db, pid: id.pid).first { $0.boot == boot && $0.record.id.startNs == id.startNs }
        }
    }

    /// For processes read from /proc (tick precision), the exact records an earlier run on the
    /// same boot stored for them: keyed by the /proc identity. One seek each along the unique key.
    public func exactRecords(boot: String, seeing ids: [Identity]) throws(StoreError) -> [Identity: ProcessRecord] {
        try read { db in
            var out: [Identity: ProcessRecord] = [:]
            let st = try db.makeStatement(sql: """
                \(Store.selectProcess) WHERE p.boot = (SELECT n FROM boot WHERE id = ?) AND p.pid = ? AND p.start_ns >= ? AND p.start_ns < ? AND p.precise = 1
                    AND p.exit_ns IS NULL
                ORDER BY p.start_ns LIMIT 1
                """)
            for id in ids where !id.precise {
                let from = Int64(id.startTicks * Identity.nsPerTick)
                if let row = try Row.fetchOne(st, arguments: [boot, id.pid, from, from + Int64(Identity.nsPerTick)]) {
                    out[id] = try Store.process(from: row, db).record
                }
            }
            return out
        }
    }

    /// The children `parent` forked that exec'd nothing (a pre-fork master's workers), newest
    /// first, at most `limit`: instances of one program that no program index holds.
    public func forkedChildren(of parent: StoredProcess, limit: Int) throws(StoreError) -> [StoredProcess] {
        try read { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                \(Store.selectProcess) WHERE p.boot = (SELECT n FROM boot WHERE id = ?) AND p.parent_pid = ? AND p.parent_start_ns = ?
                AND NOT EXISTS (SELECT 1 FROM image i WHERE i.process = p.rowid) ORDER BY p.start_wall_ns DESC LIMIT ?
                """), arguments: [parent.boot, parent.record.id.pid, Int64(parent.record.id.startNs), limit])
            return try rows.map { try Store.process(from: $0, db) }
        }
    }

    /// Fork-time ancestors, nearest first, as far as the store has them.
    public func ancestry(of p: StoredProcess, limit: Int = 64) throws(StoreError) -> [StoredProcess] {
        try read { db in
            var out: [StoredProcess] = []
            guard let parent = p.record.parent else { return out }
            // One statement walks up the parent keys and reads each link with its images.
            let st = try db.cachedStatement(sql: """
                WITH RECURSIVE up(id, depth) AS (
                    SELECT p.rowid, 1 FROM process p WHERE p.boot = (SELECT n FROM boot WHERE id = ?) AND p.pid = ? AND p.start_ns = ?
                    UNION ALL
                    SELECT a.rowid, up.depth + 1 FROM up JOIN process c ON c.rowid = up.id
                    JOIN process a ON a.boot = c.boot AND a.pid = c.parent_pid AND a.start_ns = c.parent_start_ns
                    WHERE up.depth < ?
                )
                SELECT \(Store.processColumns), \(Store.imageColumns)
                FROM up JOIN process p ON p.rowid = up.id JOIN boot b ON b.n = p.boot LEFT JOIN image i ON i.process = p.rowid
                ORDER BY up.depth, i.seq
                """)
            st.arguments = [p.boot, parent.pid, Int64(parent.startNs), limit]
            var seen: Set<Identity> = [p.record.id]
            var lastRow: Int64?
            // Read through SQLite's column functions: GRDB's generic decoding of ~40 columns a
            // link was most of a who-spawned's 33 ancestries.
            try RawStatement(st, db).rows { row in
                let rowid = row.int(0)
                if rowid != lastRow {
                    let a = Store.process(raw: row)
                    // A cycle of parent keys ends the chain where it repeats.
                    guard seen.insert(a.record.id).inserted else { return false }
                    out.append(a)
                    lastRow = rowid
                }
                if !row.isNull(Store.processColumnCount) { out[out.count - 1].record.images.append(Store.image(raw: row, at: Store.processColumnCount)) }
                return true
            }
            // One that only forked runs its parent's image: the kernel saw its comm, and a
            // lazily announced fork whose parent had left memory was stored without an image.
            for i in out.indices.reversed().dropFirst() where out[i].record.images.isEmpty {
                if let img = out[i + 1].record.image {
                    out[i].record.images = [img]
                    out[i].record.imageInherited = true
                }
            }
            return out
        }
    }

    /// `ancestry(of:)` of many processes at once, each ancestor read once: the instances of one
    /// program share their respawner's chain (10,000 instances, one walk up from it).
    public func ancestries(of ps: [StoredProcess], limit: Int = 64) throws(StoreError) -> [[StoredProcess]] {
        try read { db in
            struct Key: Hashable { var boot: String; var id: Identity }
            var memo: [Key: [StoredProcess]] = [:]
            func chain(_ id: Identity?, boot: String, seen: Set<Identity>) throws -> [StoredProcess] {
                guard let id, seen.count <= limit, !seen.contains(id) else { return [] }
                if let m = memo[Key(boot: boot, id: id)] { return m }
                guard let a = try Store.fetch(db, boot: boot, pid: id.pid, startNs: Int64(id.startNs)) else {
                    memo[Key(boot: boot, id: id)] = []
                    return []
                }
                var seen = seen
                seen.insert(a.record.id)
                let c = [a] + (try chain(a.record.parent, boot: boot, seen: seen))
                memo[Key(boot: boot, id: id)] = c
                return c
            }
            return try ps.map { p in
                var out = Array(try chain(p.record.parent, boot: p.boot, seen: [p.record.id]).prefix(limit))
                for i in out.indices.reversed().dropFirst() where out[i].record.images.isEmpty {
                    if let img = out[i + 1].record.image {
                        out[i].record.images = [img]
                        out[i].record.imageInherited = true
                    }
                }
                return out
            }
        }
    }
}
