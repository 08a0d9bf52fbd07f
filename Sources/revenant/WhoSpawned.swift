import ArgumentParser
import Foundation
import RevenantCore
import RevenantSystem

struct WhoSpawned: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "who-spawned",
        abstract: "Show the fork-time ancestry of a process, live or exited, from the store.",
        discussion: """
            Reads the store (the daemon need not run). A live process missing from the store is read \
            from /proc, and the output says so. Exit 0 found, 1 unknown PID, 2 store unreadable.

            Examples:
              revenant who-spawned 7085
              revenant who-spawned 7085 --id 7085@1234.567890123
              revenant who-spawned 7085 --at 18:42 --json
            """
    )

    @Argument(help: "The PID.") var pid: Int32
    @Option(help: "SQLite store.") var db: String = Store.defaultPath
    @Option(help: "Pick the incarnation alive at this time (ISO 8601, 'HH:MM[:SS]' today, or Unix seconds).") var at: String?
    @Option(help: "Pick the incarnation with this identity (as printed, e.g. 7085@1234.567890123).") var id: String?
    @Flag(help: "Full command lines.") var full = false
    @Option(help: "Read respawn configuration under this root when the spawner is gone.") var root: String = "/"
    @Flag(help: "One JSON object.") var json = false

    func run() throws {
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
            // The daemon flushes at once when asked; an older one (or another binary) is waited out.
            FlushRequest.askOrWait(store)
            stored = try store.incarnations(pid: pid)
        }
        var incs: [Incarnation] = stored.map { Incarnation(stored: $0, store: store) }
        if let live, !incs.contains(where: { $0.boot == thisBoot && $0.record.id.sameTick(live.id) }) {
            incs.insert(Incarnation(proc: live, reader: procs), at: 0)
            note = [note, "PID \(pid) is running but not in the store: lineage read from /proc (current parents, not fork-time)"]
                .compactMap { $0 }.joined(separator: "; ")
        }
        guard !incs.isEmpty else {
            if let note, store == nil { throw Failure(note, status: 2) }
            throw Failure("no process with PID \(pid) on record in \(db), and none running")
        }
        let chosen = try select(incs)
        var report = try Report(chosen, all: incs, store: store, reader: procs, note: note)
        if let store, !chosen.fromProc {
            let s = StoredProcess(boot: chosen.boot, record: chosen.record, startWallNs: chosen.startWallNs, exitWallNs: chosen.exitWallNs)
            report.respawn = try Attributor.report(for: s, store: store, root: root, reader: procs)
        }
        if json {
            LineWriter.stdout.json(report.json)
        } else {
            if let note { warn(note) }
            report.printText(full: full)
        }
    }

    private func select(_ incs: [Incarnation]) throws -> Incarnation {
        if let id {
            guard let want = Identity(id) else { throw Failure("--id \(id): not an identity (expected PID@SECONDS.FRACTION)") }
            guard let hit = incs.first(where: { $0.record.id == want || (!want.precise || !$0.record.id.precise) && $0.record.id.sameTick(want) })
            else { throw Failure("no incarnation of PID \(pid) has identity \(id)") }
            return hit
        }
        if let at {
            guard let t = TimeArgument.parse(at) else { throw Failure("--at \(at): expected ISO 8601, HH:MM[:SS] or Unix seconds") }
            let ns = Int64(t.timeIntervalSince1970 * 1e9)
            guard let hit = incs.first(where: { $0.startWallNs <= ns && ($0.exitWallNs ?? Int64.max) >= ns })
            else { throw Failure("no incarnation of PID \(pid) was alive at \(at)") }
            return hit
        }
        return incs[0]
    }
}

enum TimeArgument {
    static func parse(_ s: String) -> Date? {
        if let secs = Double(s) { return Date(timeIntervalSince1970: secs) }
        let iso = ISO8601DateFormatter()
        for opts: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
            iso.formatOptions = opts
            if let d = iso.date(from: s) { return d }
        }
        let parts = s.split(separator: ":").compactMap { Int($0) }
        guard (2...3).contains(parts.count), parts.count == s.split(separator: ":").count else { return nil }
        var c = Calendar.current.dateComponents([.year, .month, .day], from: Date())
        c.hour = parts[0]; c.minute = parts[1]; c.second = parts.count == 3 ? parts[2] : 0
        return Calendar.current.date(from: c)
    }
}

/// One incarnation of the PID: from the store, or read live from /proc.
struct Incarnation {
    var record: ProcessRecord
    var boot: String
    var startWallNs: Int64
    var exitWallNs: Int64?
    var goneByWallNs: Int64?
    var fromProc: Bool

    init(stored s: StoredProcess, store: Store?) {
        record = s.record; boot = s.boot; startWallNs = s.startWallNs; exitWallNs = s.exitWallNs
        goneByWallNs = s.goneByWallNs; fromProc = false
    }

    init(proc r: ProcessRecord, reader: ProcReader) {
        record = r
        boot = BootClock.bootID()
        startWallNs = BootClock().bootEpochNs + Int64(r.id.startNs)
        exitWallNs = nil
        fromProc = true
    }
}

/// The answer: the process, its incarnations, and its ancestry nearest first.
struct Report {
    struct Line {
        var record: ProcessRecord
        var startWallNs: Int64
        var exitWallNs: Int64?
        var goneUnseen: Bool     // no exit recorded, yet no longer running
        var goneByWallNs: Int64? // ...and known gone by then: it ended while no daemon traced
        var fromProc: Bool
    }

    let target: Line
    let ancestry: [Line]
    let incarnations: [Incarnation]
    /// Stored incarnations without a recorded exit that are running now.
    let running: Set<Identity>
    let chosen: Incarnation
    var respawn: RespawnReport?
    /// Why the chain stops where it does.
    let end: String?
    let note: String?

    init(_ inc: Incarnation, all: [Incarnation], store: Store?, reader: ProcReader, note: String?) throws {
        // The ancestry is on the target's boot.
        func isLive(_ r: ProcessRecord) -> Bool { reader.isRunning(r.id, boot: inc.boot) }
        func line(_ r: ProcessRecord, _ start: Int64, _ exit: Int64?, goneBy: Int64? = nil, proc: Bool) -> Line {
            Line(record: r, startWallNs: start, exitWallNs: exit, goneUnseen: !r.exited && !isLive(r), goneByWallNs: goneBy, fromProc: proc)
        }
        chosen = inc
        incarnations = all
        running = Set(all.filter { !$0.fromProc && !$0.record.exited && reader.isRunning($0.record.id, boot: $0.boot) }.map(\.record.id))
        self.note = note
        target = line(inc.record, inc.startWallNs, inc.exitWallNs, goneBy: inc.goneByWallNs, proc: inc.fromProc)
        var chain: [Line] = []
        if inc.fromProc {
            // /proc knows only current parents: walk ppid, stop at 0.
            var cur = inc.record.parent
            var seen: Set<Int32> = [inc.record.id.pid]
            let epoch = BootClock().bootEpochNs
            while let p = cur, !seen.contains(p.pid), let r = reader.record(p.pid) {
                chain.append(line(r, epoch + Int64(r.id.startNs), nil, proc: true))
                seen.insert(p.pid)
                cur = r.parent
            }
        } else if let store {
            let stored = StoredProcess(boot: inc.boot, record: inc.record, startWallNs: inc.startWallNs, exitWallNs: inc.exitWallNs)
            chain = try store.ancestry(of: stored).map { line($0.record, $0.startWallNs, $0.exitWallNs, goneBy: $0.goneByWallNs, proc: false) }
        }
        ancestry = chain
        let last = chain.last?.record ?? inc.record
        if inc.fromProc {
            end = "read from /proc: these are current parents; a process adopted after its parent died shows the adopter"
        } else if let p = last.parent {
            end = last.seeded && last.parentIsCurrentOnly && chain.last != nil
                ? "lineage above \(last.id.pid) is unknown: it was already running when revenant started (its parent then is shown)"
                : "parent \(p) of \(last.id.pid) is not on record (before revenant's history, or past retention)"
        } else if last.id.pid != 1 && last.id.pid != 2 {
            end = last.seeded
                ? "lineage above \(last.id.pid) is unknown: it was already running when revenant started"
                : "lineage above \(last.id.pid) is unknown"
        } else if chain.contains(where: { $0.record.seeded && $0.record.parentIsCurrentOnly }) || inc.record.seeded {
            end = "seeded processes were already running when revenant started: the parent shown is the one they had then, which may have adopted them"
        } else {
            end = nil
        }
    }

    // MARK: text

    func printText(full: Bool) {
        let out = LineWriter.stdout
        if incarnations.count > 1 {
            out.line("PID \(target.record.id.pid) had \(incarnations.count) incarnations (newest first):")
            for i in incarnations {
                let mark = i.record.id == chosen.record.id ? "*" : " "
                let img = i.record.image.map { Lineage.commandLine($0, maxBytes: 60) } ?? i.record.name
                out.line("  \(mark) \(pad(i.record.id.description, 22))  started \(Fmt.time(i.startWallNs))  \(pad(endText(i), 26))  \(img)")
            }
            out.line("  (--id ID or --at TIME picks another)")
            out.line("")
        }
        let r = target.record
        out.line("\(r.id)  \(r.image.map { Lineage.commandLine($0, maxBytes: full ? Int.max : 100) } ?? r.name)")
        out.line("  started   \(Fmt.time(target.startWallNs))")
        out.line("  status    \(status(target))")
        if r.images.count > 1 {
            let chain = r.images.map { img in Lineage.shorten(img.argv.first.map { _ in img.argv.joined(separator: " ") } ?? img.filename, maxBytes: full ? Int.max : 40) }
            out.line("  images    \(chain.joined(separator: "  →  "))\(r.imagesDropped > 0 ? "  (\(r.imagesDropped) more not kept)" : "")")
        }
        if let img = r.image {
            out.line("  user      \(Fmt.user(img.uid))\(img.euid != img.uid ? " (euid \(Fmt.user(img.euid)))" : "")  loginuid \(img.loginuid.map(String.init) ?? "unset")")
            out.line("  cgroup    \(img.cgroup)   cwd \(img.cwd ?? "?")")
        }
        if let a = r.adoptedBy { out.line("  adopted   by \(a.pid) (\(a)) after its parent exited") }
        if r.seeded { out.line("  seeded    already running when revenant started") }
        out.line("")
        out.line("Spawned by (fork-time ancestry, root first):")
        let rows: [[String]] = ancestry.reversed().enumerated().map { depth, l in
            row(l, depth: depth, full: full)
        } + [row(target, depth: ancestry.count, full: full, isTarget: true)]
        let header = ["PID", "IDENTITY", "STARTED", "STATUS", "USER", "CGROUP", "COMMAND"]
        let table = [header] + rows
        let widths = (0..<header.count - 1).map { c in table.map { $0[c].count }.max() ?? 0 }
        if let end { out.line("  ? \(end)") }
        for row in table {
            out.line("  " + (0..<header.count - 1).map { pad(row[$0], widths[$0]) }.joined(separator: "  ") + "  " + row.last!)
        }
        if let r = respawn { RespawnText.print(r, to: out) }
    }

    private func row(_ l: Line, depth: Int, full: Bool, isTarget: Bool = false) -> [String] {
        let r = l.record
        let cmd = r.image.map { Lineage.commandLine($0, maxBytes: full ? Int.max : 80) } ?? r.name
        let indent = depth == 0 ? "" : String(repeating: "   ", count: depth - 1) + "└─ "
        return [String(r.id.pid), r.id.description, Fmt.time(l.startWallNs, short: true), status(l),
                r.image.map { Fmt.user($0.uid) } ?? "?", r.image?.cgroup ?? "?", indent + cmd + (isTarget ? "   ◀" : "")]
    }

    private func status(_ l: Line) -> String {
        var parts: [String] = []
        let r = l.record
        if let s = r.exitStatus {
            parts.append(s.description)
        } else if r.exited || l.goneUnseen {
            parts.append("gone, exit not seen" + Report.untraced(l.goneByWallNs))
        } else {
            parts.append(l.fromProc ? "running (/proc)" : "running")
        }
        if let a = r.adoptedBy { parts.append("adopted by \(a.pid)") }
        if r.seeded { parts.append("seeded") }
        return parts.joined(separator: ", ")
    }

    private func endText(_ i: Incarnation) -> String {
        if let s = i.record.exitStatus, let e = i.exitWallNs { return "ended \(Fmt.time(e, short: true)) (\(s))" }
        if i.fromProc { return "running (/proc)" }
        return i.record.exited ? "gone" : running.contains(i.record.id) ? "running" : "gone, exit not seen" + Report.untraced(i.goneByWallNs)
    }

    /// For a process that ended while no daemon traced: when that was known.
    static func untraced(_ goneBy: Int64?) -> String {
        goneBy.map { " (ended by \(Fmt.time($0, short: true)) while revenant was not running)" } ?? ""
    }

    private func pad(_ s: String, _ n: Int) -> String {
        s.count >= n ? s : s + String(repeating: " ", count: n - s.count)
    }

    // MARK: JSON

    struct JSONImage: Encodable {
        let exe: String
        let interpreter: String?
        let argv: [String]
        let argv_truncated: Bool
        let time: String?
        let uid: UInt32
        let cgroup: String
        let cwd: String?
    }

    struct JSONProcess: Encodable {
        let pid: Int32
        let id: String
        let start: String
        let exit: String?
        let exit_status: String?
        let exited: Bool
        let exe: String?
        let argv: [String]
        let cgroup: String?
        let user: String?
        let adopted_by: String?
        let seeded: Bool
        let source: String
    }

    struct JSONReport: Encodable {
        let pid: Int32
        let id: String
        let start: String
        let exit: String?
        let exit_status: String?
        let source: String
        let images: [JSONImage]
        let adopted_by: String?
        let seeded: Bool
        let ancestry: [JSONProcess]
        let lineage_end: String?
        let respawned_by: RespawnReport?
        let incarnations: [JSONIncarnation]
        let note: String?
    }

    struct JSONIncarnation: Encodable {
        let id: String
        let start: String
        let exit: String?
        /// As the text lists it: running, gone, gone with its exit not seen, or ended (status).
        let status: String
        let selected: Bool
    }

    var json: JSONReport {
        let r = target.record
        let epoch = target.startWallNs - Int64(r.id.startNs)
        return JSONReport(
            pid: r.id.pid, id: r.id.description, start: Fmt.iso(target.startWallNs),
            exit: target.exitWallNs.map(Fmt.iso), exit_status: r.exitStatus?.description,
            source: target.fromProc ? "proc" : "store",
            images: r.images.map { i in
                JSONImage(exe: i.filename, interpreter: i.interpreter, argv: i.argv, argv_truncated: i.argvTruncated,
                          time: target.fromProc ? nil : Fmt.iso(epoch + Int64(i.time)), uid: i.uid, cgroup: i.cgroup, cwd: i.cwd)
            },
            adopted_by: r.adoptedBy?.description, seeded: r.seeded,
            ancestry: ancestry.map { l in
                let a = l.record
                return JSONProcess(pid: a.id.pid, id: a.id.description, start: Fmt.iso(l.startWallNs),
                                   exit: l.exitWallNs.map(Fmt.iso), exit_status: a.exitStatus?.description,
                                   exited: a.exited || l.goneUnseen, exe: a.image?.filename, argv: a.image?.argv ?? [],
                                   cgroup: a.image?.cgroup, user: a.image.map { Fmt.user($0.uid) },
                                   adopted_by: a.adoptedBy?.description, seeded: a.seeded,
                                   source: l.fromProc ? "proc" : "store")
            },
            lineage_end: end,
            respawned_by: respawn,
            incarnations: incarnations.map { i in
                JSONIncarnation(id: i.record.id.description, start: Fmt.iso(i.startWallNs), exit: i.exitWallNs.map(Fmt.iso),
                                status: endText(i), selected: i.record.id == chosen.record.id)
            },
            note: note)
    }
}

enum RespawnText {
    static func print(_ r: RespawnReport, to out: LineWriter) {
        out.line("")
        var head = "Respawned by  \(r.mechanism)"
        if let u = r.unit { head += " \(u)" }
        if let s = r.spawner { head += "  — \(s.argv.first.map { ($0 as NSString).lastPathComponent } ?? "?")(\(s.pid))" }
        let settings = r.settings.filter { $0.key != "program" && $0.key != "user" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        if !settings.isEmpty { head += "   (\(settings.joined(separator: ", ")))" }
        out.line(head + "   [confidence \(r.confidence)]")
        if let src = r.source {
            out.line("  source      \(src.file):\(src.line)  \(src.text)")
            if let p = r.settings["program"] { out.line("  program     [program:\(p)]") }
            if let u = r.settings["user"] { out.line("  user        \(u)") }
            for n in src.notes { out.line("  note        \(n)") }
        } else if r.mechanism != "unknown" {
            out.line("  source      not found (looked under \(r.config_root ?? "the spawner's root or --root"))")
        }
        if let l = r.launcher_mechanism { out.line("  launched by \(l)\(r.launcher.map { " — \($0.argv.joined(separator: " "))(\($0.pid))" } ?? "")") }
        if let c = r.command { out.line("  command     \(c)") }
        var ev = r.evidence
        if r.gap_seconds.count > 0 {
            let g = r.gap_seconds
            ev.append(String(format: "restart gap mean %.1fs (min %.1fs, max %.1fs)", g.reduce(0, +) / Double(g.count), g.min()!, g.max()!))
        }
        for (i, e) in ev.enumerated() { out.line((i == 0 ? "  evidence    " : "              ") + e) }
        for (i, c) in r.remediation.enumerated() { out.line((i == 0 ? "  stop it     " : "              ") + c) }
    }
}

enum Fmt {
    static func time(_ wallNs: Int64, short: Bool = false) -> String {
        let d = Date(timeIntervalSince1970: Double(wallNs) / 1e9)
        let f = DateFormatter()
        f.dateFormat = short ? "HH:mm:ss.SS" : "yyyy-MM-dd HH:mm:ss.SSS"
        return f.string(from: d)
    }

    static func iso(_ wallNs: Int64) -> String {
        Clock.iso.string(from: Date(timeIntervalSince1970: Double(wallNs) / 1e9))
    }

    static func user(_ uid: UInt32) -> String {
        guard let pw = getpwuid(uid) else { return String(uid) }
        return String(cString: pw.pointee.pw_name)
    }
}
