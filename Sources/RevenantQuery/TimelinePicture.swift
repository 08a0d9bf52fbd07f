import Foundation
import RevenantCore
import RevenantStore
import RevenantHost

/// `timeline --svg`: each instance a bar over time, one lane per respawner, kills and denials
/// marked, trace gaps and configuration changes labelled (in the spirit of `systemd-analyze
/// plot`). Every text comes from other users' processes: escaped for the terminal's sake and
/// for XML's.
public enum TimelinePicture {
    static let width = 1200.0, labelWidth = 300.0, laneHeight = 26.0, top = 70.0, barHeight = 16.0

    public static func svg(_ a: TimelineQuery.Answer, title: String, nowWallNs: Int64 = WallClock.nowNs()) -> String {
        let starts = a.rows.map(\.startWallNs)
        let t0 = (starts.min() ?? nowWallNs)
        let ends = a.rows.map { $0.exitWallNs ?? ($0.how == "running" ? nowWallNs : $0.startWallNs) }
        var t1 = max(ends.max() ?? t0, starts.max() ?? t0)
        if t1 <= t0 { t1 = t0 + 1_000_000_000 }
        let plot = width - labelWidth - 20
        func x(_ ns: Int64) -> Double { labelWidth + plot * Double(ns - t0) / Double(t1 - t0) }
        let lanes = a.lanes.isEmpty ? [TimelineQuery.Lane(label: "instances", rows: Array(a.rows.indices))] : a.lanes
        let height = top + Double(lanes.count) * laneHeight + 60
        var o = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="DejaVu Sans, sans-serif" font-size="12">
            <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="#ffffff"/>
            <text x="10" y="22" font-size="15" font-weight="bold">\(xml(title))</text>
            <text x="10" y="42" fill="#555">\(a.rows.count) instances, \(xml(iso(t0))) to \(xml(iso(t1))); killed or denied in red</text>

            """
        // Time axis: about eight ticks.
        let span = Double(t1 - t0) / 1e9
        let step = [1.0, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400].first { span / $0 <= 8 } ?? 86400
        var tick = (Double(t0) / 1e9 / step).rounded(.up) * step
        let axisY = top + Double(lanes.count) * laneHeight + 8
        o += "<line x1=\"\(f(labelWidth))\" y1=\"\(f(axisY))\" x2=\"\(f(width - 20))\" y2=\"\(f(axisY))\" stroke=\"#999\"/>\n"
        while tick <= Double(t1) / 1e9 {
            let tx = x(Int64(tick * 1e9))
            o += "<line x1=\"\(f(tx))\" y1=\"\(f(top - 6))\" x2=\"\(f(tx))\" y2=\"\(f(axisY + 4))\" stroke=\"#eee\"/>"
            o += "<text x=\"\(f(tx))\" y=\"\(f(axisY + 18))\" text-anchor=\"middle\" fill=\"#555\">\(hms(Int64(tick * 1e9)))</text>\n"
            tick += step
        }
        // Trace gaps: instances may be missing there.
        for g in a.gaps where g.toWallNs >= t0 && g.fromWallNs <= t1 {
            let gx = x(max(g.fromWallNs, t0)), gw = max(3, x(min(g.toWallNs, t1)) - gx)
            o += "<rect class=\"gap\" x=\"\(f(gx))\" y=\"\(f(top - 6))\" width=\"\(f(gw))\" height=\"\(f(Double(lanes.count) * laneHeight + 6))\" fill=\"#bbbbbb\" fill-opacity=\"0.5\"><title>\(xml("trace gap: \(g.detail)"))</title></rect>"
            o += "<text x=\"\(f(gx + 2))\" y=\"\(f(top - 10))\" fill=\"#666\" font-size=\"10\">TRACE GAP</text>\n"
        }
        // Configuration changes to the source file.
        for c in a.respawn.configured_by where c.timeWallNs >= t0 && c.timeWallNs <= t1 {
            let cx = x(c.timeWallNs)
            o += "<line class=\"config\" x1=\"\(f(cx))\" y1=\"\(f(top - 6))\" x2=\"\(f(cx))\" y2=\"\(f(axisY))\" stroke=\"#e08a00\" stroke-width=\"2\"><title>\(xml("\(c.kind.rawValue) \(c.path) by \(c.command)"))</title></line>\n"
        }
        for (k, lane) in lanes.enumerated() {
            let y = top + Double(k) * laneHeight
            if k % 2 == 1 { o += "<rect x=\"0\" y=\"\(f(y - 4))\" width=\"\(Int(width))\" height=\"\(f(laneHeight))\" fill=\"#f6f8fa\"/>" }
            o += "<text x=\"10\" y=\"\(f(y + barHeight - 3))\">\(xml(Lineage.shorten(lane.label, maxBytes: 46)))</text>"
            o += "<text x=\"\(f(labelWidth - 8))\" y=\"\(f(y + barHeight - 3))\" text-anchor=\"end\" fill=\"#555\">\(lane.rows.count)</text>\n"
            for i in lane.rows {
                let r = a.rows[i]
                let bx = x(r.startWallNs), bw = max(2, x(ends[i]) - bx)
                let blocked = r.process.image?.enforcement?.blocked == true
                let tip = "\(r.process.name)(\(r.process.id.pid)) \(hms(r.startWallNs)): \(r.how); spawned by \(r.spawnedBy)"
                o += "<rect class=\"\(blocked ? "blocked" : "instance")\" x=\"\(f(bx))\" y=\"\(f(y))\" width=\"\(f(bw))\" height=\"\(f(barHeight))\" fill=\"\(blocked ? "#d62728" : "#1f77b4")\"><title>\(xml(tip))</title></rect>"
                if blocked {
                    o += "<path d=\"M\(f(bx - 4)) \(f(y - 2)) l8 8 m0 -8 l-8 8\" stroke=\"#d62728\" stroke-width=\"2\"/>"
                }
                o += "\n"
            }
        }
        return o + "</svg>\n"
    }

    /// A one-file report: the picture, then the text of who respawns it and the instances.
    public static func html(_ a: TimelineQuery.Answer, title: String, report: String) -> String {
        var rows = ""
        for r in a.rows {
            let e = r.process.image?.enforcement?.message ?? ""
            rows += "<tr><td>\(xml(iso(r.startWallNs)))</td><td>\(r.process.id.pid)</td><td>\(xml(r.exitWallNs.map(iso) ?? "-"))</td><td>\(xml(r.how))</td>"
            rows += "<td>\(xml(r.spawnedBy))</td><td>\(xml(r.process.image.map { Lineage.commandLine($0, maxBytes: 120) } ?? r.process.name))</td><td>\(xml(e))</td></tr>\n"
        }
        return """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><title>\(xml(title))</title>
            <style>body{font-family:"DejaVu Sans",sans-serif;margin:20px}pre{background:#f6f8fa;padding:10px;white-space:pre-wrap}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}</style>
            </head><body>
            <h1>\(xml(title))</h1>
            \(svg(a, title: title))
            <h2>Who respawns it</h2>
            <pre>\(xml(report))</pre>
            <h2>Instances</h2>
            <table><tr><th>start</th><th>pid</th><th>ended</th><th>how</th><th>spawned by</th><th>command</th><th>enforcement</th></tr>
            \(rows)</table>
            </body></html>

            """
    }

    /// Text for XML: control characters shown escaped, markup characters as entities.
    static func xml(_ s: String) -> String {
        var o = ""
        for c in Visible.escape(s) {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default: o.append(c)
            }
        }
        return o
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }
    static func iso(_ ns: Int64) -> String { Date(timeIntervalSince1970: Double(ns) / 1e9).formatted(.iso8601) }
    static func hms(_ ns: Int64) -> String {
        var secs = time_t(ns / 1_000_000_000), tm = Glibc.tm()
        localtime_r(&secs, &tm)
        return String(format: "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec)
    }
}
