import Foundation
import GRDB
import GRDBSQLite
import CRevenantSQLite
import RevenantCore
import RevenantHost

/// The daemon's runs, trace gaps, configuration changes and the file itself.
extension Store {
    /// The newest changes to a configuration file, newest first.
    public func configChanges(path: String, limit: Int = 5) throws(StoreError) -> [ConfigChange] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM config_change WHERE path = ? ORDER BY time_wall_ns DESC LIMIT ?
                """, arguments: [path, limit]).map { r in
                ConfigChange(path: r["path"], kind: ConfigChange.Kind(rawValue: r["kind"]) ?? .modified, timeWallNs: r["time_wall_ns"],
                             writerPid: r["writer_pid"], writerId: r["writer_id"], command: r["command"], ancestry: r["ancestry"],
                             loginuid: (r["loginuid"] as Int64?).map { UInt32(truncatingIfNeeded: $0) },
                             uid: (r["uid"] as Int64?).map { UInt32(truncatingIfNeeded: $0) }, session: r["session"])
            }
        }
    }

    /// Gaps that overlap [fromWallNs, toWallNs], oldest first: in the process history, or
    /// (`configuration`) in the record of configuration changes.
    public func gaps(fromWallNs: Int64 = .min, toWallNs: Int64 = .max, configuration: Bool = false) throws(StoreError) -> [TraceGap] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT kind, from_wall_ns, to_wall_ns, lost, detail FROM trace_gap
                WHERE to_wall_ns >= ? AND from_wall_ns <= ? AND (kind = 'config-changes-lost') = ? ORDER BY from_wall_ns
                """, arguments: [fromWallNs, toWallNs, configuration]).map { r in
                TraceGap(kind: TraceGap.Kind(rawValue: r["kind"]) ?? .eventsLost, fromWallNs: r["from_wall_ns"],
                         toWallNs: r["to_wall_ns"], lost: r["lost"], detail: r["detail"])
            }
        }
    }

    /// The store's bytes on disk: the file and its write-ahead log.
    public func fileBytes() -> Int64 {
        var st = stat(), total: Int64 = 0
        for p in [path, path + "-wal"] where stat(p, &st) == 0 { total += Int64(st.st_size) }
        return total
    }

    /// The file this store has open is no longer the one at its path (removed or replaced):
    /// whatever it writes is lost.
    public var fileReplaced: Bool {
        var now = stat()
        return stat(path, &now) != 0 || now.st_dev != opened.dev || now.st_ino != opened.ino
    }

    /// A daemon is writing this store now: its run is open and flushed in the last 10 s.
    public func daemonIsWriting() -> Bool { writingRun() != nil }

    package func writingRun() -> DaemonRun? {
        guard let run = try? runs().last, run.stoppedWallNs == nil,
              WallClock.nowNs() - run.lastSeenWallNs < 10_000_000_000 else { return nil }
        return run
    }

    public func runs() throws(StoreError) -> [DaemonRun] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM daemon_run ORDER BY id").map { r in
                DaemonRun(id: r["id"], boot: r["boot"], startedWallNs: r["started_wall_ns"],
                          lastSeenWallNs: r["last_seen_wall_ns"], stoppedWallNs: r["stopped_wall_ns"],
                          stopReason: r["stop_reason"], lostEvents: r["lost_events"], pid: r["pid"])
            }
        }
    }

    public func processCount() throws(StoreError) -> Int {
        try read { try Int.fetchOne($0, sql: "SELECT (SELECT count(*) FROM process) + (SELECT coalesce(sum(count), 0) FROM leaf_batch)") ?? 0 }
    }

    /// SQLite's own integrity check: "ok" or the problems found.
    public func integrityCheck() throws(StoreError) -> [String] {
        try read { db in
            let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            let fk = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").map { "foreign key: \($0)" }
            return integrity + fk
        }
    }

    /// Stored processes whose recorded fork-time parent is not in the store (same boot).
    public func orphanedParents() throws(StoreError) -> [(pid: Int32, parentPid: Int32)] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT c.pid, c.parent_pid FROM process c
                WHERE c.parent_pid IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM process p WHERE p.boot = c.boot AND p.pid = c.parent_pid AND p.start_ns = c.parent_start_ns)
                """).map { ($0[0], $0[1]) }
        }
    }
}
