/// Whether a line of a shell script runs a command: the test behind every source line shown
/// for a shell loop or rc.local. A line that shares a word with the command is not enough.
public enum ScriptLine {
    /// True when the line, not a comment and not a bare assignment, holds the whole command
    /// line, or names its program: the executable (path or name) as a word followed, for an
    /// interpreter, by its script path as a word.
    public static func runs(_ line: String, _ argv: [String]) -> Bool {
        let l = line.trimmingCharacters(in: .whitespaces)
        guard !l.isEmpty, !l.hasPrefix("#"), !isAssignment(l), let exe = argv.first, !exe.isEmpty else { return false }
        if argv.count > 1, l.contains(argv.joined(separator: " ")) { return true }
        let script = argv.dropFirst().first { !$0.hasPrefix("-") }
        let base = { (p: String) in String(p.split(separator: "/").last ?? "") }
        // The executable in command position, followed by the script if it has one.
        for name in [exe, base(exe)] {
            for at in commands(name, in: l) {
                guard let script else { return true }
                let rest = String(l[at...])
                if word(script, in: rest) != nil || word(base(script), in: rest) != nil { return true }
            }
        }
        // The script run directly (a `#!` script: the kernel put its interpreter in argv[0]).
        if let script { for name in [script, base(script)] where !commands(name, in: l).isEmpty { return true } }
        return false
    }

    /// True when a line of a program in another language (a Python or Node keep-alive) holds
    /// the program's path: its script's, else its executable's, as a whole word. Comments and
    /// lines that merely share a word do not count.
    public static func mentions(_ line: String, _ argv: [String]) -> Bool {
        let l = line.trimmingCharacters(in: .whitespaces)
        guard !l.isEmpty, !l.hasPrefix("#"), !l.hasPrefix("//"), let exe = argv.first, !exe.isEmpty else { return false }
        if runs(l, argv) { return true }
        let script = argv.dropFirst().first { !$0.hasPrefix("-") }
        let path = script ?? exe
        guard path.contains("/") else { return l.contains("\"\(path)\"") || l.contains("'\(path)'") }
        return word(path, in: l) != nil
    }

    /// Where `w` stands as a word at the start of a command: first on the line or after a
    /// separator, a keyword or a launcher (`exec`, `nohup`, an interpreter…).
    static func commands(_ w: String, in s: String) -> [String.Index] {
        var out: [String.Index] = []
        var from = s.startIndex
        while from < s.endIndex, let at = word(w, in: s, from: from) {
            let end = s.index(at, offsetBy: w.count)
            // A command word ends at a blank or an operator: `root:*:…` is not the command `root`.
            let ends = end == s.endIndex || " \t;&|)<>".contains(s[end])
            if ends, inCommandPosition(s, at) { out.append(at) }
            from = s.index(after: at)
        }
        return out
    }

    static let launchers: Set<String> = ["do", "then", "else", "exec", "nohup", "time", "env", "sudo", "setsid", "nice",
                                         "ionice", "chrt", "taskset", "runuser", "su", "timeout", "stdbuf", "command",
                                         "sh", "bash", "dash", "zsh", "ksh", "python", "python3", "perl", "ruby", "node"]

    static func inCommandPosition(_ s: String, _ at: String.Index) -> Bool {
        let before = s[..<at].trimmingCharacters(in: .whitespaces)
        guard let last = before.last else { return true }
        if ";&|({`".contains(last) { return true }
        let previous = before.split(whereSeparator: { $0 == " " || $0 == "\t" }).last.map(String.init) ?? ""
        let name = String(previous.split(separator: "/").last ?? "")
        return launchers.contains(name) || name.hasPrefix("python")
    }

    /// `NAME=value` alone (or exported): it names a path, it runs nothing.
    static func isAssignment(_ l: String) -> Bool {
        var s = Substring(l)
        if s.hasPrefix("export ") { s = s.dropFirst(7).drop { $0 == " " } }
        guard let eq = s.firstIndex(of: "="), eq > s.startIndex,
              s[..<eq].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { return false }
        let value = s[s.index(after: eq)...]
        // One word of value (quoted or not) and nothing after it.
        let v = value.trimmingCharacters(in: .whitespaces)
        if v.first == "\"" || v.first == "'" { return v.dropFirst().firstIndex(of: v.first!).map { v.index(after: $0) == v.endIndex } ?? false }
        return !v.contains(" ") && !v.contains(";") && !v.contains("&")
    }

    /// Where `w` stands as a whole word in `s` (not part of a longer path or name).
    static func word(_ w: String, in s: String, from start: String.Index? = nil) -> String.Index? {
        guard !w.isEmpty else { return nil }
        var from = start ?? s.startIndex
        while let r = s.range(of: w, range: from..<s.endIndex) {
            let before = r.lowerBound == s.startIndex ? nil : s[s.index(before: r.lowerBound)]
            let after = r.upperBound == s.endIndex ? nil : s[r.upperBound]
            if !isWordChar(before), !isWordChar(after) { return r.lowerBound }
            from = s.index(after: r.lowerBound)
        }
        return nil
    }

    private static func isWordChar(_ c: Character?) -> Bool {
        guard let c else { return false }
        return c.isLetter || c.isNumber || c == "_" || c == "." || c == "/" || c == "-"
    }
}
