import Foundation

/// Removes secrets from command lines before anything is stored, logged or audited.
/// A pattern is a glob over one argv element: `--password=*` hides what follows the first `=`
/// of a matching element; a pattern without `=` (`--password`) hides the element after it.
/// Words inside a command string (`sh -c "app --token=x"`) are treated the same way.
public struct Redactor: Sendable, Equatable {
    public static let mask = "[REDACTED]"
    /// `KEY=value` patterns match case-insensitively anywhere in the word (`--db-password=…`,
    /// `PGPASSWORD=…`, `jdbc:…?user=u&password=…`); flag patterns hide the next word.
    public static let defaults = [
        "--pass=*", "--auth=*", "*password=*", "*passwd=*", "*token=*", "*secret=*", "*secret_access_key=*",
        "*secret-key=*", "*secret_key=*", "*api_key=*", "*api-key=*", "*apikey=*", "*access_key=*", "*access-key=*",
        "*private_key=*", "*credentials=*",
        "--password", "--passwd", "--token", "--secret", "--api-key", "--client-secret",
    ]
    public let patterns: [String]
    // Split once: the daemon applies this to every exec, so most arguments must be rejected
    // without running a glob (an argument with no '=' cannot match a `KEY=*` pattern).
    private let valuePatterns: [String]
    private let flagLiterals: Set<String>
    private let flagGlobs: [String]
    // Lengths and first bytes of the literal flags: most arguments are rejected by two bit tests
    // instead of hashing them for the set.
    private let flagLengths: UInt64
    private let flagFirstBytes: [UInt64]

    public init(patterns: [String] = Redactor.defaults) {
        self.patterns = patterns
        valuePatterns = patterns.filter { $0.contains("=") }.map { $0.lowercased() }
        let flags = patterns.filter { !$0.contains("=") }
        let wild: (String) -> Bool = { $0.contains { "*?[".contains($0) } }
        flagLiterals = Set(flags.filter { !wild($0) })
        flagGlobs = flags.filter(wild)
        var lengths: UInt64 = 0
        var first = [UInt64](repeating: 0, count: 4)
        for f in flagLiterals {
            lengths |= 1 << UInt64(min(f.utf8.count, 63))
            let b = f.utf8.first ?? 0 // an empty flag: an empty argument's shape has first byte 0
            first[Int(b >> 6)] |= 1 << UInt64(b & 63)
        }
        flagLengths = lengths
        flagFirstBytes = first
    }

    /// What one argument holds, in one pass over its bytes.
    private struct Shape {
        var space = false, equals = false, dash = false
        var first: UInt8 = 0
        var count = 0
        /// May hold a form `maskForms` hides: a ':' (URL, Bearer header), a run of five dashes
        /// (PEM), or `-p…` (mysql's password).
        var form = false
    }

    private static func shape(_ a: String) -> Shape {
        func scan(_ u: UnsafeBufferPointer<UInt8>) -> Shape {
            var s = Shape()
            s.count = u.count
            s.first = u.first ?? 0
            var dashes = 0
            for b in u {
                if b == 0x2D { dashes += 1; if dashes == 5 { s.form = true } } else { dashes = 0 }
                if b == 0x20 { s.space = true } else if b == 0x3D { s.equals = true } else if b == 0x2D { s.dash = true } else if b == 0x3A { s.form = true }
            }
            if u.count > 2, u[0] == 0x2D, u[1] == 0x70 { s.form = true }
            return s
        }
        if let s = a.utf8.withContiguousStorageIfAvailable(scan) { return s }
        var c = a
        return c.withUTF8(scan)
    }

    private func mayBeFlag(_ s: Shape) -> Bool {
        if !flagGlobs.isEmpty { return true }
        return flagLengths >> UInt64(min(s.count, 63)) & 1 != 0
            && flagFirstBytes[Int(s.first >> 6)] >> UInt64(s.first & 63) & 1 != 0
    }

    public func apply(_ argv: [String]) -> [String] { redacted(argv) ?? argv }

    /// The record with every image's command line hidden where it holds a secret.
    public func apply(_ r: ProcessRecord) -> ProcessRecord {
        var r = r
        for k in r.images.indices { if let hidden = redacted(r.images[k].argv) { r.images[k].argv = hidden } }
        return r
    }

    /// The command line with its secrets hidden, or nil when it holds none (the common case,
    /// which the daemon meets at every exec: nothing is copied then).
    public func redacted(_ argv: [String]) -> [String]? {
        guard !patterns.isEmpty else { return nil }
        var out: [String]?
        var forms = false
        var i = 0
        while i < argv.count {
            let a = argv[i]
            let s = Redactor.shape(a)
            forms = forms || s.form
            if s.space {
                // A command string (`sh -c "…"`) hides its secrets word by word.
                if s.equals || s.dash,
                   let words = redacted(a.split(separator: " ", omittingEmptySubsequences: false).map(String.init)) {
                    if out == nil { out = argv }
                    out![i] = words.joined(separator: " ")
                }
            } else if s.equals {
                let lower = a.lowercased()
                if valuePatterns.contains(where: { Glob.match($0, lower) }), let eq = a.firstIndex(of: "=") {
                    if out == nil { out = argv }
                    out![i] = String(a[...eq]) + Redactor.mask
                }
            } else if i + 1 < argv.count, mayBeFlag(s), flagLiterals.contains(a) || flagGlobs.contains(where: { Glob.match($0, a) }) {
                if out == nil { out = argv }
                out![i + 1] = Redactor.mask
                i += 1
            }
            i += 1
        }
        // Forms no word pattern catches: URL credentials, bearer tokens, PEM keys, mysql's -pSECRET.
        // The scan above saw whether any word may hold one: most execs stop here.
        guard forms else { return out }
        let mysql = Redactor.mysqlClients.contains(String((argv.first ?? "").split(separator: "/").last ?? ""))
        for (k, a) in (out ?? argv).enumerated() {
            if let m = Redactor.maskForms(a, mysqlClient: mysql && k > 0) {
                if out == nil { out = argv }
                out![k] = m
            }
        }
        return out
    }

    static let mysqlClients: Set<String> = ["mysql", "mysqldump", "mysqladmin", "mariadb", "mariadb-dump", "mariadb-admin"]

    /// The word with credentials in the forms above hidden, or nil when it holds none.
    static func maskForms(_ a: String, mysqlClient: Bool) -> String? {
        if mysqlClient, a.hasPrefix("-p"), a.utf8.count > 2, !a.hasPrefix("--") { return "-p" + mask }
        guard shape(a).form else { return nil }
        if a.contains("PRIVATE KEY-----") { return mask + " (private key)" }
        guard a.utf8.contains(0x3A) else { return nil }
        var s = a
        var changed = false
        // scheme://user:password@host → scheme://user:[REDACTED]@host
        var from = s.startIndex
        while let r = s.range(of: "://", range: from..<s.endIndex) {
            let rest = s[r.upperBound...]
            let end = rest.firstIndex { $0 == "/" || $0 == " " || $0 == "\"" || $0 == "'" } ?? rest.endIndex
            if let at = rest[..<end].lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":"), rest[rest.index(after: colon)..<at] != Substring(mask) {
                s.replaceSubrange(s.index(after: colon)..<at, with: mask)
                changed = true
            }
            guard let next = s.range(of: "://", range: r.upperBound..<s.endIndex) else { break }
            from = next.lowerBound
        }
        // Authorization: Bearer TOKEN (any case)
        var search = s.startIndex
        while let r = s.range(of: "bearer ", options: .caseInsensitive, range: search..<s.endIndex) {
            let tokenEnd = s[r.upperBound...].firstIndex { $0 == " " || $0 == "\"" || $0 == "'" } ?? s.endIndex
            guard tokenEnd > r.upperBound, s[r.upperBound..<tokenEnd] != Substring(mask) else { search = r.upperBound; continue }
            s.replaceSubrange(r.upperBound..<tokenEnd, with: mask)
            changed = true
            search = s.index(r.upperBound, offsetBy: mask.count)
        }
        return changed ? s : nil
    }
}
