/// Text from other users (argv, comm, paths, configuration lines) made safe for a terminal and
/// for a line-oriented log: control characters, C1 controls and bidirectional overrides are
/// shown escaped (`\e`, `\n`, `\x07`, `\u{202e}`), so they can neither move the cursor, retitle
/// the terminal nor forge a line. JSON needs none of this: its encoder escapes them.
public enum Visible {
    public static func escape(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: needsEscape) else { return s }
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            guard needsEscape(u) else { out.append(u); continue }
            let text: String
            switch u.value {
            case 0x1b: text = "\\e"
            case 0x0a: text = "\\n"
            case 0x0d: text = "\\r"
            case 0x09: text = "\\t"
            case 0..<0x100: text = "\\x" + hex(u.value, 2)
            default: text = "\\u{" + hex(u.value, 4) + "}"
            }
            out.append(contentsOf: text.unicodeScalars)
        }
        return String(out)
    }

    static func needsEscape(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        return v < 0x20 || v == 0x7f || (0x80...0x9f).contains(v)
            || (0x202a...0x202e).contains(v) || (0x2066...0x2069).contains(v) || v == 0x200e || v == 0x200f
    }

    private static func hex(_ v: UInt32, _ width: Int) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - h.count)) + h
    }

    /// A CSV cell a spreadsheet will not run as a formula (OWASP): one starting with `=`, `+`,
    /// `-`, `@`, a tab or a carriage return is prefixed with `'`.
    public static func csvCell(_ s: String) -> String {
        guard let f = s.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(f) else { return s }
        return "'" + s
    }
}
