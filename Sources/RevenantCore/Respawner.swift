/// A respawner is a spawner plus the configuration it acts for: one PID 1 runs many units, one
/// cron daemon many lines, one tmux server many sessions, and one container outlives each of
/// its monitors. Any persistent process that forks instances is one, and what keeps *it*
/// alive is answered the same way.
extension Attribution {
    /// What the respawner at `at` in `o.ancestry` acts for on the way to `o`: the cgroup leaf
    /// (a unit), and the programs exec'd between them (cron's `sh -c LINE`, a pane's loop).
    static func scope(of o: Instance, respawnerAt at: Int) -> String {
        let cgroup = o.process.images.first(where: { !$0.cgroup.isEmpty })?.cgroup ?? o.process.image?.cgroup ?? ""
        var parts = [cgroup]
        for a in o.ancestry[..<at].reversed() where !a.imageInherited {
            if let img = a.image { parts.append(img.program.key) }
        }
        // supervisord runs each program's command itself: the command line is the program.
        if names(o.ancestry[at]).contains("supervisord"), let argv = o.process.images.first?.argv { parts.append(argv.joined(separator: " ")) }
        return parts.joined(separator: "\u{1F}")
    }

    /// The name a known process supervisor goes by, from its program: what an operator calls it.
    public static func supervisorKind(_ r: ProcessRecord) -> String? {
        let words = names(r) + (r.image?.argv.prefix(4).map { $0 } ?? [])
        for (needle, kind) in knownSupervisors where words.contains(where: { $0 == needle || $0.hasSuffix("/" + needle) }) {
            return kind
        }
        if words.contains(where: { $0.hasPrefix("torch.distributed") }) { return "torch.distributed elastic agent" }
        return nil
    }

    static let knownSupervisors: [(String, String)] = [
        ("gunicorn", "gunicorn master"), ("uwsgi", "uWSGI master"), ("celery", "celery worker pool"),
        ("torchrun", "torchrun elastic agent"), ("raylet", "Ray raylet"), ("ray", "Ray"),
        ("circusd", "circus"), ("honcho", "honcho"), ("foreman", "foreman"), ("pm2", "pm2"),
    ]

    /// A persistent process that forked every instance and is no manager revenant reads the
    /// configuration of: a keep-alive script, a pre-fork master.
    static func isSupervisor(_ r: ProcessRecord) -> Bool {
        r.id.pid != 1 && !isShell(r) && !isSystemManager(r) && managerMechanism(names(r)) == nil
            && !names(r).contains("systemd") && multiplexer([r]) == nil
    }

    /// Names a supervisor the respawner: by its known kind, else by its own program.
    static func markSupervisor(_ f: inout Finding, _ s: ProcessRecord) {
        f.mechanism = .supervisor
        f.spawner = s
        let program = s.image.map { $0.program.key } ?? s.name
        f.unit = program
        f.evidence.append("\(s.name)(\(s.id.pid)) forked every instance and outlived them: \(program), "
                          + (supervisorKind(s).map { "a \($0)" } ?? "a process supervisor"))
    }

    /// Between a supervisor and the instance, only forks and non-interactive launchers
    /// (`sh -c`, setsid, nohup): not a login (sshd, su, a terminal) that an operator typed into.
    static func launchedDirectly(_ between: ArraySlice<ProcessRecord>) -> Bool {
        between.allSatisfy { a in
            guard !a.imageInherited, let img = a.image else { return true }
            let base = String((img.argv.first ?? img.filename).split(separator: "/").last ?? "")
            return img.argv.contains("-c") && isShell(a) || ["setsid", "nohup", "env", "nice", "ionice", "timeout", "stdbuf", "taskset"].contains(base)
        }
    }

    /// The tmux or screen session among `chain` (nearest first), with what its server's
    /// command line says of the session's name and socket.
    public static func multiplexer(_ chain: [ProcessRecord]) -> Multiplexer? {
        for r in chain {
            let argv = r.image?.argv ?? []
            let base = argv.first.map { String($0.split(separator: "/").last ?? "") } ?? ""
            if base == "tmux" || r.comm.hasPrefix("tmux") {
                let dir = "/tmp/tmux-\(r.image?.uid ?? 0)/"
                return Multiplexer(kind: .tmux, server: r, session: option(argv, "s"),
                                   socket: option(argv, "S") ?? dir + (option(argv, "L") ?? "default"))
            }
            if base == "screen" || base == "SCREEN" || r.comm == "screen" || r.comm == "SCREEN" {
                return Multiplexer(kind: .screen, server: r, session: option(argv, "S").map { "\(r.id.pid).\($0)" } ?? "\(r.id.pid)", socket: nil)
            }
        }
        return nil
    }

    /// The value of a short option in `argv`: `-s NAME`, or last in a cluster (`-dmS NAME`).
    static func option(_ argv: [String], _ letter: Character) -> String? {
        for i in argv.indices.dropFirst() {
            let a = argv[i]
            if a == "--" { return nil }
            guard a.hasPrefix("-"), a.count > 1, a.dropFirst().allSatisfy(\.isLetter), a.last == letter else { continue }
            return i + 1 < argv.count ? argv[i + 1] : nil
        }
        return nil
    }

    /// What keeps a persistent forker alive, from its own instances (usually one): the same
    /// analysis, except that a single run from a shell is a run by hand, not a loop.
    public static func keeper(_ instances: [Instance]) -> Finding {
        var f = analyze(instances)
        guard instances.count == 1, let me = instances.first else { return f }
        if let m = multiplexer(me.ancestry) {
            f.mechanism = m.kind.mechanism
            f.spawner = m.server
            f.multiplexer = m
            f.unit = m.session
            f.evidence.append("running in \(m.kind.rawValue) session \(m.session ?? "?") of \(m.server.name)(\(m.server.id.pid))")
        } else if f.mechanism == .shellLoop || f.mechanism == .unknown || f.mechanism == .session {
            f.mechanism = .byHand
            f.confidence = .medium
            // Past its own daemonizing forks, to what ran it.
            let program = me.process.image?.program
            let from = me.ancestry.first { $0.image?.program != program } ?? me.ancestry.first
            f.spawner = from
            f.evidence = ["started once from \(from.map { "\($0.name)(\($0.id.pid))" } ?? "an unknown parent"): nothing on record restarts it"]
        }
        return f
    }
}

/// A terminal multiplexer session a loop or a keep-alive was left running in.
public struct Multiplexer: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case tmux, screen
        public var mechanism: Mechanism { self == .tmux ? .tmux : .screen }
    }
    public var kind: Kind
    /// The server process (tmux's, screen's backend).
    public var server: ProcessRecord
    /// tmux: the name given at `new-session -s`; screen: `PID.NAME`.
    public var session: String?
    /// tmux's socket path.
    public var socket: String?
}
