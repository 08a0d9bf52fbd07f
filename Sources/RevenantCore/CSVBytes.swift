/// One CSV row (RFC 4180) written straight into bytes, for `export --format csv`. Each cell is
/// what `CSVBytes.slowCell` makes of it: escaped for terminals, defused as a spreadsheet
/// formula, quoted when it must be; a cell of plain printable ASCII takes a byte scan only.
public struct CSVBytes {
    public var bytes: [UInt8] = []
    private var cells = 0

    public init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    public mutating func cell(_ s: String?) {
        separate()
        guard var s, !s.isEmpty else { return }
        let plain = s.withUTF8 { u -> Bool in
            // Printable ASCII without a quote or comma, not opening like a formula.
            guard let f = u.first, f != UInt8(ascii: "="), f != UInt8(ascii: "+"), f != UInt8(ascii: "-"), f != UInt8(ascii: "@") else { return false }
            for c in u where c < 0x20 || c >= 0x7f || c == UInt8(ascii: ",") || c == UInt8(ascii: "\"") { return false }
            bytes.append(contentsOf: u)
            return true
        }
        if !plain { bytes.append(contentsOf: CSVBytes.slowCell(s).utf8) }
    }

    public mutating func cell(_ v: Int64?) {
        separate()
        // A negative number opens with `-`: defused like any such cell, as `slowCell` does.
        if let v { var j = JSONBytes(capacity: 20); if v < 0 { j.bytes.append(UInt8(ascii: "'")) }; j.int(v); bytes.append(contentsOf: j.bytes) }
    }

    public mutating func cell(isoTime wallNs: Int64?) {
        separate()
        if let wallNs { JSONBytes.iso(wallNs, into: &bytes) }
    }

    private mutating func separate() {
        if cells > 0 { bytes.append(UInt8(ascii: ",")) }
        cells += 1
    }

    /// Any text as a cell: terminal escapes shown as text, a leading `= + - @ tab CR` defused
    /// with a `'`, quoted (quotes doubled) when it holds a comma, a quote or a line break.
    public static func slowCell(_ s: String) -> String {
        quote(Visible.csvCell(Visible.escape(s)))
    }

    public static func quote(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
