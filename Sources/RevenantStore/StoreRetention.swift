import Foundation
import GRDB
import GRDBSQLite
import CRevenantSQLite
import RevenantCore
import RevenantHost

/// Retention: what goes when the store is older or larger than its bounds.
extension Store {
    /// Deletes exited processes that ended before `exitedBeforeWallNs`, then the oldest exited
    /// ones beyond `maxProcesses` rows. Live processes are never deleted; a process of an
    /// earlier boot with no exit on record (running at a reboot or a crash) ended by the time
    /// the next boot started, and goes once that is before the cutoff; one marked gone while no
    /// daemon ran goes once it was gone before the cutoff. Returns rows deleted.
    ///
    /// Never deleted either, whatever their age: the fork-time ancestors of this boot's live
    /// processes and of every process the policy acted on that is still stored, so the
    /// answer to "who spawned it" cannot be aged out from under a running process or a finding.
    @discardableResult
    public func enforceRetention(exitedBeforeWallNs: Int64, maxProcesses: Int, currentBoot: String) throws(StoreError) -> Int {
        try write { db in
            try db.execute(sql: "CREATE TEMP TABLE IF NOT EXISTS retained (id INTEGER PRIMARY KEY)")
            try db.execute(sql: "DELETE FROM temp.retained")
            try db.execute(sql: """
                WITH RECURSIVE kept(id, boot, parent_pid, parent_start_ns) AS (
                    SELECT p.rowid, p.boot, p.parent_pid, p.parent_start_ns FROM process c
                    JOIN process p ON p.boot = c.boot AND p.pid = c.parent_pid AND p.start_ns = c.parent_start_ns
                    WHERE c.rowid IN (SELECT process FROM image WHERE enforcement IS NOT NULL)
                    UNION
                    SELECT p.rowid, p.boot, p.parent_pid, p.parent_start_ns FROM process c
                    JOIN process p ON p.boot = c.boot AND p.pid = c.parent_pid AND p.start_ns = c.parent_start_ns
                    WHERE c.exit_wall_ns IS NULL AND c.gone_by_wall_ns IS NULL AND c.boot = (SELECT n FROM boot WHERE id = ?)
                    UNION
                    SELECT p.rowid, p.boot, p.parent_pid, p.parent_start_ns FROM kept k
                    JOIN process p ON p.boot = k.boot AND p.pid = k.parent_pid AND p.start_ns = k.parent_start_ns
                )
                INSERT OR IGNORE INTO temp.retained SELECT id FROM kept
                """, arguments: [currentBoot])
            let unkept = "rowid NOT IN (SELECT id FROM temp.retained)"
            try db.execute(sql: "DELETE FROM process WHERE exit_wall_ns IS NOT NULL AND exit_wall_ns < ? AND \(unkept)",
                           arguments: [exitedBeforeWallNs])
            var deleted = db.changesCount
            // Along the exit index's NULL entries: the rows without an exit, a few thousand.
            try db.execute(sql: """
                DELETE FROM process WHERE exit_wall_ns IS NULL AND boot IN (
                    SELECT b.n FROM boot b WHERE b.id != ? AND EXISTS (
                        SELECT 1 FROM boot later WHERE later.epoch_ns > b.epoch_ns AND later.epoch_ns < ?)) AND \(unkept)
                """, arguments: [currentBoot, exitedBeforeWallNs])
            deleted += db.changesCount
            try db.execute(sql: "DELETE FROM process WHERE exit_wall_ns IS NULL AND gone_by_wall_ns < ? AND \(unkept)",
                           arguments: [exitedBeforeWallNs])
            deleted += db.changesCount
            deleted += try Int.fetchOne(db, sql: "SELECT coalesce(sum(count), 0) FROM leaf_batch WHERE last_wall_ns < ?",
                                        arguments: [exitedBeforeWallNs]) ?? 0
            try db.execute(sql: "DELETE FROM leaf_batch WHERE last_wall_ns < ?", arguments: [exitedBeforeWallNs])
            let total = try Int.fetchOne(db, sql: "SELECT (SELECT count(*) FROM process) + (SELECT coalesce(sum(count), 0) FROM leaf_batch)") ?? 0
            // Oldest exits first, rows and whole leaf batches (by their last exit) alike.
            var excess = total - maxProcesses
            while excess > 0 {
                let oldest = try Row.fetchOne(db, sql: "SELECT id, last_wall_ns, count FROM leaf_batch ORDER BY last_wall_ns LIMIT 1")
                try db.execute(sql: """
                    DELETE FROM process WHERE rowid IN (
                        SELECT rowid FROM process WHERE exit_wall_ns IS NOT NULL AND exit_wall_ns <= ? AND \(unkept) ORDER BY exit_wall_ns LIMIT ?)
                    """, arguments: [oldest.map { $0["last_wall_ns"] as Int64 } ?? Int64.max, excess])
                deleted += db.changesCount
                excess -= db.changesCount
                guard excess > 0, let oldest else { break }
                try db.execute(sql: "DELETE FROM leaf_batch WHERE id = ?", arguments: [oldest["id"] as Int64])
                let n: Int = oldest["count"]
                deleted += n
                excess -= n
            }
            try db.execute(sql: "DELETE FROM leaf_pid WHERE batch NOT IN (SELECT id FROM leaf_batch)")
            return deleted
        }
    }
}
