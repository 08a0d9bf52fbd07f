import Foundation
import RevenantCore
import RevenantStore
import RevenantHost

/// Attribution with its configuration source and remediation: what `who-spawned` prints
/// under "Respawned by" and `--json` carries as `respawned_by`.
public struct RespawnReport: Sendable, Encodable {
    public struct Proc: Sendable, Encodable {
        public var pid: Int32
        public var id: String
        public var exe: String?
        public var argv: [String]
        /// The kernel's name for it: known even when no exec of it is (a forked subshell).
        public var comm: String
        /// The kernel's name (the one lineage shows), else its program's.
        public var name: String { comm.isEmpty ? argv.first.map { ($0 as NSString).lastPathComponent } ?? "?" : comm }
    }
    public var mechanism: Mechanism
    public var unit: String?
    public var confidence: Finding.Confidence
    public var spawner: Proc?
    public var launcher: Proc?
    public var launcher_mechanism: Mechanism?
    public var command: String?
    public var source: ConfigSource?
    public var config_root: String?
    public var settings: [String: String]
    public var remediation: [String]
    public var evidence: [String]
    public var instances: Int
    public var gap_seconds: [Double]
    /// Executable + script: what the instances have in common, whatever their arguments.
    public var program: String?
    /// The distinct command lines of the instances answered, newest first (at most 5).
    public var command_lines: [String] = []
    /// Other respawners of the same program, active in the window: most recent first.
    public var also_respawned_by: [Also] = []
    /// The last changes to the source file while the daemon watched it, newest first.
    public var configured_by: [ConfigChange] = []
    /// The package manager or configuration-management agent that wrote the source file: it
    /// rewrites what it manages.
    public var managed_by: String?
    /// The commands that started or enabled it (`systemctl start|enable|restart UNIT`,
    /// `supervisorctl start|update|add PROGRAM`, `crontab` for a user's crontab), newest first.
    public var started_by: [Invocation] = []

    /// When the first of the instances answered started: what `started_by` is correlated with.
    public var first_instance_wall_ns: Int64?

    public struct Invocation: Sendable, Encodable {
        public var time_wall_ns: Int64
        public var command: String
        public var ancestry: String
        public var loginuid: UInt32?
        /// The login session it ran in (`Lineage.session`).
        public var session: String?
        /// The last invocation before the first instance: the one that started it.
        public var started_first_instance = false
        /// Seconds from it to the first instance, for that one.
        public var lead_seconds: Double?
    }

    /// What keeps a supervisor or loop alive, nearest first (its keeper, then the keeper's):
    /// answered as the program is, recursively.
    public var kept_alive_by: [Keeper] = []

    public struct Keeper: Sendable, Encodable {
        public var mechanism: Mechanism
        public var unit: String?
        public var spawner: Proc?
        /// `file:line` of its configuration, when found.
        public var source: String?
        public var source_text: String?
        public var evidence: [String]
        public var remediation: [String]
    }

    public struct Also: Sendable, Encodable {
        public var mechanism: Mechanism
        public var unit: String?
        public var spawner: Proc?
        /// `file:line` of its configuration, when found.
        public var source: String?
        public var instances: Int
        public var last_start_wall_ns: Int64
    }
}

public enum Attributor {
    /// `root`: where to read configuration when the spawner is gone (fixture trees in tests).
    public static func report(for target: StoredProcess, store: Store, root: String = "/",
                              reader: ProcReader = ProcReader()) throws(StoreError) -> RespawnReport {
        let program = target.record.image?.program
        // The newest instances settle this one's respawner and the recent gaps; a spread of older
        // ones finds the program's other respawners over the day. Each costs an ancestry query.
        let refs = try program.map { p throws(StoreError) in try store.instanceRefs(program: p, limit: Attributor.scanLimit) } ?? []
        let total = max(refs.count, 1)
        let commandLines = Set(refs.compactMap(\.argv))
        let instances = try Attributor.instances(Attributor.sample(refs, newest: Attributor.instanceLimit, spread: Attributor.instanceLimit),
                                                 with: target, store: store)
        var rep = report(grouping: instances, target: target.record.id, root: root, reader: reader)
        rep.program = program?.key
        if rep.first_instance_wall_ns == nil { rep.first_instance_wall_ns = instances.map(\.startWallNs).min() }
        try keepers(&rep, store: store, root: root, reader: reader)
        if root == "/" { provenance(&rep, store: store) }
        if total > instances.count {
            // Beyond the newest 512, counted up to `countCap`: rows along the program index, leaves
            // by the command lines the newest ran, from the batches' key counts (older variants may
            // be missed: "at least").
            let counted = total < Attributor.scanLimit ? nil : try? store.instanceCount(program: program!, commandLines: commandLines, cap: Attributor.countCap)
            let all = counted.map { "\($0.capped ? "more than" : "at least") \($0.count)" } ?? "\(total)"
            rep.evidence.append("\(all) instances of the program on record; \(instances.count) of them (the newest and a spread of older ones) were analysed")
        }
        return rep
    }

    /// Who wrote the source, and whether a manager will write it again: said first in the remediation.
    /// `mtimeNs`: the file's modification time now; newer than every recorded change, it was
    /// changed while no daemon watched it.
    static func provenance(_ rep: inout RespawnReport, changes: [ConfigChange], mtimeNs: Int64? = nil) {
        rep.configured_by = changes
        if let m = mtimeNs, changes.allSatisfy({ $0.timeWallNs < m - 2_000_000_000 }) {
            let when = JSONBytes.isoString(m)
            rep.source?.notes.append("changed while not watched (mtime \(when)): its writer is not known" +
                                     (changes.isEmpty ? "" : "; the changes below are older"))
        }
        guard let last = changes.first, let agent = changes.lazy.compactMap(\.managedBy).first else { return }
        rep.managed_by = agent
        let when = Date(timeIntervalSince1970: Double(last.timeWallNs) / 1e9).formatted(.iso8601)
        rep.remediation.insert("# \(rep.source?.file ?? "this file") is managed by \(agent) (last written \(when) by \(Visible.escape(String(last.command.prefix(80))))): change it there, or it will be rewritten", at: 0)
    }

    /// The recorded changes to the report's source file (host paths only: what the daemon watched),
    /// and the commands that started the mechanism.
    /// Where the daemon sees a file a manager read under `root` (`/proc/PID/root` for one in
    /// its own mount namespace): what ConfigWatch marks and records.
    public static func hostPath(_ file: String, root: String?) -> String {
        guard let root, root != "/" else { return file }
        return root + (file.hasPrefix("/") ? file : "/" + file)
    }

    public static func provenance(_ rep: inout RespawnReport, store: Store) {
        rep.started_by = startedBy(rep, store: store)
        guard let file = rep.source.map({ hostPath($0.file, root: rep.config_root) }) else { return }
        var st = stat()
        let mtime = stat(file, &st) == 0 ? Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec) : nil
        let changes = (try? store.configChanges(path: file)) ?? []
        provenance(&rep, changes: changes, mtimeNs: mtime)
        if let lost = try? store.gaps(fromWallNs: changes.first?.timeWallNs ?? .min, configuration: true).last {
            let when = Date(timeIntervalSince1970: Double(lost.toWallNs) / 1e9).formatted(.iso8601)
            rep.source?.notes.append("configuration changes were dropped at \(when) (fanotify queue full): a later writer may be missing")
        }
    }

    /// Execs of the manager's control command naming what the report found (3): the newest
    /// three, and the last one before the first instance on record, which started it.
    static func startedBy(_ rep: RespawnReport, store: Store) -> [RespawnReport.Invocation] {
        let (needle, tool, verbs): (String?, String, Set<String>) = switch rep.mechanism {
        case .systemdService, .systemdTimer, .systemdUserUnit, .systemdPath, .systemdSocket: (rep.unit, "systemctl", ["start", "restart", "enable", "reenable", "try-restart", "reload-or-restart"])
        case .supervisord: (rep.settings["program"], "supervisorctl", ["start", "restart", "update", "add", "reload"])
        case .cron: (rep.source?.file.hasPrefix("/var/spool/cron/") == true ? "crontab" : nil, "crontab", [])
        default: (nil, "", [])
        }
        guard let needle, !needle.isEmpty, let named = try? store.matching(needle, limit: 200) else { return [] }
        let unitBase = needle.hasSuffix(".service") ? String(needle.dropLast(8)) : needle
        // Also the tool's newest runs: `systemctl restart worker` does not name `worker.service`.
        var seen = Set<Identity>()
        let found = (named + ((try? store.matching(tool, limit: 200)) ?? []))
            .filter { seen.insert($0.record.id).inserted }.sorted { $0.startWallNs > $1.startWallNs }
        var all: [(p: StoredProcess, img: Image)] = []
        for p in found {
            guard let img = p.record.images.first(where: { ($0.argv.first.map { ($0 as NSString).lastPathComponent }) == tool }) else { continue }
            let args = img.argv.dropFirst()
            if tool == "crontab" {
                // Installing or editing, not listing or removing.
                guard !args.contains("-l"), !args.contains("-r") else { continue }
            } else {
                guard args.contains(where: { verbs.contains($0) }),
                      args.contains(where: { $0 == needle || $0 == unitBase || $0 == needle + ":*" || $0.hasPrefix(needle + ":") }) || args.contains("update") || args.contains("reload")
                else { continue }
            }
            all.append((p, img))
        }
        var chosen = Array(all.prefix(3).indices)
        var first: Int?
        if let t0 = rep.first_instance_wall_ns, let i = all.firstIndex(where: { $0.p.startWallNs <= t0 }) {
            first = i
            if !chosen.contains(i) { chosen.append(i) }
        }
        return chosen.map { k in
            let (p, img) = all[k]
            let ancestors = (try? store.ancestry(of: p, limit: 32)) ?? []
            let chain = ancestors.prefix(6).map { "\($0.record.name)(\($0.record.id.pid))" }.joined(separator: " ← ")
            var inv = RespawnReport.Invocation(time_wall_ns: p.startWallNs, command: img.argv.joined(separator: " "), ancestry: chain,
                                               loginuid: img.loginuid, session: Lineage.session([p.record] + ancestors.map(\.record)))
            if k == first, let t0 = rep.first_instance_wall_ns {
                inv.started_first_instance = true
                inv.lead_seconds = Double(t0 - p.startWallNs) / 1e9
            }
            return inv
        }
    }

    static let instanceLimit = 16
    static let scanLimit = 512
    /// Stored rows counted for the evidence's total: counting is a walk along the program index.
    static let countCap = 10_000

    /// The `newest` first entries of a newest-first list, and `spread` more evenly spaced over the rest.
    static func sample<T>(_ all: [T], newest: Int, spread: Int) -> [T] {
        guard all.count > newest + spread else { return all }
        // From the oldest on: the morning's respawner is as likely to matter as the last hour's.
        let rest = all[newest...]
        let step = Double(rest.count) / Double(spread)
        return Array(all.prefix(newest)) + (0..<spread).map { rest[rest.endIndex - 1 - Int(Double($0) * step)] }
    }

    /// What respawns `target` (the newest instance when nil), from the instances that share
    /// its respawner, and the other respawners of the program after it (at most 4).
    /// `groups`: `Attribution.respawnGroups(instances, target:)` when the caller has them.
    public static func report(grouping instances: [Instance], target: Identity?, root: String, reader: ProcReader,
                              groups: [[Instance]]? = nil) -> RespawnReport {
        let groups = groups ?? Attribution.respawnGroups(instances, target: target)
        guard let mine = groups.first else { return report(Attribution.analyze(instances), instances: instances, root: root, reader: reader) }
        // Groups answered by the same configuration are one respawner: a unit or a cron line
        // forks through a new PID 1 or cron daemon every boot.
        var answered: [(key: String?, rep: RespawnReport, group: [Instance])] = []
        for g in groups.prefix(Attributor.groupLimit) {
            let r = report(Attribution.analyze(g), instances: g, root: root, reader: reader)
            let key = sourceKey(r)
            if let key, let at = answered.firstIndex(where: { $0.key == key }) {
                answered[at].group += g
            } else {
                answered.append((key, r, g))
            }
        }
        var rep = answered[0].rep
        let mineAll = answered[0].group
        rep.first_instance_wall_ns = mineAll.map(\.startWallNs).min()
        if mineAll.count > mine.count {
            let counts = Attribution.ancestorCounts(mineAll)
            let spawners = Set(mineAll.compactMap { Attribution.respawner(of: $0, counts: counts)?.id })
            rep.evidence.append("\(mineAll.count) instances under the same configuration, through \(spawners.count) spawner processes (across restarts or boots)")
            rep.instances = mineAll.count
            rep.evidence.removeAll { $0.hasPrefix("a single instance") }
            if rep.confidence == .medium, !mineAll.contains(where: { $0.process.seeded }) { rep.confidence = .high }
        }
        rep.also_respawned_by = answered.dropFirst().prefix(4).map { a in
            RespawnReport.Also(mechanism: a.rep.mechanism, unit: a.rep.unit, spawner: a.rep.spawner,
                               source: a.rep.source.map { "\($0.file):\($0.line)" }, instances: a.group.count,
                               last_start_wall_ns: a.group.map(\.startWallNs).max() ?? 0)
        }
        return rep
    }

    static let groupLimit = 8

    /// What identifies a respawner across its processes: its configuration line, else its unit.
    static func sourceKey(_ r: RespawnReport) -> String? {
        if let s = r.source { return "\(r.mechanism) \(s.file):\(s.line)" }
        if let u = r.unit, r.mechanism != .shellLoop { return "\(r.mechanism) \(u)" }
        return nil
    }

    /// Device and inode: two paths to one directory (a root seen through /proc) compare equal.
    static func fileID(_ path: String) -> [UInt64]? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return [UInt64(st.st_dev), UInt64(st.st_ino)]
    }

    /// A configuration line with the default redactions applied word by word.
    static func redact(_ line: String) -> String {
        redactor.apply(line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)).joined(separator: " ")
    }

    package static let redactor = Redactor()

    static func commandLines(_ instances: [Instance]) -> [String] {
        var seen = Set<[String]>(), out: [String] = []
        // Indices sorted, not the instances: each is a process with its images and ancestry.
        for i in instances.indices.sorted(by: { instances[$0].startWallNs > instances[$1].startWallNs }) {
            guard let argv = instances[i].process.image?.argv, seen.insert(argv).inserted else { continue }
            out.append(argv.joined(separator: " "))
            if out.count == 5 { break }
        }
        return out
    }
}
