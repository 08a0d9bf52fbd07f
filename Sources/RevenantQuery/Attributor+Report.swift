import Foundation
import RevenantCore
import RevenantHost

/// A finding made a report: the configuration the mechanism reads, and the commands that stop it.
extension Attributor {
    public static func report(_ f: Finding, instances: [Instance], root: String, reader: ProcReader) -> RespawnReport {
        var f = f
        let cfgRoot = configRoot(f, root: root, reader: reader)
        let latest = instances.max { $0.startWallNs < $1.startWallNs }
        let workerArgv = latest?.process.image?.argv ?? []
        // A live instance carries its manager's markers in its environment.
        let markers = latest.map { reader.markers($0.process.id) } ?? [:]
        if let t = markers["TRIGGER_UNIT"] { f.evidence.append("environment: TRIGGER_UNIT=\(t)") }
        if let p = markers["SUPERVISOR_PROCESS_NAME"] {
            f.evidence.append("environment: SUPERVISOR_PROCESS_NAME=\(p)")
            if f.mechanism == .unknown { f.mechanism = .supervisord; f.confidence = .medium }
        }
        var found = Configured()
        switch f.mechanism {
        case .systemdService, .systemdUserUnit, .systemdTimer, .systemdPath, .systemdSocket:
            found = systemdSource(&f, root: cfgRoot, markers: markers, worker: workerArgv)
        case .cron:
            if let c = f.command { found.source = CronReader(root: cfgRoot).find(command: c, worker: workerArgv) }
        case .supervisord:
            found.source = SupervisorReader(root: cfgRoot).find(supervisordArgv: f.spawner?.image?.argv ?? [],
                                                                  cwd: f.spawner?.image?.cwd, workerArgv: workerArgv)
        case .shellLoop, .rcLocal:
            found = shellLoopSource(&f, root: cfgRoot, worker: workerArgv)
        case .container:
            found = containerSource(&f, instances: instances)
        case .supervisor:
            found = supervisorSource(&f, root: cfgRoot, worker: workerArgv)
        default:
            break
        }
        if let m = f.multiplexer {
            found.settings[m.kind.rawValue + "_session"] = m.session
            if m.kind == .tmux { found.settings["tmux_socket"] = m.socket }
            // The session goes first: it ends a loop or supervisor left in it.
            found.remediation = sessionRemediation(m) + found.remediation
        }
        if f.launcherMechanism == .rcLocal, let l = ScriptReader(root: cfgRoot).find(in: "/etc/rc.local", command: f.spawner?.image?.argv ?? []) {
            found.remediation.append("# started at boot by \(l.file):\(l.line): \(commentSafe(l.text))")
        }
        if let s = found.source { found.remediation = s.remediation + found.remediation }
        found.redact(root: cfgRoot)
        f.command = f.command.map(Attributor.redact)
        var settings = found.source?.settings ?? [:]
        settings.removeValue(forKey: "section_line")
        settings.merge(found.settings) { a, _ in a }
        return RespawnReport(
            mechanism: f.mechanism, unit: f.unit, confidence: f.confidence,
            spawner: proc(f.spawner), launcher: proc(f.launcher), launcher_mechanism: f.launcherMechanism,
            command: f.command, source: found.source, config_root: found.source == nil ? nil : cfgRoot, settings: settings,
            remediation: found.remediation, evidence: f.evidence, instances: instances.count,
            gap_seconds: Array(Attribution.gaps(instances).suffix(8)),
            command_lines: Attributor.commandLines(instances))
    }

    static func proc(_ r: ProcessRecord?) -> RespawnReport.Proc? {
        r.map { RespawnReport.Proc(pid: $0.id.pid, id: $0.id.description, exe: $0.image?.filename, argv: $0.image?.argv ?? [], comm: $0.name) }
    }

    /// Configuration is read as the spawner sees it while it lives (its root: a container, a chroot).
    static func configRoot(_ f: Finding, root: String, reader: ProcReader) -> String {
        if let s = f.spawner, let now = reader.identity(s.id.pid), now.sameTick(s.id),
           let theirs = fileID("/proc/\(s.id.pid)/root/"), theirs != fileID(root) {
            return "/proc/\(s.id.pid)/root"
        }
        return root
    }

    /// What the mechanism's configuration says: its source line, the commands that stop it,
    /// and settings read elsewhere (a container engine's).
    struct Configured {
        var source: ConfigSource?
        var remediation: [String] = []
        var settings: [String: String] = [:]

        /// Configuration lines are read now, not from the redacted store: hidden the same way.
        mutating func redact(root: String) {
            guard var s = source else { return }
            let hidden = Attributor.redact(s.text)
            if hidden != s.text {
                s.text = hidden
                let note = "# \(commentSafe(RootFS(root: root).path(s.file))) line \(s.line) holds a secret (not printed): remove that line by hand (crontab -e, an editor)"
                remediation = remediation.map { Attributor.redact($0) == $0 ? $0 : note }
                s.remediation = s.remediation.map { Attributor.redact($0) == $0 ? $0 : note }
            }
            s.notes = s.notes.map(Attributor.redact)
            source = s
        }
    }

    static func systemdSource(_ f: inout Finding, root: String, markers: [String: String], worker: [String]) -> Configured {
        var found = Configured()
        // A user manager reads its user's units, and is driven through that user's bus.
        let user = f.mechanism == .systemdUserUnit ? f.spawner?.image.flatMap { SystemdReader.user(uid: $0.uid, root: root) } : nil
        let sd = SystemdReader(root: root, user: user)
        if let u = f.unit { found.source = sd.unit(u) }
        if let user, sd.lingers() {
            found.source?.notes.append("\(user.name) lingers (/var/lib/systemd/linger/\(user.name)): the manager starts at boot with no login")
        }
        // A generated unit runs a SysV script: the script's line is what to change.
        if let script = found.source?.settings["SourcePath"], var line = ScriptReader(root: root).find(in: script, command: worker) {
            line.settings = found.source?.settings ?? [:]
            line.notes = (found.source.map { ["unit \($0.file) generated from it by systemd-sysv-generator"] } ?? []) + (found.source?.notes ?? [])
            line.remediation = found.source?.remediation ?? []
            found.source = line
        }
        // A timer, path or socket unit is the respawner when one triggers the unit: name it and its line.
        if let u = f.unit, let t = sd.trigger(for: u) {
            let name = t.settings["trigger"] ?? ""
            if f.mechanism != .systemdUserUnit {
                f.mechanism = name.hasSuffix(".path") ? .systemdPath : name.hasSuffix(".socket") ? .systemdSocket : .systemdTimer
            }
            f.evidence.append("\(u) is started by \(name) (\(t.file):\(t.line))")
            var trigger = t
            if let s = found.source {
                trigger.notes.append("service unit \(s.file):\(s.line)  \(s.text)")
                trigger.settings.merge(s.settings) { a, _ in a }
            }
            found.source = trigger
        } else if markers["TRIGGER_UNIT"]?.hasSuffix(".timer") == true {
            f.mechanism = .systemdTimer
        }
        if found.source == nil, let u = f.unit { found.remediation = ["\(sd.systemctl) disable --now \(u)"] }
        // Stopping a unit stops what is in its cgroup only with the default KillMode.
        if let pat = programPattern(worker) {
            found.remediation.append("pkill -f -- \(shellQuote(pat))   # instances that left the unit (setsid, KillMode=process) outlive its stop")
        }
        return found
    }

    static func shellLoopSource(_ f: inout Finding, root: String, worker workerArgv: [String]) -> Configured {
        var found = Configured()
        // The script file the loop's shell reads, if it reads one (not a -c string, not stdin):
        // named on the spawner's command line, so read only as its user could.
        let img = f.spawner?.image
        if var script = ShellInvocation.scriptFile(img?.argv ?? []) {
            if !script.hasPrefix("/"), let cwd = img?.cwd, cwd.hasPrefix("/") { script = cwd + "/" + script }
            if script.hasPrefix("/") {
                switch ScriptReader(root: root).lookup(in: script, command: workerArgv, user: img.map { ($0.uid, $0.gid) }) {
                case .success(let s?): found.source = s
                case .success(nil): f.evidence.append("no line of \(script) runs the program")
                case .failure(let why): f.evidence.append("source not readable: \(script): \(why)")
                }
            }
        }
        if found.source == nil, f.launcherMechanism == .rcLocal || f.mechanism == .rcLocal {
            found.source = ScriptReader(root: root).find(in: "/etc/rc.local", command: workerArgv)
        }
        // A loop written inline (`sh -c 'while …'`): its text is configured where its
        // launcher's configuration runs it.
        if found.source == nil, let img, let c = img.argv.firstIndex(of: "-c"), c + 1 < img.argv.count {
            found.source = inlineLoopSource(f, loop: img.argv[c + 1], root: root, worker: workerArgv)
            if found.source == nil { f.evidence.append("the loop is inline (sh -c); no configuration file of its launcher holds it") }
        }
        if let s = f.spawner {
            found.remediation = ["kill \(s.id.pid)   # the loop shell \(s.id) first, or it starts the worker again",
                                 "pkill -f -- \(shellQuote("^" + regexEscape(workerArgv.joined(separator: " "))))"]
        }
        if let src = found.source, src.remediation.isEmpty {
            found.remediation.append("# then remove or comment out \(commentSafe(RootFS(root: root).path(src.file))):\(src.line)")
        }
        return found
    }

    static func containerSource(_ f: inout Finding, instances: [Instance]) -> Configured {
        var found = Configured()
        guard let u = f.unit else { return found }
        let parts = u.split(separator: " ")
        let engine = parts.first == "podman" ? "podman" : parts.first == "cri" ? "cri" : "docker"
        let short = parts.last.map(String.init) ?? u
        let monitor = instances.lazy.compactMap { o in o.ancestry.first { Attribution.managerMechanism([$0.name]) == .container } }.first
        let info = ContainerEngine.inspect(ContainerEngine.fromMonitor(monitor?.image?.argv ?? [], engine: engine, shortID: short))
        let version = info.engineVersion.map { " " + $0 } ?? ""
        found.settings = ["engine": info.engine + version, "container": info.name ?? info.id]
        found.settings["image"] = info.image
        found.settings["restart_policy"] = info.restartPolicy
        f.evidence.append("container \(info.name ?? short) (\(info.engine)\(version)), image \(info.image ?? "?"), restart policy \(info.restartPolicy ?? "unknown")"
                          + (info.restartCount.map { ", restarted \($0) times" } ?? ""))
        found.remediation = info.remediation
        return found
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
}
