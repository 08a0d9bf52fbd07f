/// Renders fork-time ancestry for one-line output.
public enum Lineage {
    /// `sh(8120) ← CRON(8119) ← cron(512) ← systemd(1)`; `?` marks where lineage is unknown.
    public static func chain(_ table: ProcessTable, of id: Identity, limit: Int = 12) -> String {
        let ancestors = table.ancestry(of: id, limit: limit)
        var parts = ancestors.map { "\($0.name)(\($0.id.pid))" + ($0.seeded && $0.parentIsCurrentOnly && $0.parent == nil ? "" : "") }
        let last = ancestors.last ?? table[id]
        if ancestors.count == limit {
            parts.append("…")
        } else if let last {
            if let p = last.parent, table[p] == nil {
                parts.append("?(\(p.pid))")       // known parent, no longer on record
            } else if last.parent == nil && last.id.pid != 1 {
                parts.append("?")                 // predates tracing: unknown
            }
        }
        return parts.joined(separator: " ← ")
    }

    /// The command line shown for an image: argv, or the path when argv is empty.
    public static func commandLine(_ img: Image, maxBytes: Int = 160) -> String {
        let text = img.argv.isEmpty ? img.filename : img.argv.joined(separator: " ")
        return shorten(text, maxBytes: maxBytes)
    }

    public static func shorten(_ s: String, maxBytes: Int) -> String {
        guard s.utf8.count > maxBytes else { return s }
        var out = ""
        for ch in s {
            if out.utf8.count + ch.utf8.count > maxBytes - 3 { break }
            out.append(ch)
        }
        return out + "…"
    }
}
