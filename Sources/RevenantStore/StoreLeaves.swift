import Foundation
import GRDB
import RevenantCore
import RevenantHost

/// Leaf batches: see `StoreBatch.leaves` and migration v8. Every read of the store that can
/// return an exited process reads them too; ancestry does not (a leaf is nobody's parent).
extension Store {
    static func writeLeaves(_ batch: StoreBatch, boot: Int64, _ db: Database) throws {
        let l = batch.leaves
        let st = try RawStatement(db.cachedStatement(sql: """
            INSERT INTO leaf_batch (boot, first_wall_ns, last_wall_ns, count, pids, keys, records) VALUES (?, ?, ?, ?, ?, ?, ?)
            """), db)
        var b = st.begin()
        b.int(boot); b.int(batch.bootEpochNs + Int64(l.first)); b.int(batch.bootEpochNs + Int64(l.last))
        b.int(Int64(l.count)); b.bytes(l.pids, asText: true); b.bytes(l.keys()); b.bytes(l.records.bytes)
        try st.run()
        try indexPids(l.buckets, batch: db.lastInsertedRowID, db)
    }

    /// The PID index of leaf batches: which batches hold a PID of each bucket (`LeafBatch.buckets`).
    /// A lookup reads the few batches of its bucket, not every batch's PID list.
    static func indexPids(_ buckets: some Sequence<Int32>, batch: Int64, _ db: Database) throws {
        let st = try RawStatement(db.cachedStatement(sql: "INSERT OR IGNORE INTO leaf_pid (bucket, batch) VALUES (?, ?)"), db)
        for k in buckets {
            var b = st.begin()
            b.int(Int64(k)); b.int(batch)
            try st.run()
        }
    }

    /// The buckets of a batch's ",pid,pid," list (migrating batches written before the index).
    static func buckets(ofPids text: String) -> Set<Int32> {
        Set(text.split(separator: ",").compactMap { Int32($0).map { $0 >> LeafBatch.bucketShift } })
    }

    /// The leaves of batches matching `condition` (SQL on `l`, the batch), newest batch first;
    /// `body` returns false to stop.
    /// `pidsUpTo`: stop decoding a batch after the last record whose PID is this one (records
    /// are in the order of the batch's PID list).
    static func forEachLeaf(_ db: Database, where condition: String, _ arguments: StatementArguments,
                            pidsUpTo pid: Int32? = nil, _ body: (StoredProcess) throws -> Bool) throws {
        let rows = try Row.fetchCursor(db.cachedStatement(sql: """
            SELECT b.id, b.epoch_ns, l.records, \(pid == nil ? "NULL" : "l.pids") FROM leaf_batch l JOIN boot b ON b.n = l.boot
            WHERE \(condition) ORDER BY l.id DESC
            """), arguments: arguments)
        var stop = false
        while !stop, let row = try rows.next() {
            let boot: String = row[0], epoch: Int64 = row[1]
            let data: Data = row[2]
            var left = Int.max
            if let pid, let pids: String = row[3] { left = Store.lastIndex(of: pid, in: pids).map { $0 + 1 } ?? 0 }
            var failure: (any Error)?
            try LeafCodec.forEach([UInt8](data)) { r in
                guard left > 0 else { return false }
                left -= 1
                let p = StoredProcess(boot: boot, record: r, startWallNs: epoch + Int64(r.id.startNs),
                                      exitWallNs: r.exitTime.map { epoch + Int64($0) })
                do { stop = !(try body(p)) } catch { failure = error; stop = true }
                return !stop
            }
            if let failure { throw failure }
        }
    }

    /// The position in a ",pid,pid," list of the last entry that is `pid`.
    static func lastIndex(of pid: Int32, in pids: String) -> Int? {
        let needle = Array(",\(pid),".utf8), list = Array(pids.utf8)
        var found: Int?, entry = 0, i = 0
        // Entry k starts at the k-th comma.
        while i + needle.count <= list.count {
            if list[i] == UInt8(ascii: ",") {
                if list[i..<i + needle.count].elementsEqual(needle) { found = entry }
                entry += 1
            }
            i += 1
        }
        return found
    }

    /// Leaves with this PID, of any boot.
    static func leaves(_ db: Database, pid: Int32) throws -> [StoredProcess] {
        var out: [StoredProcess] = []
        try forEachLeaf(db, where: "l.id IN (SELECT batch FROM leaf_pid WHERE bucket = ?) AND instr(l.pids, ?) > 0",
                        [pid >> LeafBatch.bucketShift, ",\(pid),"], pidsUpTo: pid) { p in
            if p.record.id.pid == pid { out.append(p) }
            return true
        }
        return out
    }

    /// How many leaves ran exactly this command line, from each batch's counts.
    static func leafCount(_ db: Database, argv: [String]) throws -> Int {
        try leafCount(db, argvs: [argv])
    }

    /// How many leaves ran exactly one of these command lines, newest batch first, stopping
    /// once `upTo` are counted: one pass over the batches' keys.
    static func leafCount(_ db: Database, argvs: Set<[String]>, upTo: Int = .max) throws -> Int {
        let needles = Set(argvs.map { joinArgv($0) }.filter { !$0.isEmpty })
        guard !needles.isEmpty else { return 0 }
        var n = 0
        // One command line: SQLite skips the batches without it.
        let one = needles.count == 1 ? needles.first : nil
        let rows = try Row.fetchCursor(db.cachedStatement(sql: "SELECT keys FROM leaf_batch \(one == nil ? "" : "WHERE instr(keys, ?) > 0") ORDER BY id DESC"),
                                       arguments: one.map { [Data($0)] } ?? [])
        while n < upTo, let row = try rows.next() {
            let data: Data = row[0]
            var r = LeafCodec.Reader([UInt8](data))
            while true {
                let count = try r.uint()
                if count == 0 { break }
                if needles.contains(Array(try r.blob())) { n += Int(count) }
            }
        }
        return n
    }

    /// Leaves that ran exactly this command line, newest batch first, at most `limit`.
    static func leaves(_ db: Database, argv: [String], limit: Int) throws -> [StoredProcess] {
        var out: [StoredProcess] = []
        guard limit > 0, !argv.isEmpty else { return out }
        try forEachLeaf(db, where: "instr(l.keys, ?) > 0", [Data(joinArgv(argv))]) { p in
            if p.record.images.contains(where: { $0.argv == argv }) { out.append(p) }
            return out.count < limit
        }
        return out
    }

    /// Whether images run `program`, computed once per distinct executable, cwd and command
    /// line: a respawned program's leaves repeat a few of those, and deriving the identity
    /// (paths normalised, the script found) was most of a who-spawned on a big store.
    struct ProgramMatcher {
        let program: Program
        var known: [String: Bool] = [:]
        mutating func runs(_ i: Image) -> Bool {
            let key = i.filename + "\u{0}" + (i.cwd ?? "") + "\u{0}" + i.argv.joined(separator: "\u{0}")
            if let k = known[key] { return k }
            let r = i.program == program
            if known.count < 4096 { known[key] = r }
            return r
        }
    }

    /// Leaves that ran this program, newest batch first, at most `limit`.
    static func leaves(_ db: Database, program: Program, limit: Int) throws -> [StoredProcess] {
        var out: [StoredProcess] = []
        guard limit > 0 else { return out }
        var m = ProgramMatcher(program: program)
        try forEachLeaf(db, where: "instr(l.keys, ?) > 0", [Data(program.needle.utf8)]) { p in
            if p.record.images.contains(where: { m.runs($0) }) { out.append(p) }
            return out.count < limit
        }
        return out
    }

    /// How many leaves ran this program (decoding each batch that may hold it).
    static func leafCount(_ db: Database, program: Program) throws -> Int {
        var n = 0
        var m = ProgramMatcher(program: program)
        try forEachLeaf(db, where: "instr(l.keys, ?) > 0", [Data(program.needle.utf8)]) { p in
            if p.record.images.contains(where: { m.runs($0) }) { n += 1 }
            return true
        }
        return n
    }

    /// Leaves whose exe or command line (NUL-separated) contains `text`, byte for byte as SQLite's instr.
    static func leaves(_ db: Database, containing text: String, limit: Int) throws -> [StoredProcess] {
        var out: [StoredProcess] = []
        let needle = Array(text.utf8)
        guard limit > 0 else { return out }
        try forEachLeaf(db, where: "instr(l.keys, ?) > 0", [Data(needle)]) { p in
            if p.record.images.contains(where: { imageContains($0, needle) }) { out.append(p) }
            return out.count < limit
        }
        return out
    }

    static func imageContains(_ i: Image, _ needle: [UInt8]) -> Bool {
        ByteSearch.contains(joinArgv(i.argv), needle) || ByteSearch.contains(Array(i.filename.utf8), needle)
    }

    /// Newest first by start, at most `limit`: rows and leaves together.
    static func newestFirst(_ a: [StoredProcess], _ b: [StoredProcess], limit: Int) -> [StoredProcess] {
        guard !b.isEmpty else { return a }
        // Positions are sorted, not the processes: each move of one copies all its fields.
        let all = a + b
        return all.indices.sorted { all[$0].startWallNs > all[$1].startWallNs }.prefix(limit).map { all[$0] }
    }
}
