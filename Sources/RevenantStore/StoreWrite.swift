import Foundation
import GRDB
import GRDBSQLite
import CRevenantSQLite
import RevenantCore
import RevenantHost

/// Writing: runs, batches in one transaction each, processes gone unseen.
extension Store {
    public func beginRun(boot: String, bootEpochNs: Int64, version: String, nowWallNs: Int64) throws(StoreError) -> Int64 {
        try write { db in
            _ = try Store.bootKey(db, boot, epochNs: bootEpochNs)
            try db.execute(sql: """
                INSERT INTO daemon_run (boot, started_wall_ns, last_seen_wall_ns, version, pid) VALUES (?, ?, ?, ?, ?)
                """, arguments: [boot, nowWallNs, nowWallNs, version, getpid()])
            return db.lastInsertedRowID
        }
    }

    public func endRun(_ id: Int64, nowWallNs: Int64, reason: String, lostEvents: Int64) throws(StoreError) {
        try write { db in
            try db.execute(sql: """
                UPDATE daemon_run SET stopped_wall_ns = ?, last_seen_wall_ns = ?, stop_reason = ?, lost_events = ? WHERE id = ?
                """, arguments: [nowWallNs, nowWallNs, reason, lostEvents, id])
        }
    }

    /// Writes a batch in one transaction; a crash leaves either all of it or none.
    public func write(_ batch: StoreBatch, run: Int64? = nil, nowWallNs: Int64, lostEvents: Int64 = 0) throws(StoreError) {
        try write { db in
            let boot = try Store.bootKey(db, batch.boot, epochNs: batch.bootEpochNs)
            try Store.rekey(batch.rekeys, boot: boot, db)
            let rowids = try Store.upsertProcesses(batch, boot: boot, db)
            try Store.insertImages(batch.images, rowids: rowids, boot: boot, db)
            if !batch.leaves.isEmpty { try Store.writeLeaves(batch, boot: boot, db) }
            try Store.insertEvents(batch, run: run, db)
            if let run {
                try db.cachedStatement(sql: "UPDATE daemon_run SET last_seen_wall_ns = ?, lost_events = ? WHERE id = ?")
                    .execute(arguments: [nowWallNs, lostEvents, run])
            }
        }
    }


    /// Seeded processes whose exact start the kernel has now told: their rows take the exact key.
    static func rekey(_ rekeys: [(from: Identity, to: Identity)], boot: Int64, _ db: Database) throws {
        for (from, to) in rekeys {
            // A daemon restarted on the same boot seeds processes an earlier run recorded
            // exactly: that row is kept and the seeded duplicate goes.
            let known = try Int64.fetchOne(db, sql: "SELECT rowid FROM process WHERE boot = ? AND pid = ? AND start_ns = ?",
                                           arguments: [boot, to.pid, Int64(to.startNs)]) != nil
            if known {
                try db.cachedStatement(sql: "DELETE FROM process WHERE boot = ? AND pid = ? AND start_ns = ?")
                    .execute(arguments: [boot, from.pid, Int64(from.startNs)])
            } else {
                try db.cachedStatement(sql: "UPDATE process SET start_ns = ?, precise = 1 WHERE boot = ? AND pid = ? AND start_ns = ?")
                    .execute(arguments: [Int64(to.startNs), boot, from.pid, Int64(from.startNs)])
            }
            try db.cachedStatement(sql: "UPDATE process SET parent_start_ns = ? WHERE boot = ? AND parent_pid = ? AND parent_start_ns = ? AND parent_start_ns % \(Identity.nsPerTick) = 0")
                .execute(arguments: [Int64(to.startNs), boot, from.pid, Int64(from.startNs)])
        }
    }

    /// Inserts or updates the batch's process rows; returns the row ids of those it inserted.
    static func upsertProcesses(_ batch: StoreBatch, boot: Int64, _ db: Database) throws -> [Identity: Int64] {
        // Bound straight to SQLite: GRDB's StatementArguments box every value.
        let upsert = try RawStatement(db.cachedStatement(sql: """
            INSERT INTO process (boot, pid, start_ns, precise, start_wall_ns, parent_pid, parent_start_ns,
                parent_current_only, adopted_pid, adopted_start_ns, comm, exit_ns, exit_wall_ns, exit_code,
                exit_signal, seeded, images_dropped)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (boot, pid, start_ns) DO UPDATE SET
                parent_pid = excluded.parent_pid, parent_start_ns = excluded.parent_start_ns,
                parent_current_only = excluded.parent_current_only,
                adopted_pid = excluded.adopted_pid, adopted_start_ns = excluded.adopted_start_ns,
                comm = excluded.comm, exit_ns = excluded.exit_ns, exit_wall_ns = excluded.exit_wall_ns,
                exit_code = excluded.exit_code, exit_signal = excluded.exit_signal,
                images_dropped = excluded.images_dropped
            """), db)
        // Row ids of this batch's processes: images then need no lookup by key.
        var rowids: [Identity: Int64] = [:]
        rowids.reserveCapacity(batch.processes.count)
        for r in batch.processes {
            var code: Int64?, sig: Int64?
            switch r.exitStatus {
            case .exited(let c): code = Int64(c)
            case .signaled(let sg, _): sig = Int64(sg)
            case nil: break
            }
            var b = upsert.begin()
            b.int(boot); b.int(Int64(r.id.pid)); b.int(Int64(r.id.startNs)); b.int(r.id.precise ? 1 : 0)
            b.int(batch.bootEpochNs + Int64(r.id.startNs))
            b.int(r.parent.map { Int64($0.pid) }); b.int(r.parent.map { Int64($0.startNs) }); b.int(r.parentIsCurrentOnly ? 1 : 0)
            b.int(r.adoptedBy.map { Int64($0.pid) }); b.int(r.adoptedBy.map { Int64($0.startNs) }); b.text(r.name)
            b.int(r.exitTime.map { Int64($0) }); b.int(r.exitTime.map { batch.bootEpochNs + Int64($0) }); b.int(code); b.int(sig)
            b.int(r.seeded ? 1 : 0); b.int(Int64(r.imagesDropped))
            if let rowid = try upsert.runInsert() { rowids[r.id] = rowid }
        }
        return rowids
    }

    static func insertImages(_ images: [(process: Identity, seq: Int, image: Image)], rowids: [Identity: Int64], boot: Int64, _ db: Database) throws {
        // A process inserted by this batch has no images yet: no conflict to look for.
        let byRowid = try RawStatement(db.cachedStatement(sql: """
            INSERT INTO image (process, seq, time_ns, exe, interpreter, argv, argv_truncated, comm,
                uid, euid, gid, loginuid, cgroup, cgroup_id, cwd, exe_dev, exe_ino, enforcement,
                enforcement_rules, enforcement_tier, enforcement_blocked, program)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """), db)
        let byKey = try RawStatement(db.cachedStatement(sql: """
            INSERT OR REPLACE INTO image (process, seq, time_ns, exe, interpreter, argv, argv_truncated, comm,
                uid, euid, gid, loginuid, cgroup, cgroup_id, cwd, exe_dev, exe_ino, enforcement,
                enforcement_rules, enforcement_tier, enforcement_blocked, program)
            SELECT rowid, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
            FROM process WHERE boot = ? AND pid = ? AND start_ns = ?
            """), db)
        for (p, seq, i) in images {
            let rowid = rowids[p]
            let st = rowid == nil ? byKey : byRowid
            var b = st.begin()
            if let rowid { b.int(rowid) }
            b.int(Int64(seq)); b.int(Int64(i.time)); b.text(i.filename); b.text(i.interpreter); b.argv(i.argv)
            b.int(i.argvTruncated ? 1 : 0); b.text(i.comm)
            b.int(Int64(i.uid)); b.int(Int64(i.euid)); b.int(Int64(i.gid)); b.int(i.loginuid.map { Int64($0) }); b.text(i.cgroup)
            b.int(Int64(bitPattern: i.cgroupId)); b.text(i.cwd); b.int(Int64(bitPattern: i.exeDevice)); b.int(Int64(bitPattern: i.exeInode))
            b.text(i.enforcement?.message); b.text(i.enforcement.map { Store.rulesJSON($0.rules) })
            b.text(i.enforcement?.tier?.rawValue); b.int(i.enforcement.map { $0.blocked ? 1 : 0 })
            b.text(i.program.key)
            if rowid == nil { b.int(boot); b.int(Int64(p.pid)); b.int(Int64(p.startNs)) }
            try st.run()
        }
    }

    /// The batch's configuration changes and trace gaps.
    static func insertEvents(_ batch: StoreBatch, run: Int64?, _ db: Database) throws {
        for c in batch.configChanges {
            try db.cachedStatement(sql: """
                INSERT INTO config_change (path, kind, time_wall_ns, writer_pid, writer_id, command, ancestry, loginuid, uid, session)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [c.path, c.kind.rawValue, c.timeWallNs, c.writerPid, c.writerId, c.command, c.ancestry,
                                          c.loginuid.map { Int64($0) }, c.uid.map { Int64($0) }, c.session])
        }
        for g in batch.gaps {
            try db.cachedStatement(sql: """
                INSERT INTO trace_gap (run, boot, kind, from_wall_ns, to_wall_ns, lost, detail) VALUES (?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [run, batch.boot, g.kind.rawValue, g.fromWallNs, g.toWallNs, g.lost, g.detail])
        }
    }

    /// Marks this boot's rows with no exit on record whose process is not among `running` (what
    /// /proc shows now, matched by PID and start tick): they ended while no daemon traced, at an
    /// unknown time before `goneByWallNs`. Returns how many were marked.
    @discardableResult
    public func markGone(boot: String, running: [Identity], goneByWallNs: Int64) throws(StoreError) -> Int {
        // Both sides at tick precision: a tick identity per PID and start tick.
        let live = Set(running.map { Identity(pid: $0.pid, startTicks: $0.startTicks) })
        return try write { db in
            // Along the exit index's NULL entries: the rows without an exit.
            let rows = try Row.fetchAll(db, sql: """
                SELECT rowid, pid, start_ns FROM process
                WHERE exit_wall_ns IS NULL AND gone_by_wall_ns IS NULL AND boot = (SELECT n FROM boot WHERE id = ?)
                """, arguments: [boot])
            let st = try db.cachedStatement(sql: "UPDATE process SET gone_by_wall_ns = ? WHERE rowid = ?")
            var n = 0
            for r in rows {
                let start: Int64 = r["start_ns"]
                guard !live.contains(Identity(pid: r["pid"], startTicks: UInt64(start) / Identity.nsPerTick)) else { continue }
                try st.execute(arguments: [goneByWallNs, r["rowid"] as Int64])
                n += 1
            }
            return n
        }
    }
}
