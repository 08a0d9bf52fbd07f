import Foundation
import RevenantCore
import RevenantStore
import RevenantHost

/// `timeline`: every start and end of one program, who spawned each, and what respawns it.
public struct TimelineQuery {
    public enum Program: Sendable {
        /// The program a PID's newest incarnation ran (its command line selects the instances).
        case pid(Int32)
        /// Processes whose exe path or arguments contain this text (`Image.runsProgram(matching:)`).
        case matching(String)
    }

    public struct Row: Sendable {
        public var process: ProcessRecord
        public var startWallNs: Int64
        public var exitWallNs: Int64?
        /// The exit status, or running / gone / gone with its exit not seen.
        public var how: String
        /// The fork-time parent, `name(pid)`, or `?`.
        public var spawnedBy: String
        /// Seconds since the previous instance started.
        public var gapSeconds: Double?
    }

    /// Instances that one respawner started (`Attribution.respawnGroups`): a lane of the picture.
    public struct Lane: Sendable {
        /// `systemd service training-worker.service (systemd(1))`, `cron (cron(512))`…
        public var label: String
        /// Indices into `rows`.
        public var rows: [Int]
    }

    public struct Answer: Sendable {
        public var rows: [Row]
        public var lanes: [Lane] = []
        public var respawn: RespawnReport
        /// Trace gaps from the first instance's start on: instances may be missing there.
        public var gaps: [TraceGap] = []
    }

    /// The newest instances shown, at most.
    public static let instanceLimit = 100_000

    public var program: Program
    public var db: String
    public var root = "/"

    public init(program: Program, db: String) { self.program = program; self.db = db }

    public func run() throws -> Answer {
        let store: Store
        do { store = try Store(path: db, readOnly: true) } catch { throw QueryError.storeUnreadable("cannot read \(error.description)") }
        var stored: [StoredProcess]
        switch program {
        case .pid(let pid):
            guard let latest = try store.incarnations(pid: pid).first else { throw QueryError.unknown("no process with PID \(pid) on record in \(db)") }
            stored = try latest.record.image.map { try store.instances(argv: $0.argv, limit: TimelineQuery.instanceLimit) } ?? [latest]
        case .matching(let text):
            stored = try store.matching(text, limit: TimelineQuery.instanceLimit).filter { s in s.record.images.contains { $0.runsProgram(matching: text) } }
            // One program: the command line that ran most often among the matches.
            let groups = Dictionary(grouping: stored) { $0.record.image?.argv ?? [] }
            if let top = groups.max(by: { $0.value.count < $1.value.count }) { stored = top.value }
            guard !stored.isEmpty else { throw QueryError.unknown("no process matching \(text) on record in \(db)") }
        }
        stored.sort { $0.startWallNs < $1.startWallNs }
        let chains = try store.ancestries(of: stored)
        let instances = zip(stored, chains).map { s, chain in
            Instance(process: s.record, ancestry: chain.map(\.record), startWallNs: s.startWallNs, exitWallNs: s.exitWallNs)
        }
        let reader = ProcReader()
        let boots = Dictionary(stored.map { ($0.record.id, $0.boot) }, uniquingKeysWith: { a, _ in a })
        let groups = Attribution.respawnGroups(instances)
        var report = Attributor.report(grouping: instances, target: nil, root: root, reader: reader, groups: groups)
        if root == "/" { Attributor.provenance(&report, store: store) }
        var rows: [Row] = []
        var prev: Int64?
        for i in instances {
            let how = i.process.exitStatus?.description
                ?? (i.process.exited ? "gone" : reader.isRunning(i.process.id, boot: boots[i.process.id] ?? "") ? "running" : "gone, exit not seen")
            rows.append(Row(process: i.process, startWallNs: i.startWallNs, exitWallNs: i.exitWallNs, how: how,
                            spawnedBy: i.ancestry.first.map { "\($0.name)(\($0.id.pid))" } ?? "?",
                            gapSeconds: prev.map { Double(i.startWallNs - $0) / 1e9 }))
            prev = i.startWallNs
        }
        let gaps = try rows.first.map { try store.gaps(fromWallNs: $0.startWallNs) } ?? []
        var index: [Identity: Int] = [:]
        for (k, r) in rows.enumerated() { index[r.process.id] = k }
        let lanes = groups.map { g -> Lane in
            let f = Attribution.analyze(g)
            let who = f.spawner.map { " (\($0.name)(\($0.id.pid)))" } ?? ""
            return Lane(label: "\(f.mechanism.rawValue)\(f.unit.map { " " + $0 } ?? "")\(who)", rows: g.compactMap { index[$0.process.id] }.sorted())
        }
        return Answer(rows: rows, lanes: lanes, respawn: report, gaps: gaps)
    }
}
