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
    /// In a leaf batch: it comes whole, with no row to read.
    public var isLeaf: Bool { leaf != nil }
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
    let db: DatabaseQueue
    let opened: (dev: UInt64, ino: UInt64)

    /// Applied once, before this process opens its first connection.
    static let tuned: Int32 = rv_sqlite_tune()

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
}
