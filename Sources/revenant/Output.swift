import Foundation
import RevenantCore
import RevenantQuery
import RevenantDaemon
import Synchronization

/// Whole lines to stdout from any task, never interleaved.
final class LineWriter: Sendable {
    static let stdout = LineWriter(FileHandle.standardOutput)
    private let handle: Mutex<FileHandle?>
    private let kept = Mutex<String>("")
    init(_ h: FileHandle?) { handle = Mutex(h) }

    /// Lines kept in memory (`collected`) instead of written.
    static func collecting() -> LineWriter { LineWriter(nil) }
    var collected: String { kept.withLock { $0 } }

    /// One line, control characters escaped: nothing printed can move the cursor or start a line.
    func line(_ s: String) { write(Visible.escape(s) + "\n") }

    /// Many lines in few writes (a timeline's thousands of rows), each escaped as `line` does.
    func lines(_ ss: [[UInt8]]) {
        var buf: [UInt8] = []
        buf.reserveCapacity(1 << 16)
        for l in ss {
            // Only a control byte, DEL, or the lead byte of a C1 control (C2) or of a bidi or
            // direction mark (E2) can need escaping: other lines go as they are.
            if l.contains(where: { $0 < 0x20 || $0 == 0x7f || $0 == 0xc2 || $0 == 0xe2 }) {
                buf.append(contentsOf: Visible.escape(String(decoding: l, as: UTF8.self)).utf8)
            } else {
                buf.append(contentsOf: l)
            }
            buf.append(0x0a)
            if buf.count >= 1 << 16 { write(String(decoding: buf, as: UTF8.self)); buf.removeAll(keepingCapacity: true) }
        }
        if !buf.isEmpty { write(String(decoding: buf, as: UTF8.self)) }
    }

    private func write(_ text: String) {
        let written = handle.withLock { h -> Bool in
            guard let h else { return false }
            h.write(Data(text.utf8))
            return true
        }
        if !written { kept.withLock { $0 += text } }
    }

    func json<T: Encodable>(_ value: T) {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if let data = try? enc.encode(value) { line(String(decoding: data, as: UTF8.self)) }
    }
}

func warn(_ s: String) {
    FileHandle.standardError.write(Data(("revenant: " + Visible.escape(s) + "\n").utf8))
}

enum Clock {
    // Formatters are thread-safe in swift-corelibs-foundation; shared to avoid rebuilding per line.
    static let hms: DateFormatter = {
        let f = DateFormatter()
        f.dateFormat = "HH:mm:ss.SSS"
        return f
    }()
}

/// Exit with a one-line message and a status.
struct Failure: Error, CustomStringConvertible {
    let description: String
    let status: Int32
    init(_ message: String, status: Int32 = 1) { description = Visible.escape(message); self.status = status }

    /// A query's answer; its failure as an exit: 2 when the store is unreadable, 1 when it holds nothing.
    static func answering<T>(_ query: () throws -> T) throws -> T {
        do {
            return try query()
        } catch QueryError.storeUnreadable(let why) {
            throw Failure(why, status: 2)
        } catch QueryError.unknown(let why) {
            throw Failure(why)
        }
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

enum RespawnText {
    /// ` (session bash(815) from sshd(810), loginuid 1000)`, or the loginuid alone.
    static func session(_ session: String?, _ loginuid: UInt32?) -> String {
        if let s = session { return " (session \(s))" }
        return loginuid.map { " (loginuid \($0))" } ?? ""
    }

    static func print(_ r: RespawnReport, to out: LineWriter) {
        out.line("")
        var head = "Respawned by  \(r.mechanism)"
        if let u = r.unit { head += " \(u)" }
        if let s = r.spawner { head += "  — \(s.name)(\(s.pid))" }
        let settings = r.settings.filter { $0.key != "program" && $0.key != "user" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        if !settings.isEmpty { head += "   (\(settings.joined(separator: ", ")))" }
        out.line(head + "   [confidence \(r.confidence)]")
        if let src = r.source {
            out.line("  source      \(src.file):\(src.line)  \(src.text)")
            if let p = r.settings["program"] { out.line("  program     [program:\(p)]") }
            if let u = r.settings["user"] { out.line("  user        \(u)") }
            for n in src.notes { out.line("  note        \(n)") }
            for c in r.configured_by {
                out.line("  configured  \(Fmt.time(c.timeWallNs)) \(c.kind.rawValue) by \(c.command)  ← \(c.ancestry)\(RespawnText.session(c.session, c.loginuid))")
            }
            if let m = r.managed_by { out.line("  managed by  \(m): a change made by hand is rewritten at its next run") }
            for i in r.started_by {
                let lead = i.lead_seconds.map { String(format: "; the first instance started %.1f s later", $0) } ?? ""
                out.line("  started by  \(Fmt.time(i.time_wall_ns)) \(i.command)  ← \(i.ancestry)\(RespawnText.session(i.session, i.loginuid))\(lead)")
            }
        } else if r.mechanism == .container, let c = r.settings["container"] {
            out.line("  source      \(r.settings["engine"] ?? "the engine")'s record of container \(c): restart policy \(r.settings["restart_policy"] ?? "unknown")")
        } else if r.mechanism != .unknown {
            out.line("  source      not found (looked under \(r.config_root ?? "the spawner's root or --root"))")
        }
        if let l = r.launcher_mechanism { out.line("  launched by \(l)\(r.launcher.map { " — \($0.argv.isEmpty ? $0.name : $0.argv.joined(separator: " "))(\($0.pid))" } ?? "")") }
        for k in r.kept_alive_by {
            let who = k.spawner.map { " — \($0.name)(\($0.pid))" } ?? ""
            out.line("  kept alive by  \(k.mechanism)\(k.unit.map { " \($0)" } ?? "")\(who)\(k.source.map { "  \($0)  \(k.source_text ?? "")" } ?? "")")
            if let e = k.evidence.last { out.line("                \(e)") }
        }
        if let c = r.command { out.line("  command     \(c)") }
        if let p = r.program, r.command_lines.count > 1 || r.command_lines.first.map({ $0 != p }) == true {
            out.line("  program     \(p)   (any arguments; \(r.command_lines.count == 1 ? "command line" : "command lines"): \(r.command_lines.joined(separator: " | ")))")
        }
        var ev = r.evidence
        if r.gap_seconds.count > 0 {
            let g = r.gap_seconds
            ev.append(String(format: "restart gap mean %.1fs (min %.1fs, max %.1fs)", g.reduce(0, +) / Double(g.count), g.min()!, g.max()!))
        }
        for (i, e) in ev.enumerated() { out.line((i == 0 ? "  evidence    " : "              ") + e) }
        for (i, c) in r.remediation.enumerated() { out.line((i == 0 ? "  stop it     " : "              ") + c) }
        for a in r.also_respawned_by {
            let who = a.spawner.map { " — \($0.name)(\($0.pid))" } ?? ""
            out.line("  also respawned by  \(a.mechanism)\(a.unit.map { " \($0)" } ?? "")\(who)\(a.source.map { " \($0)" } ?? "")"
                     + " (\(a.instances) instance\(a.instances == 1 ? "" : "s"), last \(Fmt.time(a.last_start_wall_ns, short: true)))")
        }
    }
}

/// A trace gap in every JSON output (who-spawned's `uncertain`, timeline's `trace_gaps`, an
/// export line): `type` tells it from an exec line in a stream.
struct GapJSON: Encodable {
    let type = "trace_gap"
    let kind: String
    let from: String
    let to: String
    let lost: Int64
    let detail: String
    /// The lineage link that started inside it (who-spawned).
    let pid: Int32?

    init(_ g: TraceGap, pid: Int32? = nil) {
        kind = g.kind.rawValue; from = Fmt.iso(g.fromWallNs); to = Fmt.iso(g.toWallNs); lost = g.lost; detail = g.detail; self.pid = pid
    }
}
