import ArgumentParser
import Foundation
import RevenantCore
import RevenantSystem

struct Timeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Every start and end of one program, who spawned each, and the gaps between them.",
        discussion: """
            Examples:
              revenant timeline 7085
              revenant timeline --match training_worker.py
              revenant timeline --match /opt/ai-video-codec/workers --db /var/lib/revenant/revenant.db --json
            """)

    @Argument(help: "A PID: its program's command line selects the instances.") var pid: Int32?
    @Option(help: "Instead of a PID: processes whose path or command line contains this text.") var match: String?
    @Option(help: "SQLite store.") var db: String = Store.defaultPath
    @Option(help: "Read respawn configuration under this root when the spawner is gone.") var root: String = "/"
    @Flag(help: "JSON output.") var json = false

    func run() throws {
        guard (pid == nil) != (match == nil) else { throw Failure("give a PID or --match TEXT", status: 2) }
        let store: Store
        do { store = try Store(path: db, readOnly: true) } catch { throw Failure("cannot read \(error.description)", status: 2) }
        var stored: [StoredProcess]
        if let pid {
            guard let latest = try store.incarnations(pid: pid).first else { throw Failure("no process with PID \(pid) on record in \(db)") }
            stored = try latest.record.image.map { try store.instances(argv: $0.argv) } ?? [latest]
        } else {
            // A whole command line passed as one argument (pgrep -f, sh -c) names the program, it is not it.
            let text = match!
            stored = try store.matching(text).filter { s in
                s.record.images.contains { img in img.filename.contains(text) || img.argv.contains { $0.contains(text) && !$0.contains(" ") } }
            }
            // One program: the command line that ran most often among the matches.
            let groups = Dictionary(grouping: stored) { $0.record.image?.argv ?? [] }
            if let top = groups.max(by: { $0.value.count < $1.value.count }) { stored = top.value }
        }
        guard !stored.isEmpty else { throw Failure("no process matching \(match ?? "") on record in \(db)") }
        stored.sort { $0.startWallNs < $1.startWallNs }
        let instances = try stored.map { s in
            Instance(process: s.record, ancestry: try store.ancestry(of: s).map(\.record), startWallNs: s.startWallNs, exitWallNs: s.exitWallNs)
        }
        let reader = ProcReader()
        let boots = Dictionary(stored.map { ($0.record.id, $0.boot) }, uniquingKeysWith: { a, _ in a })
        let report = Attributor.report(Attribution.analyze(instances), instances: instances, root: root, reader: reader)
        struct Row: Encodable { let pid: Int32; let id: String; let start: String; let end: String?; let how: String; let spawned_by: String; let gap_seconds: Double?; let command: String; let enforcement: String? }
        var rows: [Row] = []
        var prev: Int64?
        for i in instances {
            let parent = i.ancestry.first.map { "\($0.name)(\($0.id.pid))" } ?? "?"
            let how = i.process.exitStatus?.description
                ?? (i.process.exited ? "gone" : reader.isRunning(i.process.id, boot: boots[i.process.id] ?? "") ? "running" : "gone, exit not seen")
            rows.append(Row(pid: i.process.id.pid, id: i.process.id.description, start: Fmt.iso(i.startWallNs),
                            end: i.exitWallNs.map(Fmt.iso), how: how, spawned_by: parent,
                            gap_seconds: prev.map { Double(i.startWallNs - $0) / 1e9 },
                            command: i.process.image.map { Lineage.commandLine($0, maxBytes: 60) } ?? i.process.name,
                            enforcement: i.process.image?.enforcement))
            prev = i.startWallNs
        }
        if json {
            struct Out: Encodable { let instances: [Row]; let respawned_by: RespawnReport }
            LineWriter.stdout.json(Out(instances: rows, respawned_by: report))
            return
        }
        let out = LineWriter.stdout
        out.line("START                    PID      ENDED                    HOW                 SPAWNED BY        GAP       COMMAND")
        for r in rows {
            let end = r.end.map { Fmt.time(Int64((Clock.iso.date(from: $0)?.timeIntervalSince1970 ?? 0) * 1e9)) } ?? "-"
            let start = Fmt.time(Int64((Clock.iso.date(from: r.start)?.timeIntervalSince1970 ?? 0) * 1e9))
            let gap = r.gap_seconds.map { String(format: "%.1fs", $0) } ?? "-"
            out.line([start, String(r.pid).padding(toLength: 8, withPad: " ", startingAt: 0), end.padding(toLength: 24, withPad: " ", startingAt: 0),
                      r.how.padding(toLength: 19, withPad: " ", startingAt: 0), r.spawned_by.padding(toLength: 17, withPad: " ", startingAt: 0),
                      gap.padding(toLength: 9, withPad: " ", startingAt: 0), r.command + (r.enforcement.map { "  [\($0)]" } ?? "")].joined(separator: " "))
        }
        let g = report.gap_seconds
        out.line("")
        out.line("\(rows.count) instances" + (g.isEmpty ? "" : String(format: "; restart gap mean %.1fs, min %.1fs, max %.1fs", g.reduce(0, +) / Double(g.count), g.min()!, g.max()!)))
        RespawnText.print(report, to: out)
    }
}
