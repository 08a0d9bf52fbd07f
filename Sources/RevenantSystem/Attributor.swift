import Foundation
import RevenantCore

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
        /// How people see it named: its program, else its comm.
        public var name: String { argv.first.map { ($0 as NSString).lastPathComponent } ?? comm }
    }
    public var mechanism: String
    public var unit: String?
    public var confidence: String
    public var spawner: Proc?
    public var launcher: Proc?
    public var launcher_mechanism: String?
    public var command: String?
    public var source: ConfigSource?
    public var config_root: String?
    public var settings: [String: String]
    public var remediation: [String]
    public var evidence: [String]
    public var instances: Int
    public var gap_seconds: [Double]
    /// Other respawners of the same program, active in the window: most recent first.
    public var also_respawned_by: [Also] = []

    public struct Also: Sendable, Encodable {
        public var mechanism: String
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
        let argv = target.record.image?.argv ?? []
        // The 16 newest instances settle the spawner and the recent gaps; older ones only cost
        // queries (a program respawned every minute for a day has 1,440).
        var stored = argv.isEmpty ? [target] : try store.instances(argv: argv, limit: Attributor.instanceLimit)
        if !stored.contains(where: { $0.record.id == target.record.id }) { stored.append(target) }
        let instances = try stored.map { s throws(StoreError) in
            Instance(process: s.record, ancestry: try store.ancestry(of: s).map(\.record),
                     startWallNs: s.startWallNs, exitWallNs: s.exitWallNs)
        }
        var rep = report(grouping: instances, target: target.record.id, root: root, reader: reader)
        if rep.also_respawned_by.isEmpty, stored.count >= Attributor.instanceLimit, !argv.isEmpty,
           let total = try? store.instanceCount(argv: argv), total > rep.instances {
            rep.evidence.append("\(total) instances on record; the newest \(rep.instances) were analysed")
            rep.instances = total
        }
        return rep
    }

    static let instanceLimit = 16

    /// What respawns `target` (the newest instance when nil), from the instances that share
    /// its respawner, and the other respawners of the program after it (at most 4).
    public static func report(grouping instances: [Instance], target: Identity?, root: String, reader: ProcReader) -> RespawnReport {
        let groups = Attribution.respawnGroups(instances, target: target)
        guard let mine = groups.first else { return report(Attribution.analyze(instances), instances: instances, root: root, reader: reader) }
        var rep = report(Attribution.analyze(mine), instances: mine, root: root, reader: reader)
        rep.also_respawned_by = groups.dropFirst().prefix(4).map { g in
            let r = report(Attribution.analyze(g), instances: g, root: root, reader: reader)
            return RespawnReport.Also(mechanism: r.mechanism, unit: r.unit, spawner: r.spawner,
                                      source: r.source.map { "\($0.file):\($0.line)" }, instances: g.count,
                                      last_start_wall_ns: g.map(\.startWallNs).max() ?? 0)
        }
        return rep
    }

    public static func report(_ f: Finding, instances: [Instance], root: String, reader: ProcReader) -> RespawnReport {
        func proc(_ r: ProcessRecord?) -> RespawnReport.Proc? {
            r.map { RespawnReport.Proc(pid: $0.id.pid, id: $0.id.description, exe: $0.image?.filename, argv: $0.image?.argv ?? [], comm: $0.name) }
        }
        // Read configuration as the spawner sees it while it lives.
        var cfgRoot = root
        if let s = f.spawner, let now = reader.identity(s.id.pid), now.sameTick(s.id),
           FileManager.default.fileExists(atPath: "/proc/\(s.id.pid)/root/") {
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
            if let c = f.command { source = CronReader(root: cfgRoot).find(command: c) }
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
            if let s = f.spawner {
                remediation = ["kill \(s.id.pid)   # the loop shell \(s.id) first, or it starts the worker again",
                               "pkill -f -- \(shellQuote("^" + regexEscape(workerArgv.joined(separator: " "))))"]
            }
            if let src = source { remediation.append("# then remove or comment out \(commentSafe(src.file)):\(src.line)") }
        case .container:
            if let u = f.unit {
                let parts = u.split(separator: " ")
                let tool = parts.first == "podman" ? "podman" : parts.first == "cri" ? "crictl" : "docker"
                let id = parts.last.map(String.init) ?? u
                remediation = tool == "crictl" ? ["crictl stop \(id)   # then fix the pod spec: the kubelet recreates it"]
                    : ["\(tool) update --restart=no \(id)   # a restart policy brings it back", "\(tool) stop \(id)"]
            }
        default:
            break
        }
        if f.launcherMechanism == .rcLocal, let l = ScriptReader(root: cfgRoot).find(in: "/etc/rc.local", command: f.spawner?.image?.argv ?? []) {
            remediation.append("# started at boot by \(l.file):\(l.line): \(commentSafe(l.text))")
        }
        if let s = source { remediation = s.remediation + remediation }
        var settings = source?.settings ?? [:]
        settings.removeValue(forKey: "section_line")
        return RespawnReport(
            mechanism: f.mechanism.rawValue, unit: f.unit, confidence: f.confidence.rawValue,
            spawner: proc(f.spawner), launcher: proc(f.launcher), launcher_mechanism: f.launcherMechanism?.rawValue,
            command: f.command, source: source, config_root: source == nil ? nil : cfgRoot, settings: settings,
            remediation: remediation, evidence: f.evidence, instances: instances.count,
            gap_seconds: Attribution.gaps(instances))
    }
}
