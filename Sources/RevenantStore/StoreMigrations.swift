import Foundation
import GRDB
import GRDBSQLite
import CRevenantSQLite
import RevenantCore
import RevenantHost

/// The schema: every migration, named and registered in order in one place.
extension Store {
    static let migrator: DatabaseMigrator = {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE boot (
                    id TEXT PRIMARY KEY,
                    epoch_ns INTEGER NOT NULL            -- wall-clock ns at boot
                );
                CREATE TABLE process (
                    rowid INTEGER PRIMARY KEY,
                    boot TEXT NOT NULL,
                    pid INTEGER NOT NULL,
                    start_ns INTEGER NOT NULL,           -- CLOCK_BOOTTIME
                    precise INTEGER NOT NULL,            -- 0: seeded from /proc, tick precision
                    start_wall_ns INTEGER NOT NULL,
                    parent_pid INTEGER,                  -- fork-time parent; NULL = unknown
                    parent_start_ns INTEGER,
                    parent_current_only INTEGER NOT NULL DEFAULT 0,
                    adopted_pid INTEGER,
                    adopted_start_ns INTEGER,
                    comm TEXT NOT NULL,
                    exit_ns INTEGER,
                    exit_wall_ns INTEGER,
                    exit_code INTEGER,
                    exit_signal INTEGER,
                    seeded INTEGER NOT NULL DEFAULT 0,
                    images_dropped INTEGER NOT NULL DEFAULT 0,
                    UNIQUE (boot, pid, start_ns)
                );
                CREATE INDEX process_by_pid ON process (pid, start_wall_ns);
                CREATE INDEX process_by_parent ON process (boot, parent_pid, parent_start_ns);
                CREATE INDEX process_by_exit ON process (exit_wall_ns);
                CREATE TABLE image (
                    process INTEGER NOT NULL REFERENCES process (rowid) ON DELETE CASCADE,
                    seq INTEGER NOT NULL,
                    time_ns INTEGER NOT NULL,
                    exe TEXT NOT NULL,
                    interpreter TEXT,
                    argv BLOB NOT NULL,                  -- NUL-separated
                    argv_truncated INTEGER NOT NULL,
                    comm TEXT NOT NULL,
                    uid INTEGER NOT NULL, euid INTEGER NOT NULL, gid INTEGER NOT NULL,
                    loginuid INTEGER,
                    cgroup TEXT NOT NULL,
                    cgroup_id INTEGER NOT NULL,
                    cwd TEXT,
                    exe_dev INTEGER NOT NULL,
                    exe_ino INTEGER NOT NULL,
                    PRIMARY KEY (process, seq)
                ) WITHOUT ROWID;
                CREATE TABLE daemon_run (
                    id INTEGER PRIMARY KEY,
                    boot TEXT NOT NULL,
                    started_wall_ns INTEGER NOT NULL,
                    last_seen_wall_ns INTEGER NOT NULL,
                    stopped_wall_ns INTEGER,
                    stop_reason TEXT,
                    lost_events INTEGER NOT NULL DEFAULT 0,
                    version TEXT NOT NULL
                );
                """)
        }
        m.registerMigration("v2-enforcement") { db in
            try db.execute(sql: "ALTER TABLE image ADD COLUMN enforcement TEXT")
        }
        m.registerMigration("v3-argv-index") { db in
            try db.execute(sql: "CREATE INDEX image_by_argv ON image (argv)")
        }
        // Every index costs each process row a B-tree insert. By PID, the unique key serves
        // (one seek per boot). Parents are looked up only to re-key a seeded (tick-precision)
        // parent: the index holds rows whose parent start falls on a tick, almost only those.
        m.registerMigration("v4-lean-indexes") { db in
            try db.execute(sql: """
                DROP INDEX process_by_pid;
                DROP INDEX process_by_parent;
                CREATE INDEX process_by_tick_parent ON process (boot, parent_pid, parent_start_ns)
                    WHERE parent_start_ns % \(Identity.nsPerTick) = 0;
                INSERT INTO boot (id, epoch_ns) SELECT DISTINCT boot, 0 FROM process WHERE boot NOT IN (SELECT id FROM boot);
                """)
        }
        // Each process row and its key's index entry carried the 36-byte boot id, compared on
        // every insert: a small integer costs less (docs/benchmarks.md). The tables are
        // rebuilt (SQLite cannot change a column's type); row ids, and so images, are kept.
        m.registerMigration("v5-boot-key") { db in
            try db.execute(sql: """
                CREATE TABLE boot_v5 (
                    n INTEGER PRIMARY KEY,
                    id TEXT NOT NULL UNIQUE,
                    epoch_ns INTEGER NOT NULL            -- wall-clock ns at boot
                );
                INSERT INTO boot_v5 (id, epoch_ns) SELECT id, epoch_ns FROM boot ORDER BY rowid;
                CREATE TABLE process_v5 (
                    rowid INTEGER PRIMARY KEY,
                    boot INTEGER NOT NULL REFERENCES boot_v5 (n),
                    pid INTEGER NOT NULL,
                    start_ns INTEGER NOT NULL,           -- CLOCK_BOOTTIME
                    precise INTEGER NOT NULL,            -- 0: seeded from /proc, tick precision
                    start_wall_ns INTEGER NOT NULL,
                    parent_pid INTEGER,                  -- fork-time parent; NULL = unknown
                    parent_start_ns INTEGER,
                    parent_current_only INTEGER NOT NULL DEFAULT 0,
                    adopted_pid INTEGER,
                    adopted_start_ns INTEGER,
                    comm TEXT NOT NULL,
                    exit_ns INTEGER,
                    exit_wall_ns INTEGER,
                    exit_code INTEGER,
                    exit_signal INTEGER,
                    seeded INTEGER NOT NULL DEFAULT 0,
                    images_dropped INTEGER NOT NULL DEFAULT 0,
                    UNIQUE (boot, pid, start_ns)
                );
                INSERT INTO process_v5
                    SELECT p.rowid, b.n, p.pid, p.start_ns, p.precise, p.start_wall_ns, p.parent_pid, p.parent_start_ns,
                           p.parent_current_only, p.adopted_pid, p.adopted_start_ns, p.comm, p.exit_ns, p.exit_wall_ns,
                           p.exit_code, p.exit_signal, p.seeded, p.images_dropped
                    FROM process p JOIN boot_v5 b ON b.id = p.boot ORDER BY p.rowid;
                DROP TABLE process;
                DROP TABLE boot;
                ALTER TABLE boot_v5 RENAME TO boot;
                ALTER TABLE process_v5 RENAME TO process;
                CREATE INDEX process_by_exit ON process (exit_wall_ns);
                CREATE INDEX process_by_tick_parent ON process (boot, parent_pid, parent_start_ns)
                    WHERE parent_start_ns % \(Identity.nsPerTick) = 0;
                """)
        }
        // A process that ended while no daemon ran has no exit on record: at start the daemon
        // marks the rows /proc no longer shows, so retention can end them without a made-up exit.
        m.registerMigration("v6-gone-unseen") { db in
            try db.execute(sql: "ALTER TABLE process ADD COLUMN gone_by_wall_ns INTEGER")
        }
        m.registerMigration("v7-daemon-pid") { db in
            try db.execute(sql: "ALTER TABLE daemon_run ADD COLUMN pid INTEGER")
        }
        // Leaves (born and ended between two flushes, forked nothing) many to a row: most
        // processes on a busy host are such, and two rows each were most of the daemon's CPU.
        m.registerMigration("v8-leaf-batches") { db in
            try db.execute(sql: """
                CREATE TABLE leaf_batch (
                    id INTEGER PRIMARY KEY,
                    boot INTEGER NOT NULL REFERENCES boot (n),
                    first_wall_ns INTEGER NOT NULL,      -- earliest start
                    last_wall_ns INTEGER NOT NULL,       -- latest exit
                    count INTEGER NOT NULL,
                    pids TEXT NOT NULL,                  -- ",pid,pid,": lookups by PID filter on it
                    keys BLOB NOT NULL,                  -- distinct command lines (with counts) and exe paths: likewise
                    records BLOB NOT NULL                -- LeafCodec
                );
                CREATE INDEX leaf_batch_by_last ON leaf_batch (last_wall_ns);
                """)
        }
        // What enforcement did, as fields: `enforcement` keeps the sentence for people.
        m.registerMigration("v9-enforcement-fields") { db in
            try db.execute(sql: """
                ALTER TABLE image ADD COLUMN enforcement_rules TEXT;      -- JSON array of rule names
                ALTER TABLE image ADD COLUMN enforcement_tier TEXT;
                ALTER TABLE image ADD COLUMN enforcement_blocked INTEGER;
                """)
            let old = try Row.fetchAll(db, sql: "SELECT process, seq, enforcement FROM image WHERE enforcement IS NOT NULL")
            for row in old {
                let e = Enforcement(legacy: row["enforcement"])
                try db.execute(sql: """
                    UPDATE image SET enforcement_rules = ?, enforcement_tier = ?, enforcement_blocked = ? WHERE process = ? AND seq = ?
                    """, arguments: [Store.rulesJSON(e.rules), e.tier?.rawValue, e.blocked, row["process"] as Int64, row["seq"] as Int64])
            }
        }
        // Instances are grouped by program (executable + script), whatever their arguments.
        m.registerMigration("v10-program") { db in
            try db.execute(sql: "ALTER TABLE image ADD COLUMN program TEXT")
            let rows = try Row.fetchCursor(db, sql: "SELECT process, seq, exe, argv, cwd FROM image")
            let st = try db.cachedStatement(sql: "UPDATE image SET program = ? WHERE process = ? AND seq = ?")
            while let row = try rows.next() {
                let img = Image(time: 0, filename: row["exe"], argv: Store.splitArgv([UInt8](row["argv"] as Data)), comm: "", cwd: row["cwd"])
                try st.execute(arguments: [img.program.key, row["process"] as Int64, row["seq"] as Int64])
            }
            try db.execute(sql: "CREATE INDEX image_by_program ON image (program)")
        }
        m.registerMigration("v11-gaps") { db in
            try db.execute(sql: """
                CREATE TABLE trace_gap (
                    id INTEGER PRIMARY KEY,
                    run INTEGER,
                    boot TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    from_wall_ns INTEGER NOT NULL,
                    to_wall_ns INTEGER NOT NULL,
                    lost INTEGER NOT NULL,
                    detail TEXT NOT NULL
                );
                CREATE INDEX trace_gap_by_end ON trace_gap (to_wall_ns);
                CREATE INDEX image_enforced ON image (process) WHERE enforcement IS NOT NULL;
                """)
        }
        // Who changed the files respawn mechanisms read: the configuration's provenance.
        m.registerMigration("v12-config-changes") { db in
            try db.execute(sql: """
                CREATE TABLE config_change (
                    id INTEGER PRIMARY KEY,
                    path TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    time_wall_ns INTEGER NOT NULL,
                    writer_pid INTEGER NOT NULL,
                    writer_id TEXT,
                    command TEXT NOT NULL,
                    ancestry TEXT NOT NULL,
                    loginuid INTEGER,
                    uid INTEGER
                );
                CREATE INDEX config_change_by_path ON config_change (path, time_wall_ns);
                """)
        }
        // The writer's login session, from its lineage.
        m.registerMigration("v13-config-session") { db in
            try db.execute(sql: "ALTER TABLE config_change ADD COLUMN session TEXT")
        }
        // Which leaf batches hold a PID, by buckets of 64 PIDs: a lookup by PID read every
        // batch's PID list before.
        m.registerMigration("v14-leaf-pid-index") { db in
            try db.execute(sql: """
                CREATE TABLE leaf_pid (
                    bucket INTEGER NOT NULL,             -- pid >> 6
                    batch INTEGER NOT NULL,              -- leaf_batch.id
                    PRIMARY KEY (bucket, batch)
                ) WITHOUT ROWID;
                """)
            let rows = try Row.fetchCursor(db, sql: "SELECT id, pids FROM leaf_batch")
            while let row = try rows.next() {
                try Store.indexPids(Store.buckets(ofPids: row["pids"]), batch: row["id"], db)
            }
        }
        // `timeline --match` searches the distinct command lines (few on a host), hopping along
        // this index, then fetches their rows by it; exact command-line lookups use its prefix.
        m.registerMigration("v15-command-index") { db in
            try db.execute(sql: "DROP INDEX image_by_argv; CREATE INDEX image_by_command ON image (argv, exe)")
        }
        // Tiers as tokens, not sentences (leaf batches' JSON is read in either spelling).
        m.registerMigration("v16-tier-tokens") { db in
            for t in EnforcementTier.allCases {
                try db.execute(sql: "UPDATE image SET enforcement_tier = ? WHERE enforcement_tier = ?", arguments: [t.rawValue, t.label])
            }
        }
        return m
    }()

    /// Applied schema migrations, oldest first.
    public func schemaVersions() throws(StoreError) -> [String] {
        try read { db in let applied = try Store.migrator.appliedIdentifiers(db); return Store.migrator.migrations.filter { applied.contains($0) } }
    }
}
