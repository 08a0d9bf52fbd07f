import ArgumentParser
import Foundation
import RevenantCore
import RevenantQuery
import RevenantDaemon

struct Timeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timeline", _superCommandName: "revenant",
        abstract: "Every start and end of one program, who spawned each, and the gaps between them.",
        discussion: """
            Examples:
              revenant timeline 7085
              revenant timeline --match training_worker.py
              revenant timeline --match /opt/ai-video-codec/workers --db /var/lib/revenant/revenant.db --json
            """)

    @Argument(help: "A PID: its program's command line selects the instances.") var pid: Int32?
    @Option(help: "Instead of a PID: processes whose path or command line contains this text.") var match: String?
    @OptionGroup var store: StoreOptions
    @OptionGroup var config: RootOptions
    @OptionGroup var output: JSONOptions
    @Option(help: ArgumentHelp("Also draw it: each instance a bar over time, one lane per respawner (SVG).", valueName: "file"))
    var svg: String?
    @Option(help: ArgumentHelp("Also write a one-file HTML report: the picture, who respawns it, the instances.", valueName: "file"))
    var html: String?

    func run() throws {
        guard (pid == nil) != (match == nil) else { throw Failure("give a PID or --match TEXT", status: 2) }
        var q = TimelineQuery(program: pid.map { .pid($0) } ?? .matching(match!), db: store.db)
        q.root = config.root
        let answer = try Failure.answering { try q.run() }
        let title = "timeline of " + (answer.rows.last.map { Timeline.command($0) } ?? match ?? pid.map(String.init) ?? "")
        if let svg { try Timeline.write(TimelinePicture.svg(answer, title: title), to: svg) }
        if let html {
            let text = LineWriter.collecting()
            RespawnText.print(answer.respawn, to: text)
            try Timeline.write(TimelinePicture.html(answer, title: title, report: text.collected), to: html)
        }
        if output.json {
            struct Row: Encodable {
                let pid: Int32; let id: String; let start: String; let end: String?; let how: String; let spawned_by: String
                let gap_seconds: Double?; let command: String; let enforcement: String?
            }
            struct Out: Encodable { let instances: [Row]; let trace_gaps: [GapJSON]; let respawned_by: RespawnReport }
            let rows = answer.rows.map { r in
                Row(pid: r.process.id.pid, id: r.process.id.description, start: Fmt.iso(r.startWallNs), end: r.exitWallNs.map(Fmt.iso),
                    how: r.how, spawned_by: r.spawnedBy, gap_seconds: r.gapSeconds, command: Timeline.command(r),
                    enforcement: r.process.image?.enforcement?.message)
            }
            LineWriter.stdout.json(Out(instances: rows, trace_gaps: answer.gaps.map { GapJSON($0) },
                                       respawned_by: answer.respawn))
            return
        }
        let out = LineWriter.stdout
        out.line("START                    PID      ENDED                    HOW                 SPAWNED BY        GAP       COMMAND")
        // Trace gaps (instances may be missing there) and changes to the source file, where they fell.
        var marks = (answer.gaps.map { g in (g.fromWallNs, "\(Fmt.time(g.fromWallNs)) TRACE GAP until \(Fmt.time(g.toWallNs, short: true)): \(g.detail)") }
            + answer.respawn.configured_by.map { c in (c.timeWallNs, "\(Fmt.time(c.timeWallNs)) CONFIG \(c.kind.rawValue) \(c.path) by \(c.command)  ← \(c.ancestry)") })
            .sorted { $0.0 < $1.0 }[...]
        var lines: [[UInt8]] = []
        lines.reserveCapacity(answer.rows.count + marks.count)
        // Rows made in bytes; instances of one program mostly share their command line: shortened once.
        var last: (argv: [String], text: [UInt8])?
        func pad(_ l: inout [UInt8], from start: Int, to width: Int) {
            // Columns hold ASCII but for the spawner's name: padded by characters, as `Fmt.pad`.
            let n = l.count - start
            let chars = l[start...].allSatisfy({ $0 < 0x80 }) ? n : String(decoding: l[start...], as: UTF8.self).count
            if chars < width { l.append(contentsOf: repeatElement(UInt8(ascii: " "), count: width - chars)) }
            l.append(UInt8(ascii: " "))
        }
        for r in answer.rows {
            while let m = marks.first, m.0 <= r.startWallNs {
                lines.append(Array(m.1.utf8))
                marks = marks.dropFirst()
            }
            var l: [UInt8] = []
            l.reserveCapacity(160)
            Fmt.time(r.startWallNs, into: &l); l.append(UInt8(ascii: " "))
            var at = l.count
            l.append(contentsOf: String(r.process.id.pid).utf8); pad(&l, from: at, to: 8)
            at = l.count
            if let x = r.exitWallNs { Fmt.time(x, into: &l) } else { l.append(UInt8(ascii: "-")) }
            pad(&l, from: at, to: 24)
            at = l.count; l.append(contentsOf: r.how.utf8); pad(&l, from: at, to: 19)
            at = l.count; l.append(contentsOf: r.spawnedBy.utf8); pad(&l, from: at, to: 17)
            at = l.count; l.append(contentsOf: (r.gapSeconds.map(Fmt.seconds) ?? "-").utf8); pad(&l, from: at, to: 9)
            let argv = r.process.image?.argv ?? []
            let command = (argv.isEmpty ? nil : last.flatMap { $0.argv == argv ? $0.text : nil }) ?? Array(Timeline.command(r).utf8)
            last = (argv, command)
            l.append(contentsOf: command)
            if let e = r.process.image?.enforcement { l.append(contentsOf: "  [\(e.message)]".utf8) }
            lines.append(l)
        }
        lines += marks.map { Array($0.1.utf8) }
        out.lines(lines)
        let g = answer.respawn.gap_seconds
        out.line("")
        out.line("\(answer.rows.count) instances" + (g.isEmpty ? "" : String(format: "; restart gap mean %.1fs, min %.1fs, max %.1fs", g.reduce(0, +) / Double(g.count), g.min()!, g.max()!)))
        RespawnText.print(answer.respawn, to: out)
    }

    /// Written beside and renamed: a reader never sees half a picture.
    static func write(_ text: String, to path: String) throws {
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch { throw Failure("cannot write \(path): \(error.localizedDescription)", status: 1) }
    }

    static func command(_ r: TimelineQuery.Row) -> String {
        r.process.image.map { Lineage.commandLine($0, maxBytes: 60) } ?? r.process.name
    }
}
