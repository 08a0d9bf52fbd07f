import Foundation
import GRDB
import GRDBSQLite
import CRevenantSQLite
import RevenantCore
import RevenantHost

/// A failure to open, read or write the store, naming the file.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public var description: String { "store \(path): \(reason)" }
}

/// A process as the store holds it: the record plus where and when it lived.
public struct StoredProcess: Sendable, Equatable {
    public var boot: String
    public var record: ProcessRecord
    public var startWallNs: Int64
    public var exitWallNs: Int64?
    /// No exit on record, and gone by this time: it ended while no daemon traced.
    public var goneByWallNs: Int64?

    public init(boot: String, record: ProcessRecord, startWallNs: Int64, exitWallNs: Int64?, goneByWallNs: Int64? = nil) {
        self.boot = boot; self.record = record; self.startWallNs = startWallNs; self.exitWallNs = exitWallNs
        self.goneByWallNs = goneByWallNs
    }
}

/// A stored process found by a search, read in full by `Store.processes(_:)`: a leaf is
/// decoded already, a row is read only if chosen.
public struct InstanceRef: Sendable {
    public var id: Identity
    public var startWallNs: Int64
    public var argv: [String]?
    let row: Int64?
    let leaf: StoredProcess?
}

/// One daemon lifetime: gaps between runs are gaps in the history.
public struct DaemonRun: Sendable, Equatable {
    public var id: Int64
    public var boot: String
    public var startedWallNs: Int64
    /// Last flush that reached the disk; after a crash the gap starts here.
    public var lastSeenWallNs: Int64
    public var stoppedWallNs: Int64?
    public var stopReason: String?
    public var lostEvents: Int64
    /// The daemon's PID (SIGUSR1 asks it to flush now); nil for runs before schema v7.
    public var pid: Int32? = nil
}

/// An interval the history is incomplete over: events the kernel dropped (ring buffer full),
/// or changes the daemon could not write to the store.
public struct TraceGap: Sendable, Equatable {
    public enum Kind: String, Sendable { case eventsLost = "events-lost", storeUnwritable = "store-unwritable", configChangesLost = "config-changes-lost" }
    public var kind: Kind
    public var fromWallNs: Int64
    public var toWallNs: Int64
    /// Events lost, or process changes not written.
    public var lost: Int64
    public var detail: String

    public init(kind: Kind, fromWallNs: Int64, toWallNs: Int64, lost: Int64, detail: String) {
        self.kind = kind; self.fromWallNs = fromWallNs; self.toWallNs = toWallNs; self.lost = lost; self.detail = detail
    }
}

/// What one flush writes, in one transaction.
public struct StoreBatch: Sendable {
    public var boot: String
    public var bootEpochNs: Int64
    public var gaps: [TraceGap] = []
    public var configChanges: [ConfigChange] = []
    public var rekeys: [(from: Identity, to: Identity)] = []
    public var processes: [ProcessRecord] = []
    public var images: [(process: Identity, seq: Int, image: Image)] = []
    /// Exited processes, with their images, that no other record names as parent and that no
    /// earlier batch wrote: stored together in one `leaf_batch` row.
    public var leaves = LeafBatch()

    public init(boot: String, bootEpochNs: Int64) {
        self.boot = boot; self.bootEpochNs = bootEpochNs
    }

    public var isEmpty: Bool { rekeys.isEmpty && processes.isEmpty && images.isEmpty && leaves.isEmpty && gaps.isEmpty && configChanges.isEmpty }
    /// Process changes it carries (what is lost when it cannot be written).
    public var changes: Int { processes.count + leaves.count }
}

/// The lineage history: SQLite through GRDB, WAL mode, schema migrations.
///
/// Processes are keyed by (boot id, pid, start ns); the fork-time parent is kept as a key
/// (not a row id) so a process can be written before or without its parent.
public final class Store: Sendable {
    public static let defaultPath = "/var/lib/revenant/revenant.db"
    public let path: String
    private let db: DatabaseQueue
    private let opened: (dev: UInt64, ino: UInt64)

    /// Applied once, before this process opens its first connection.
    private static let tuned: Int32 = rv_sqlite_tune()

    public init(path: String, readOnly: Bool = false) throws(StoreError) {
        _ = Store.tuned
        self.path = path
        var config = Configuration()
        config.readonly = readOnly
        config.label = "revenant"
        // Readers (who-spawned) and the daemon share the file: wait for a lock, don't fail.
        config.busyMode = .timeout(10)
        do {
            if readOnly {
                guard FileManager.default.fileExists(atPath: path) else {
                    throw StoreError(path: path, reason: "no such file (has `revenant run` ever run with this --db?)")
                }
            } else {
                try PrivateFiles.directory((path as NSString).deletingLastPathComponent)
                // SQLite gives -wal and -shm the database file's mode when it creates them.
                PrivateFiles.file(path, mode: 0o600, companions: ["-wal", "-shm"])
            }
            config.prepareDatabase { db in
                if !db.configuration.readonly {
                    try db.execute(sql: "PRAGMA journal_mode = WAL")
                    // Durable at each committed batch, without an fsync per row.
                    try db.execute(sql: "PRAGMA synchronous = NORMAL")
                }
            }
            db = try DatabaseQueue(path: path, configuration: config)
            if readOnly {
                let applied = try db.read { try Store.migrator.appliedIdentifiers($0) }
                guard applied.contains("v1") else {
                    throw StoreError(path: path, reason: "not a revenant store (no schema)")
                }
                // Readers speak only the newest schema; the daemon migrates when it opens the store.
                guard try db.read({ try Store.migrator.hasCompletedMigrations($0) }) else {
                    throw StoreError(path: path, reason: "the store's schema is older than this revenant: start the daemon (`revenant run`) once to migrate it")
                }
            } else {
                try Store.migrator.migrate(db)
            }
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError(path: path, reason: Store.explain(error))
        }
        var st = stat()
        opened = stat(path, &st) == 0 ? (UInt64(st.st_dev), UInt64(st.st_ino)) : (0, 0)
    }

    static func explain(_ error: any Error) -> String {
        if let e = error as? DatabaseError { return e.message ?? "\(e.resultCode)" }
        if let e = error as? CocoaError, let u = e.userInfo[NSUnderlyingErrorKey] as? NSError { return u.localizedDescription }
        return "\(error)"
    }

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
        // every insert: a small integer instead made ingest ~1.25x faster. The tables are
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
        return m
    }()

    /// Applied schema migrations, oldest first.
    public func schemaVersions() throws(StoreError) -> [String] {
        try read { db in let applied = try Store.migrator.appliedIdentifiers(db); return Store.migrator.migrations.filter { applied.contains($0) } }
    }

    // MARK: - writing

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
            for (from, to) in batch.rekeys {
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
            for (p, seq, i) in batch.images {
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
            if !batch.leaves.isEmpty { try Store.writeLeaves(batch, boot: boot, db) }
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
            if let run {
                try db.cachedStatement(sql: "UPDATE daemon_run SET last_seen_wall_ns = ?, lost_events = ? WHERE id = ?")
                    .execute(arguments: [nowWallNs, lostEvents, run])
            }
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

    // MARK: - reading

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

    /// Processes that ran exactly this command line (any image), newest first: the last written
    /// ones, read backwards along the argv index (whose entries for one command line are in row
    /// order), so a command line run 100,000 times costs no more than one run 16 times.
    public func instances(argv: [String], limit: Int = 500) throws(StoreError) -> [StoredProcess] {
        try instances(column: "argv", Data(Store.joinArgv(argv)), limit: limit) { db in try Store.leaves(db, argv: argv, limit: limit) }
    }

    /// Rows whose image has `column` = `value` (an indexed column), newest first, with `leaves`.
    private func instances(column: String, _ value: some DatabaseValueConvertible, limit: Int,
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

    // MARK: - plumbing

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

    private static func fetch(_ db: Database, boot: String, pid: Int32, startNs: Int64) throws -> StoredProcess? {
        // Cached: an ancestry walk runs it once a link, and preparing a statement (GRDB's
        // authorizer included) cost more than running it.
        try Row.fetchOne(db.cachedStatement(sql: "\(selectProcess) WHERE p.boot = (SELECT n FROM boot WHERE id = ?) AND p.pid = ? AND p.start_ns = ?"),
                         arguments: [boot, pid, startNs]).map { try process(from: $0, db) }
    }

    private static func process(from row: Row, _ db: Database?) throws -> StoredProcess {
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
            img.enforcement = Enforcement(rules: rules, tier: i.optText(k + 17).flatMap(EnforcementTier.init(rawValue:)),
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
            img.enforcement = Enforcement(rules: rules, tier: (i[k + 17] as String?).flatMap(EnforcementTier.init(rawValue:)),
                                          blocked: (i[k + 18] as Bool?) ?? false, message: message)
        }
        return img
    }

    static func joinArgv(_ argv: [String]) -> [UInt8] { ArgvBytes.join(argv) }

    static func splitArgv(_ b: [UInt8]) -> [String] { ArgvBytes.split(b) }

    func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do { return try db.read(body) } catch { throw StoreError(path: path, reason: Store.explain(error)) }
    }

    private func write<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do { return try db.write(body) } catch { throw StoreError(path: path, reason: Store.explain(error)) }
    }
}

/// A cached GRDB statement driven through the SQLite C API: values are bound in place, without
/// boxing each one. Used only by the batch writer, inside its transaction.
struct RawStatement {
    let handle: OpaquePointer
    let db: Database
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(_ s: Statement, _ db: Database) {
        handle = s.sqliteStatement
        self.db = db
    }

    struct Binder {
        let handle: OpaquePointer
        var index: Int32 = 0
        mutating func int(_ v: Int64?) {
            index += 1
            if let v { sqlite3_bind_int64(handle, index, v) } else { sqlite3_bind_null(handle, index) }
        }
        mutating func text(_ v: String?) {
            index += 1
            guard var v else { sqlite3_bind_null(handle, index); return }
            v.withUTF8 { u in
                // An empty buffer may have no base address: bind a static empty string.
                guard let p = u.baseAddress, u.count > 0 else {
                    _ = sqlite3_bind_text(handle, index, "", 0, RawStatement.transient)
                    return
                }
                _ = sqlite3_bind_text(handle, index, UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self),
                                      Int32(u.count), RawStatement.transient)
            }
        }
        /// A blob, or text when the bytes are UTF-8.
        mutating func bytes(_ v: [UInt8], asText: Bool = false) {
            index += 1
            guard !v.isEmpty else {
                if asText { _ = sqlite3_bind_text(handle, index, "", 0, RawStatement.transient) } else { sqlite3_bind_zeroblob(handle, index, 0) }
                return
            }
            v.withUnsafeBytes { u in
                if asText {
                    _ = sqlite3_bind_text(handle, index, u.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(u.count), RawStatement.transient)
                } else {
                    _ = sqlite3_bind_blob(handle, index, u.baseAddress, Int32(u.count), RawStatement.transient)
                }
            }
        }
        /// NUL-separated, as `Store.joinArgv`.
        mutating func argv(_ v: [String]) {
            index += 1
            let bytes = Store.joinArgv(v)
            // Empty, not NULL: the column is NOT NULL.
            guard !bytes.isEmpty else { sqlite3_bind_zeroblob(handle, index, 0); return }
            bytes.withUnsafeBytes { u in
                _ = sqlite3_bind_blob(handle, index, u.baseAddress, Int32(u.count), RawStatement.transient)
            }
        }
    }

    func begin() -> Binder {
        sqlite3_reset(handle)
        return Binder(handle: handle)
    }

    /// A result row, read by column index.
    struct RawRow {
        let handle: OpaquePointer
        func isNull(_ i: Int32) -> Bool { sqlite3_column_type(handle, i) == SQLITE_NULL }
        func int(_ i: Int32) -> Int64 { sqlite3_column_int64(handle, i) }
        func optInt(_ i: Int32) -> Int64? { isNull(i) ? nil : int(i) }
        func text(_ i: Int32) -> String {
            guard let p = sqlite3_column_text(handle, i) else { return "" }
            return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i))), as: UTF8.self)
        }
        func optText(_ i: Int32) -> String? { isNull(i) ? nil : text(i) }
        func blob(_ i: Int32) -> [UInt8] {
            guard let p = sqlite3_column_blob(handle, i) else { return [] }
            return Array(UnsafeRawBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i))))
        }
    }

    /// Steps through the rows the bound statement returns; `body` returns false to stop.
    func rows(_ body: (RawRow) throws -> Bool) throws {
        defer { sqlite3_reset(handle) }
        while true {
            let rc = sqlite3_step(handle)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else {
                throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
            }
            guard try body(RawRow(handle: handle)) else { return }
        }
    }

    /// Runs an INSERT … ON CONFLICT DO UPDATE: the new row's id when it inserted, nil when it
    /// updated (SQLite changes the last insert rowid only on insert; RETURNING costs more).
    func runInsert() throws -> Int64? {
        let conn = db.sqliteConnection
        let before = sqlite3_last_insert_rowid(conn)
        try run()
        let after = sqlite3_last_insert_rowid(conn)
        return after != before ? after : nil
    }

    /// Steps to completion (the batch writer's statements return no rows).
    func run() throws {
        var rc = sqlite3_step(handle)
        while rc == SQLITE_ROW { rc = sqlite3_step(handle) }
        guard rc == SQLITE_DONE else {
            let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
            sqlite3_reset(handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: message)
        }
        sqlite3_reset(handle)
    }
}

extension Store {
    static func rulesJSON(_ rules: [String]) -> String {
        (try? JSONEncoder().encode(rules)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    }

    /// The enforcement fields of an image row (nil when no rule matched it).
    static func enforcement(_ row: Row) -> Enforcement? {
        guard let message: String = row["enforcement"] else { return nil }
        let rules = (row["enforcement_rules"] as String?).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
        let tier = (row["enforcement_tier"] as String?).flatMap(EnforcementTier.init(rawValue:))
        return Enforcement(rules: rules, tier: tier, blocked: (row["enforcement_blocked"] as Bool?) ?? false, message: message)
    }
}
