import Foundation
import RevenantCore
import RevenantStore
import RevenantHost

/// Why a query has no answer: the store cannot be read (exit 2), or it holds nothing of what
/// was asked (exit 1).
public enum QueryError: Error, CustomStringConvertible {
    case storeUnreadable(String)
    case unknown(String)
    public var description: String {
        switch self { case .storeUnreadable(let s), .unknown(let s): s }
    }
}

/// One incarnation of a PID: from the store, or read live from /proc.
public struct Incarnation: Sendable {
    public var record: ProcessRecord
    public var boot: String
    public var startWallNs: Int64
    public var exitWallNs: Int64?
    public var goneByWallNs: Int64?
    public var fromProc: Bool

    init(stored s: StoredProcess) {
        record = s.record; boot = s.boot; startWallNs = s.startWallNs; exitWallNs = s.exitWallNs
        goneByWallNs = s.goneByWallNs; fromProc = false
    }

    init(proc r: ProcessRecord) {
        record = r
        boot = BootClock.bootID()
        startWallNs = BootClock().bootEpochNs + Int64(r.id.startNs)
        exitWallNs = nil
        fromProc = true
    }

    var stored: StoredProcess {
        StoredProcess(boot: boot, record: record, startWallNs: startWallNs, exitWallNs: exitWallNs, goneByWallNs: goneByWallNs)
    }
}

/// A process in an answer, with what is known of its life.
public struct LineageEntry: Sendable {
    public var record: ProcessRecord
    public var startWallNs: Int64
    public var exitWallNs: Int64?
    /// No exit recorded, yet no longer running.
    public var goneUnseen: Bool
    /// ...and known gone by then: it ended while no daemon traced.
    public var goneByWallNs: Int64?
    public var fromProc: Bool
}

/// `who-spawned`: a process, its incarnations, its fork-time ancestry nearest first, why the
/// chain ends where it does, and what respawns it.
public struct WhoSpawnedAnswer: Sendable {
    public let target: LineageEntry
    public let ancestry: [LineageEntry]
    public let incarnations: [Incarnation]
    /// Stored incarnations without a recorded exit that are running now.
    public let running: Set<Identity>
    public let chosen: Incarnation
    public var respawn: RespawnReport?
    /// Why the chain stops where it does.
    public let end: String?
    public let note: String?
    /// Trace gaps (events lost, changes not written) during which a link of this lineage
    /// started: a fork or exec there may be missing, so the chain may skip a process.
    public var uncertain: [(gap: TraceGap, pid: Int32)] = []
}

/// Which incarnation of a PID a query is about.
public enum IncarnationChoice: Sendable {
    case newest
    /// As printed, e.g. `7085@1234.567890123` (tick precision matches either way).
    case identity(Identity)
    /// The one alive at this wall-clock time.
    case aliveAt(Int64, shown: String)
}

public struct WhoSpawnedQuery {
    public var pid: Int32
    public var db: String
    public var choice: IncarnationChoice = .newest
    /// Where configuration is read when the spawner is gone.
    public var root = "/"

    public init(pid: Int32, db: String) { self.pid = pid; self.db = db }

    public func run() throws -> WhoSpawnedAnswer {
        var note: String?
        let store: Store?
        do {
            store = try Store(path: db, readOnly: true)
        } catch {
            store = nil
            note = "cannot read \(error.description)"
        }
        let procs = ProcReader()
        let live = procs.record(pid)
        let thisBoot = ProcReader.currentBoot
        var stored = try store?.incarnations(pid: pid) ?? []
        // A process younger than the daemon's last flush: wait for the next one rather than fall
        // back to /proc's current parents, or (ended since) answer that the PID is unknown. Ended:
        // this boot has no record of the PID, or its newest one was still running at that flush.
        let newestHere = stored.first { $0.boot == thisBoot }
        let unflushed = live.map { l in !stored.contains { $0.boot == thisBoot && $0.record.id.sameTick(l.id) } }
            ?? newestHere.map { $0.exitWallNs == nil && $0.goneByWallNs == nil } ?? true
        if unflushed, let store, store.daemonIsWriting() {
            FlushRequest.askOrWait(store)
            stored = try store.incarnations(pid: pid)
        }
        var incs = stored.map(Incarnation.init(stored:))
        if let live, !incs.contains(where: { $0.boot == thisBoot && $0.record.id.sameTick(live.id) }) {
            incs.insert(Incarnation(proc: live), at: 0)
            note = [note, "PID \(pid) is running but not in the store: lineage read from /proc (current parents, not fork-time)"]
                .compactMap { $0 }.joined(separator: "; ")
        }
        guard !incs.isEmpty else {
            if let note, store == nil { throw QueryError.storeUnreadable(note) }
            throw QueryError.unknown("no process with PID \(pid) on record in \(db), and none running")
        }
        let chosen = try select(incs)
        let chain = try ancestry(of: chosen, store: store, reader: procs)
        var answer = WhoSpawnedAnswer(
            target: entry(chosen.record, chosen.startWallNs, chosen.exitWallNs, goneBy: chosen.goneByWallNs, proc: chosen.fromProc,
                          boot: chosen.boot, reader: procs),
            ancestry: chain, incarnations: incs,
            running: Set(incs.filter { !$0.fromProc && !$0.record.exited && procs.isRunning($0.record.id, boot: $0.boot) }.map(\.record.id)),
            chosen: chosen, respawn: nil, end: Self.lineageEnd(chosen, chain: chain), note: note)
        if let store {
            answer.uncertain = Self.uncertain(answer, gaps: (try? store.gaps()) ?? [])
        }
        if let store, !chosen.fromProc {
            answer.respawn = try Attributor.report(for: chosen.stored, store: store, root: root, reader: procs)
        }
        return answer
    }

    /// The gaps a link's start (or the target's exec) falls in, this boot's links only.
    static func uncertain(_ a: WhoSpawnedAnswer, gaps: [TraceGap]) -> [(gap: TraceGap, pid: Int32)] {
        guard !gaps.isEmpty else { return [] }
        let epoch = a.target.startWallNs - Int64(a.target.record.id.startNs)
        let times = ([a.target] + a.ancestry).filter { !$0.record.seeded }.map { ($0.record.id.pid, $0.startWallNs) }
            + a.target.record.images.map { (a.target.record.id.pid, epoch + Int64($0.time)) }
        var out: [(gap: TraceGap, pid: Int32)] = []
        for g in gaps {
            if let hit = times.first(where: { g.fromWallNs <= $0.1 && $0.1 <= g.toWallNs }) { out.append((g, hit.0)) }
        }
        return out
    }

    private func select(_ incs: [Incarnation]) throws -> Incarnation {
        switch choice {
        case .newest:
            return incs[0]
        case .identity(let want):
            guard let hit = incs.first(where: { $0.record.id == want || (!want.precise || !$0.record.id.precise) && $0.record.id.sameTick(want) })
            else { throw QueryError.unknown("no incarnation of PID \(pid) has identity \(want)") }
            return hit
        case .aliveAt(let ns, let shown):
            guard let hit = incs.first(where: { $0.startWallNs <= ns && ($0.exitWallNs ?? Int64.max) >= ns })
            else { throw QueryError.unknown("no incarnation of PID \(pid) was alive at \(shown)") }
            return hit
        }
    }

    private func entry(_ r: ProcessRecord, _ start: Int64, _ exit: Int64?, goneBy: Int64? = nil, proc: Bool,
                       boot: String, reader: ProcReader) -> LineageEntry {
        LineageEntry(record: r, startWallNs: start, exitWallNs: exit, goneUnseen: !r.exited && !reader.isRunning(r.id, boot: boot),
                     goneByWallNs: goneBy, fromProc: proc)
    }

    /// Fork-time ancestors from the store; for a process only /proc knows, its current parents.
    private func ancestry(of inc: Incarnation, store: Store?, reader: ProcReader) throws -> [LineageEntry] {
        if inc.fromProc {
            var chain: [LineageEntry] = []
            var cur = inc.record.parent
            var seen: Set<Int32> = [inc.record.id.pid]
            let epoch = BootClock().bootEpochNs
            while let p = cur, !seen.contains(p.pid), let r = reader.record(p.pid) {
                chain.append(entry(r, epoch + Int64(r.id.startNs), nil, proc: true, boot: inc.boot, reader: reader))
                seen.insert(p.pid)
                cur = r.parent
            }
            return chain
        }
        guard let store else { return [] }
        return try store.ancestry(of: inc.stored).map {
            entry($0.record, $0.startWallNs, $0.exitWallNs, goneBy: $0.goneByWallNs, proc: false, boot: inc.boot, reader: reader)
        }
    }

    /// Why a chain ends where it does: nil when it reaches PID 1 or 2 on traced history.
    static func lineageEnd(_ inc: Incarnation, chain: [LineageEntry]) -> String? {
        let last = chain.last?.record ?? inc.record
        if inc.fromProc {
            return "read from /proc: these are current parents; a process adopted after its parent died shows the adopter"
        } else if let p = last.parent {
            return last.seeded && last.parentIsCurrentOnly && chain.last != nil
                ? "lineage above \(last.id.pid) is unknown: it was already running when revenant started (its parent then is shown)"
                : "parent \(p) of \(last.id.pid) is not on record (before revenant's history, or past retention)"
        } else if last.id.pid != 1 && last.id.pid != 2 {
            return last.seeded
                ? "lineage above \(last.id.pid) is unknown: it was already running when revenant started"
                : "lineage above \(last.id.pid) is unknown"
        } else if chain.contains(where: { $0.record.seeded && $0.record.parentIsCurrentOnly }) || inc.record.seeded {
            return "seeded processes were already running when revenant started: the parent shown is the one they had then, which may have adopted them"
        }
        return nil
    }
}
