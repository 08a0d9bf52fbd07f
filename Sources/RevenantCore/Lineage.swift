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

    /// The login session `chain` (a process, then its ancestors nearest first) runs in: the
    /// oldest process of the chain that ran under the same loginuid, and the one that started
    /// it without one (`bash(815) from sshd(810), loginuid 1000`). A process that only forked
    /// runs its parent's session. Nil when the process has no loginuid.
    public static func session(_ chain: [ProcessRecord]) -> String? {
        guard let first = chain.first, let uid = first.image?.loginuid else { return nil }
        var root = first
        var from: ProcessRecord?
        for p in chain.dropFirst() {
            guard let img = p.image else { from = p; break }
            if img.loginuid != uid { from = p; break }
            root = p
        }
        return "\(root.name)(\(root.id.pid))" + (from.map { " from \($0.name)(\($0.id.pid))" } ?? "") + ", loginuid \(uid)"
    }

    public static func session(_ table: ProcessTable, of id: Identity) -> String? {
        guard let me = table[id] else { return nil }
        return session([me] + table.ancestry(of: id, limit: 32))
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
