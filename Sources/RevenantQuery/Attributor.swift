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
        var stored = try store.processes(Attributor.sample(refs, newest: Attributor.instanceLimit, spread: Attributor.instanceLimit))
        if !stored.contains(where: { $0.record.id == target.record.id }) { stored.append(target) }
        let instances = try stored.map { s throws(StoreError) in
            Instance(process: s.record, ancestry: try store.ancestry(of: s).map(\.record),
                     startWallNs: s.startWallNs, exitWallNs: s.exitWallNs)
        }
        var rep = report(grouping: instances, target: target.record.id, root: root, reader: reader)
        rep.program = program?.key
        if rep.first_instance_wall_ns == nil { rep.first_instance_wall_ns = instances.map(\.startWallNs).min() }
        if root == "/" { provenance(&rep, store: store) }
        if total > stored.count {
            // Beyond the newest 512, counted up to `countCap`: rows along the program index, leaves
            // by the command lines the newest ran, from the batches' key counts (older variants may
            // be missed: "at least").
            let counted = total < Attributor.scanLimit ? nil : try? store.instanceCount(program: program!, commandLines: commandLines, cap: Attributor.countCap)
            let all = counted.map { "\($0.capped ? "more than" : "at least") \($0.count)" } ?? "\(total)"
            rep.evidence.append("\(all) instances of the program on record; \(stored.count) of them (the newest and a spread of older ones) were analysed")
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
        case .systemdService, .systemdTimer, .systemdUserUnit: (rep.unit, "systemctl", ["start", "restart", "enable", "reenable", "try-restart", "reload-or-restart"])
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

    public static func report(_ f: Finding, instances: [Instance], root: String, reader: ProcReader) -> RespawnReport {
        func proc(_ r: ProcessRecord?) -> RespawnReport.Proc? {
            r.map { RespawnReport.Proc(pid: $0.id.pid, id: $0.id.description, exe: $0.image?.filename, argv: $0.image?.argv ?? [], comm: $0.name) }
        }
        // Read configuration as the spawner sees it while it lives.
        var cfgRoot = root
        if let s = f.spawner, let now = reader.identity(s.id.pid), now.sameTick(s.id),
           let theirs = fileID("/proc/\(s.id.pid)/root/"), theirs != fileID(root) {
            cfgRoot = "/proc/\(s.id.pid)/root"
        }
        let latest = instances.max { $0.startWallNs < $1.startWallNs }
        let workerArgv = latest?.process.image?.argv ?? []
        var f = f
        // A live instance carries its manager's markers in its environment.
        let markers = latest.map { reader.markers($0.process.id) } ?? [:]
        if let t = markers["TRIGGER_UNIT"] { f.evidence.append("environment: TRIGGER_UNIT=\(t)") }
        if let p = markers["SUPERVISOR_PROCESS_NAME"] {
            f.evidence.append("environment: SUPERVISOR_PROCESS_NAME=\(p)")
            if f.mechanism == .unknown { f.mechanism = .supervisord; f.confidence = .medium }
        }
        var source: ConfigSource?
        var remediation: [String] = []
        var containerSettings: [String: String] = [:]
        switch f.mechanism {
        case .systemdService, .systemdUserUnit, .systemdTimer:
            let sd = SystemdReader(root: cfgRoot)
            if let u = f.unit { source = sd.unit(u) }
            // A timer is the respawner when one triggers the unit: name it and its trigger line.
            if let u = f.unit, f.mechanism != .systemdUserUnit, let t = sd.timer(for: u) {
                f.mechanism = .systemdTimer
                f.evidence.append("\(u) is started by \(t.settings["timer"] ?? "a timer") (\(t.file):\(t.line))")
                var timer = t
                if let s = source {
                    timer.notes.append("service unit \(s.file):\(s.line)  \(s.text)")
                    timer.settings.merge(s.settings) { a, _ in a }
                }
                source = timer
            } else if markers["TRIGGER_UNIT"]?.hasSuffix(".timer") == true {
                f.mechanism = .systemdTimer
            }
            if source == nil, let u = f.unit { remediation = ["systemctl disable --now \(u)"] }
        case .cron:
            if let c = f.command { source = CronReader(root: cfgRoot).find(command: c, worker: workerArgv) }
        case .supervisord:
            source = SupervisorReader(root: cfgRoot).find(supervisordArgv: f.spawner?.image?.argv ?? [],
                                                            cwd: f.spawner?.image?.cwd, workerArgv: workerArgv)
        case .shellLoop, .rcLocal:
            // The script file the loop's shell reads, if it reads one (not a -c string, not stdin):
            // named on the spawner's command line, so read only as its user could.
            let img = f.spawner?.image
            if var script = ShellInvocation.scriptFile(img?.argv ?? []) {
                if !script.hasPrefix("/"), let cwd = img?.cwd, cwd.hasPrefix("/") { script = cwd + "/" + script }
                if script.hasPrefix("/") {
                    switch ScriptReader(root: cfgRoot).lookup(in: script, command: workerArgv, user: img.map { ($0.uid, $0.gid) }) {
                    case .success(let s?): source = s
                    case .success(nil): f.evidence.append("no line of \(script) runs the program")
                    case .failure(let why): f.evidence.append("source not readable: \(script): \(why)")
                    }
                }
            }
            if source == nil, f.launcherMechanism == .rcLocal || f.mechanism == .rcLocal {
                source = ScriptReader(root: cfgRoot).find(in: "/etc/rc.local", command: workerArgv)
            }
            // A loop written inline (`sh -c 'while …'`): its text is configured where its
            // launcher's configuration runs it.
            if source == nil, let img, let c = img.argv.firstIndex(of: "-c"), c + 1 < img.argv.count {
                source = inlineLoopSource(f, loop: img.argv[c + 1], root: cfgRoot, worker: workerArgv)
                if source == nil { f.evidence.append("the loop is inline (sh -c); no configuration file of its launcher holds it") }
            }
            if let s = f.spawner {
                remediation = ["kill \(s.id.pid)   # the loop shell \(s.id) first, or it starts the worker again",
                               "pkill -f -- \(shellQuote("^" + regexEscape(workerArgv.joined(separator: " "))))"]
            }
            if let src = source, src.remediation.isEmpty {
                remediation.append("# then remove or comment out \(commentSafe(RootFS(root: cfgRoot).path(src.file))):\(src.line)")
            }
        case .container:
            if let u = f.unit {
                let parts = u.split(separator: " ")
                let engine = parts.first == "podman" ? "podman" : parts.first == "cri" ? "cri" : "docker"
                let short = parts.last.map(String.init) ?? u
                let monitor = instances.lazy.compactMap { o in o.ancestry.first { Attribution.managerMechanism([$0.name]) == .container } }.first
                let info = ContainerEngine.inspect(ContainerEngine.fromMonitor(monitor?.image?.argv ?? [], engine: engine, shortID: short))
                containerSettings = ["engine": info.engine + (info.engineVersion.map { " " + $0 } ?? ""), "container": info.name ?? info.id]
                containerSettings["image"] = info.image
                containerSettings["restart_policy"] = info.restartPolicy
                f.evidence.append("container \(info.name ?? short) (\(info.engine)\(info.engineVersion.map { " " + $0 } ?? "")), image \(info.image ?? "?"), restart policy \(info.restartPolicy ?? "unknown")"
                                  + (info.restartCount.map { ", restarted \($0) times" } ?? ""))
                remediation = info.remediation
            }
        default:
            break
        }
        if f.launcherMechanism == .rcLocal, let l = ScriptReader(root: cfgRoot).find(in: "/etc/rc.local", command: f.spawner?.image?.argv ?? []) {
            remediation.append("# started at boot by \(l.file):\(l.line): \(commentSafe(l.text))")
        }
        if let s = source { remediation = s.remediation + remediation }
        // Configuration lines are read now, not from the redacted store: hidden the same way.
        if var s = source {
            let hidden = Attributor.redact(s.text)
            if hidden != s.text {
                s.text = hidden
                let note = "# \(commentSafe(RootFS(root: cfgRoot).path(s.file))) line \(s.line) holds a secret (not printed): remove that line by hand (crontab -e, an editor)"
                remediation = remediation.map { Attributor.redact($0) == $0 ? $0 : note }
                s.remediation = s.remediation.map { Attributor.redact($0) == $0 ? $0 : note }
            }
            s.notes = s.notes.map(Attributor.redact)
            source = s
        }
        f.command = f.command.map(Attributor.redact)
        var settings = source?.settings ?? [:]
        settings.removeValue(forKey: "section_line")
        settings.merge(containerSettings) { a, _ in a }
        return RespawnReport(
            mechanism: f.mechanism, unit: f.unit, confidence: f.confidence,
            spawner: proc(f.spawner), launcher: proc(f.launcher), launcher_mechanism: f.launcherMechanism,
            command: f.command, source: source, config_root: source == nil ? nil : cfgRoot, settings: settings,
            remediation: remediation, evidence: f.evidence, instances: instances.count,
            gap_seconds: Array(Attribution.gaps(instances).suffix(8)),
            command_lines: Attributor.commandLines(instances))
    }

    /// Where an inline loop's text is configured: the unit's ExecStart=, the cron line, the
    /// supervisord program, by the launcher that started the loop's shell.
    static func inlineLoopSource(_ f: Finding, loop: String, root: String, worker: [String]) -> ConfigSource? {
        switch f.launcherMechanism {
        case .systemdService?, .systemdUserUnit?:
            return f.unit.flatMap { SystemdReader(root: root).unit($0, line: "ExecStart") }
        case .cron?:
            // The job's own `sh -c`, above the loop's shell, when the loop was started from one.
            let job = (f.launcher?.image?.argv).flatMap { a in a.firstIndex(of: "-c").flatMap { $0 + 1 < a.count ? a[$0 + 1] : nil } }
            return CronReader(root: root).find(command: job ?? loop, worker: worker)
        case .supervisord?:
            return SupervisorReader(root: root).find(supervisordArgv: f.launcher?.image?.argv ?? [], cwd: f.launcher?.image?.cwd,
                                                     workerArgv: f.spawner?.image?.argv ?? [])
        default:
            return nil
        }
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
