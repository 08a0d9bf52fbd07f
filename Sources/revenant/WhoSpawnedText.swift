import Foundation
import RevenantCore
import RevenantQuery
import RevenantDaemon

/// `who-spawned`'s answer as text and as JSON.
struct WhoSpawnedText {
    let answer: WhoSpawnedAnswer
    var target: LineageEntry { answer.target }
    var ancestry: [LineageEntry] { answer.ancestry }
    var incarnations: [Incarnation] { answer.incarnations }
    var running: Set<Identity> { answer.running }
    var chosen: Incarnation { answer.chosen }
    var respawn: RespawnReport? { answer.respawn }
    var end: String? { answer.end }
    var note: String? { answer.note }

    static func print(_ a: WhoSpawnedAnswer, full: Bool) { WhoSpawnedText(answer: a).printText(full: full) }
    static func json(_ a: WhoSpawnedAnswer) -> JSONReport { WhoSpawnedText(answer: a).jsonReport }

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
        for u in answer.uncertain {
            out.line("  ! uncertain: \(u.gap.detail), \(Fmt.time(u.gap.fromWallNs, short: true))–\(Fmt.time(u.gap.toWallNs, short: true)), while PID \(u.pid) started: a link may be missing")
        }
        for row in table {
            out.line("  " + (0..<header.count - 1).map { pad(row[$0], widths[$0]) }.joined(separator: "  ") + "  " + row.last!)
        }
        if let r = respawn { RespawnText.print(r, to: out) }
    }

    private func row(_ l: LineageEntry, depth: Int, full: Bool, isTarget: Bool = false) -> [String] {
        let r = l.record
        let cmd = r.image.map { Lineage.commandLine($0, maxBytes: full ? Int.max : 80) } ?? r.name
        let indent = depth == 0 ? "" : String(repeating: "   ", count: depth - 1) + "└─ "
        return [String(r.id.pid), r.id.description, Fmt.time(l.startWallNs, short: true), status(l),
                r.image.map { Fmt.user($0.uid) } ?? "?", r.image?.cgroup ?? "?", indent + cmd + (isTarget ? "   ◀" : "")]
    }

    private func status(_ l: LineageEntry) -> String {
        var parts: [String] = []
        let r = l.record
        if let s = r.exitStatus {
            parts.append(s.description)
        } else if r.exited || l.goneUnseen {
            parts.append("gone, exit not seen" + WhoSpawnedText.untraced(l.goneByWallNs))
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
        return i.record.exited ? "gone" : running.contains(i.record.id) ? "running" : "gone, exit not seen" + WhoSpawnedText.untraced(i.goneByWallNs)
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
        /// Trace gaps a link of this lineage started in.
        let uncertain: [GapJSON]
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

    var jsonReport: JSONReport {
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
            uncertain: answer.uncertain.map { GapJSON($0.gap, pid: $0.pid) },
            respawned_by: respawn,
            incarnations: incarnations.map { i in
                JSONIncarnation(id: i.record.id.description, start: Fmt.iso(i.startWallNs), exit: i.exitWallNs.map(Fmt.iso),
                                status: endText(i), selected: i.record.id == chosen.record.id)
            },
            note: note)
    }
}
