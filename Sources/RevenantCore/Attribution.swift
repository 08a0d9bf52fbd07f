/// What respawns a program.
public enum Mechanism: String, Sendable, Codable {
    case systemdService = "systemd service"
    case systemdTimer = "systemd timer"
    case systemdUserUnit = "systemd user unit"
    case cron
    case supervisord
    case rcLocal = "rc.local"
    case shellLoop = "shell loop"
    case container
    case pm2
    case runit = "runit/s6"
    case session = "login session"
    /// Any persistent process that forks every instance: a keep-alive script, a pre-fork master.
    case supervisor = "process supervisor"
    case tmux = "tmux session"
    case screen = "screen session"
    case systemdPath = "systemd path unit"
    case systemdSocket = "systemd socket unit"
    /// What keeps a supervisor alive, when nothing does: it was started once, by hand.
    case byHand = "started by hand"
    case unknown
}

/// One instance of the program: the process and its fork-time ancestors, nearest first.
public struct Instance: Sendable {
    public var process: ProcessRecord
    public var ancestry: [ProcessRecord]
    public var startWallNs: Int64
    public var exitWallNs: Int64?

    public init(process: ProcessRecord, ancestry: [ProcessRecord], startWallNs: Int64, exitWallNs: Int64?) {
        self.process = process; self.ancestry = ancestry; self.startWallNs = startWallNs; self.exitWallNs = exitWallNs
    }
}

/// The answer to "what keeps bringing this back", before configuration files are read.
public struct Finding: Sendable {
    public enum Confidence: String, Sendable, Codable { case high, medium, low }
    public var mechanism: Mechanism
    /// The process that forked each instance (or its nearest persistent ancestor).
    public var spawner: ProcessRecord?
    /// What started the spawner, when that is a mechanism too (rc.local starting a loop).
    public var launcher: ProcessRecord?
    public var launcherMechanism: Mechanism?
    /// systemd unit, supervisord program, cron command, container id… as far as lineage tells.
    public var unit: String?
    /// The command text the mechanism runs (cron's `sh -c` line, a loop's child command).
    public var command: String?
    public var confidence: Confidence
    public var evidence: [String]
    /// The tmux or screen session the spawner runs in.
    public var multiplexer: Multiplexer?
}

public enum Attribution {
    static var shells: Set<String> { ShellInvocation.shells }

    /// The nearest ancestor that is the same process in every instance's chain.
    public static func persistentSpawner(_ instances: [Instance]) -> ProcessRecord? {
        guard let first = instances.first else { return nil }
        for candidate in first.ancestry {
            if instances.dropFirst().allSatisfy({ $0.ancestry.contains { $0.id == candidate.id } }) { return candidate }
        }
        return nil
    }

    /// An instance's respawner: the nearest of its fork-time ancestors that is an ancestor of
    /// another instance too. nil when it shares none.
    public static func respawner(of o: Instance, among all: [Instance]) -> ProcessRecord? {
        respawner(of: o, counts: ancestorCounts(all))
    }

    /// `respawner(of:among:)` with `ancestorCounts(all)` counted once: linear in the instances,
    /// where asking each instance against all the others was quadratic (10,000 instances).
    public static func respawner(of o: Instance, counts: [Identity: Int]) -> ProcessRecord? {
        // o counts itself once for each of its ancestors: another instance makes it two.
        o.ancestry.first { (counts[$0.id] ?? 0) >= 2 }
    }

    /// For each process, how many of the instances have it among their ancestors.
    public static func ancestorCounts(_ all: [Instance]) -> [Identity: Int] {
        var counts: [Identity: Int] = [:]
        for i in all {
            for a in Set(i.ancestry.map(\.id)) where a != i.process.id { counts[a, default: 0] += 1 }
        }
        return counts
    }

    /// The instances grouped by respawner: `target`'s group first (the newest instance's when
    /// nil), then the others, most recent first. A host's history holds several respawners of
    /// one program, over a day or at once: each group is answered on its own.
    public static func respawnGroups(_ instances: [Instance], target: Identity? = nil) -> [[Instance]] {
        let sorted = instances.sorted { $0.startWallNs < $1.startWallNs }
        guard let first = sorted.last(where: { target == nil || $0.process.id == target }) ?? sorted.last else { return [] }
        // The respawner, and the configuration it acts for on the way to the instance: two units
        // under one PID 1, two lines under one cron daemon are two respawns.
        struct Key: Hashable { var respawner: Identity; var container: String? = nil; var scope: String }
        let counts = ancestorCounts(sorted)
        func key(_ o: Instance) -> Key {
            // A container's restarts each come through a new monitor: the container is the respawner.
            if let c = containerID(o.process.image?.cgroup ?? "") { return Key(respawner: Identity(pid: 0, startNs: 0), container: c, scope: "") }
            guard let r = respawner(of: o, counts: counts), let at = o.ancestry.firstIndex(where: { $0.id == r.id }) else {
                return Key(respawner: o.process.id, scope: "")   // shares no ancestor: a group of its own
            }
            return Key(respawner: r.id, scope: scope(of: o, respawnerAt: at))
        }
        var groups: [Key: [Instance]] = [:]
        var order: [Key] = []
        for o in sorted {
            let k = key(o)
            if groups[k] == nil { order.append(k) }
            groups[k, default: []].append(o)
        }
        let mine = key(first)
        let rest = order.filter { $0 != mine }.sorted {
            (groups[$0]?.last?.startWallNs ?? 0) > (groups[$1]?.last?.startWallNs ?? 0)
        }
        return ([mine] + rest).compactMap { groups[$0] }
    }

    public static func analyze(_ instances: [Instance]) -> Finding {
        var evidence: [String] = []
        let sorted = instances.sorted { $0.startWallNs < $1.startWallNs }
        guard let latest = sorted.last else {
            return Finding(mechanism: .unknown, confidence: .low, evidence: ["no instance on record"])
        }
        let several = sorted.count > 1
        let spawner = several ? persistentSpawner(sorted) : latest.ancestry.first
        let container = containerID(latest.process.image?.cgroup ?? "")
        if several, let c = container, sorted.allSatisfy({ containerID($0.process.image?.cgroup ?? "") == c }) {
            // Each restart comes through a new monitor: what they share above it is the engine's, not the respawner.
            evidence.append("\(sorted.count) instances, all in container \(c): each restart comes through a new monitor process")
        } else if several, let s = spawner {
            evidence.append("\(sorted.count) instances, each forked under \(s.name)(\(s.id.pid)) \(s.id)")
        } else if !several {
            evidence.append("a single instance: the spawner is its parent, not yet confirmed by a respawn")
        } else {
            evidence.append("\(sorted.count) instances share no ancestor on record")
        }
        let chain = latest.ancestry
        let cgroup = latest.process.image?.cgroup ?? ""
        var f = Finding(mechanism: .unknown, spawner: spawner, confidence: several ? .high : .medium, evidence: evidence)

        let spawnerAt = several ? spawner.flatMap { s in chain.firstIndex { $0.id == s.id } } : nil
        markManager(&f, chain: chain, latest: latest, spawnerAt: spawnerAt)
        if f.mechanism == .unknown, let s = spawner, let at = spawnerAt, isSupervisor(s), launchedDirectly(chain[..<at]) {
            markSupervisor(&f, s)
        }
        markByCgroup(&f, chain: chain, latest: latest, several: several)
        if f.mechanism == .supervisord || f.mechanism == .systemdService {
            f.unit = f.unit ?? (cgroup.hasSuffix(".service") ? cgroup : nil)
        }
        markLauncher(&f, chain: chain)
        if sorted.contains(where: { $0.process.seeded }) || chain.last?.seeded == true && chain.count < 2 {
            f.evidence.append("some lineage predates revenant (seeded from /proc): parents above are those seen at start")
            if f.confidence == .high { f.confidence = .medium }
        }
        if f.mechanism == .unknown {
            f.evidence.append("no known manager in the lineage; the spawner is shown as found")
            f.confidence = .low
        }
        return f
    }

    static func names(_ r: ProcessRecord) -> [String] {
        var out = [r.name]
        if let img = r.image { out += img.argv.prefix(3).map { String($0.split(separator: "/").last ?? "") } }
        return out
    }

    /// Lineage markers, nearest first: the first manager found is the direct respawner,
    /// unless a shell below it forked every instance: a loop the manager only launched.
    static func markManager(_ f: inout Finding, chain: [ProcessRecord], latest: Instance, spawnerAt: Int?) {
        let cgroup = latest.process.image?.cgroup ?? ""
        for (i, r) in chain.enumerated() {
            let n = names(r)
            if let si = spawnerAt, si < i, let m = managerMechanism(n),
               isShell(chain[si]) || isSupervisor(chain[si]) && launchedDirectly(chain[..<si]) {
                let s = chain[si]
                f.launcher = si + 1 < chain.count ? chain[si + 1] : nil
                f.launcherMechanism = m
                if isShell(s) {
                    f.mechanism = .shellLoop
                    f.spawner = s
                    f.evidence.append("\(s.name)(\(s.id.pid)) forked every instance: a shell loop launched under \(r.name)(\(r.id.pid)) (\(m.rawValue))")
                    if let img = latest.process.images.first, !img.argv.isEmpty { f.command = img.argv.joined(separator: " ") }
                } else {
                    markSupervisor(&f, s)
                    f.evidence.append("the supervisor was launched under \(r.name)(\(r.id.pid)) (\(m.rawValue))")
                }
                break
            }
            if n.contains("supervisord") {
                f.mechanism = .supervisord
                f.spawner = r
                f.evidence.append("forked by supervisord(\(r.id.pid)): \(r.image?.argv.joined(separator: " ") ?? "")")
                break
            }
            if n.contains(where: { $0 == "cron" || $0 == "crond" || $0 == "CRON" }) {
                f.mechanism = .cron
                // Debian: cron → CRON (per job) → sh -c CMD → … ; the daemon is the persistent one.
                let daemon = chain[i...].last { names($0).contains { $0 == "cron" || $0 == "crond" } } ?? r
                f.spawner = daemon
                // The job's `sh -c CMD`: a forking ancestor, or the worker itself before the shell exec'd it.
                let shellImages = chain[..<i].reversed().filter(isShell).compactMap(\.image) + latest.process.images.dropLast()
                for img in shellImages {
                    if let c = img.argv.firstIndex(of: "-c"), c + 1 < img.argv.count { f.command = img.argv[c + 1]; break }
                }
                f.evidence.append("cron job chain: " + chain[...i].reversed().map { "\($0.name)(\($0.id.pid))" }.joined(separator: " → "))
                if latest.process.adoptedBy != nil || chain.prefix(i).contains(where: { $0.exited }) {
                    f.evidence.append("the job's shell exited before the worker: double fork / nohup, adopted by \(latest.process.adoptedBy?.pid ?? 0)")
                }
                break
            }
            if n.contains(where: { $0.hasPrefix("containerd-shim") || $0 == "conmon" || $0 == "dockerd" }) {
                f.mechanism = .container; f.spawner = r
                f.unit = containerID(cgroup)
                f.evidence.append("forked under \(r.name)(\(r.id.pid))" + (f.unit.map { ", container \($0)" } ?? ""))
                break
            }
            if n.contains(where: { $0.hasPrefix("PM2") || $0 == "pm2" }) { f.mechanism = .pm2; f.spawner = r; break }
            if n.contains(where: { $0 == "runsv" || $0 == "s6-supervise" }) { f.mechanism = .runit; f.spawner = r; break }
    }
    }

    /// No manager in the lineage: the cgroup (a container, a unit, a session) or a long-lived shell says what it is.
    static func markByCgroup(_ f: inout Finding, chain: [ProcessRecord], latest: Instance, several: Bool) {
        let cgroup = latest.process.image?.cgroup ?? ""
        let spawner = f.spawner
        if f.mechanism == .unknown, let id = containerID(cgroup) {
            // The shim may predate us (seeded) or sit outside the chain; the cgroup still says so.
            f.mechanism = .container
            f.unit = id
            f.evidence.append("in container cgroup \(cgroup)")
    }
    if f.mechanism == .unknown {
        if cgroup.hasSuffix(".service"), let s = spawner, isSystemManager(s) {
            f.mechanism = cgroup == "rc-local.service" ? .rcLocal : .systemdService
            f.unit = cgroup
            f.evidence.append(s.id.pid == 1 ? "in cgroup \(cgroup), forked by PID 1"
                              : "in cgroup \(cgroup), forked by systemd(\(s.id.pid)), PID 1 of its own namespace")
        } else if cgroup.hasSuffix(".service"), let u = chain.first(where: { $0.name == "systemd" && !isSystemManager($0) }) {
            f.mechanism = .systemdUserUnit
            f.unit = cgroup
            f.spawner = u
            f.evidence.append("in cgroup \(cgroup), forked by the user manager systemd(\(u.id.pid))")
        } else if let s = spawner, isShell(s) {
            f.mechanism = .shellLoop
            f.evidence.append("\(s.name)(\(s.id.pid)) is a long-lived shell that forked every instance")
            if let img = latest.process.images.first, !img.argv.isEmpty { f.command = img.argv.joined(separator: " ") }
            if !several { f.confidence = .low }
        } else if cgroup.hasPrefix("session-") && cgroup.hasSuffix(".scope") {
            f.mechanism = .session
            f.unit = cgroup
            f.confidence = .medium
        }
    }
    }

    /// The outer launcher: what started the spawner, when that is itself a mechanism.
    static func markLauncher(_ f: inout Finding, chain: [ProcessRecord]) {
        // The outer launcher: what started the spawner, when that is itself a mechanism.
        if let s = f.spawner, let idx = chain.firstIndex(where: { $0.id == s.id }) {
            let above = chain[(idx + 1)...]
            let scg = s.image?.cgroup ?? ""
            if scg == "rc-local.service" || above.contains(where: { $0.image?.argv.contains { $0.hasSuffix("rc.local") } == true })
                || s.image?.argv.contains(where: { $0.hasSuffix("rc.local") }) == true {
                f.launcher = above.first
                f.launcherMechanism = .rcLocal
                f.evidence.append("the spawner was started by rc.local")
            } else if f.mechanism == .shellLoop || f.mechanism == .supervisor, f.launcherMechanism == nil, let m = multiplexer(Array(above)) {
                f.launcherMechanism = m.kind.mechanism
                f.launcher = m.server
                f.multiplexer = m
                f.evidence.append("\(s.name)(\(s.id.pid)) runs in \(m.kind.rawValue) session \(m.session ?? "?") of \(m.server.name)(\(m.server.id.pid))")
            } else if f.mechanism == .shellLoop || f.mechanism == .supervisor, f.launcherMechanism == nil, scg.hasSuffix(".service") {
                f.launcherMechanism = .systemdService
                f.launcher = above.first
                // A supervisor keeps its own name; the unit is its keeper's answer.
                if f.mechanism == .shellLoop { f.unit = scg }
            }
    }
    }

    /// The mechanism a process's names mark it as, when it is a respawning manager.
    public static func managerMechanism(_ n: [String]) -> Mechanism? {
        if n.contains("supervisord") { return .supervisord }
        if n.contains(where: { $0 == "cron" || $0 == "crond" || $0 == "CRON" }) { return .cron }
        if n.contains(where: { $0.hasPrefix("containerd-shim") || $0 == "conmon" || $0 == "dockerd" }) { return .container }
        if n.contains(where: { $0.hasPrefix("PM2") || $0 == "pm2" }) { return .pm2 }
        if n.contains(where: { $0 == "runsv" || $0 == "s6-supervise" }) { return .runit }
        return nil
    }

    /// The container id in a cgroup leaf: docker-ID.scope, libpod-ID.scope, cri-containerd-ID.scope,
    /// crio-ID.scope, or a bare 64-hex id (cgroupfs driver). Shortened to 12 like `docker ps`.
    public static func containerID(_ leaf: String) -> String? {
        // Most cgroups are not a container's: the length alone says so, without Characters.
        guard leaf.utf8.count >= 64 else { return nil }
        var s = Substring(leaf)
        if s.hasSuffix(".scope") { s = s.dropLast(6) }
        for p in ["docker-", "libpod-", "cri-containerd-", "crio-"] where s.hasPrefix(p) { s = s.dropFirst(p.count); break }
        guard s.count == 64, s.allSatisfy(\.isHexDigit) else { return nil }
        let engine = leaf.hasPrefix("libpod-") ? "podman" : leaf.hasPrefix("cri") ? "cri" : "docker"
        return "\(engine) \(s.prefix(12))"
    }

    /// A shell, also when it runs a script (`#!/bin/sh` gives the script's name as comm).
    public static func isShell(_ r: ProcessRecord) -> Bool {
        if shells.contains(r.name) { return true }
        guard let img = r.image else { return false }
        return [img.filename, img.interpreter ?? "", img.argv.first ?? ""].contains {
            shells.contains(String($0.split(separator: "/").last ?? ""))
        }
    }

    /// systemd as a system manager: the host's PID 1, or PID 1 of a container (`--system`).
    static func isSystemManager(_ r: ProcessRecord) -> Bool {
        if r.id.pid == 1 { return true }
        guard r.name == "systemd" || r.image?.filename.hasSuffix("/systemd") == true else { return false }
        let argv = r.image?.argv ?? []
        return argv.contains("--system") && !argv.contains("--user")
    }

    /// Gaps between consecutive starts, in seconds.
    public static func gaps(_ instances: [Instance]) -> [Double] {
        let s = instances.map(\.startWallNs).sorted()
        return zip(s.dropFirst(), s).map { Double($0 - $1) / 1e9 }
    }
}

// Printed as the token every output carries, never as the Swift case name.
extension Mechanism: CustomStringConvertible { public var description: String { rawValue } }
extension Finding.Confidence: CustomStringConvertible { public var description: String { rawValue } }
