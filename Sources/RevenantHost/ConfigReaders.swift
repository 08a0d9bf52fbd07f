import Foundation
import RevenantCore

/// Where a mechanism's configuration says to run the program, read under a root directory
/// (`/proc/<spawner>/root` while the spawner lives, so chroots and namespaces read their own).
public struct ConfigSource: Sendable, Encodable, Equatable {
    public var file: String
    public var line: Int
    public var text: String
    public var settings: [String: String] = [:]
    public var notes: [String] = []
    public var remediation: [String] = []
}

package struct RootFS {
    package let root: String
    package init(root: String) { self.root = root }
    package func path(_ p: String) -> String { root == "/" ? p : root + p }
    /// A path as the operator types it on this host: under the root, shell-quoted.
    package func shown(_ p: String) -> String { shellQuote(path(p)) }
    /// The file's lines, read safely under the root (see `SafeRead`); nil when refused.
    package func lines(_ p: String) -> [String]? { try? read(p).get() }
    package func read(_ p: String, user: (uid: UInt32, gid: UInt32)? = nil) -> Result<[String], SafeRead.Refusal> {
        SafeRead.lines(p, root: root, user: user)
    }
    package func list(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path(dir))) ?? []).sorted()
    }
    package func exists(_ p: String) -> Bool { FileManager.default.fileExists(atPath: path(p)) }
    /// Exists as a name, even a symlink whose absolute target lies outside this root.
    package func present(_ p: String) -> Bool { (try? FileManager.default.attributesOfItem(atPath: path(p))) != nil }
    package func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(path(pattern), 0, nil, &g) == 0 else { return [] }
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }
            .map { root == "/" ? $0 : String($0.dropFirst(root.count)) }.sorted()
    }
}

/// cron: /etc/crontab, /etc/cron.d (Debian's file-name rules), user spools, anacrontab.
public struct CronReader: Sendable {
    let fs: RootFS
    public init(root: String) { fs = RootFS(root: root) }

    /// Debian's cron ignores /etc/cron.d files whose names are not [A-Za-z0-9_-]+.
    public static func cronDNameValid(_ n: String) -> Bool {
        !n.isEmpty && n.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    /// The cron line whose command is `command`. `worker`: the program the job starts, which
    /// the remediation stops by its own command line (not by the job's `sh -c` line).
    public func find(command: String, worker: [String] = []) -> ConfigSource? {
        let want = command.trimmingCharacters(in: .whitespaces)
        var candidates: [(file: String, user: String?, hasUser: Bool)] = [("/etc/crontab", nil, true)]
        var ignored: [String] = []
        for f in fs.list("/etc/cron.d") {
            if CronReader.cronDNameValid(f) { candidates.append(("/etc/cron.d/\(f)", nil, true)) } else { ignored.append(f) }
        }
        for u in fs.list("/var/spool/cron/crontabs") { candidates.append(("/var/spool/cron/crontabs/\(u)", u, false)) }
        for u in fs.list("/var/spool/cron") where u != "crontabs" && u != "atjobs" && u != "atspool" {
            candidates.append(("/var/spool/cron/\(u)", u, false))
        }
        for c in candidates {
            guard let lines = fs.lines(c.file) else { continue }
            for (i, raw) in lines.enumerated() {
                let l = raw.trimmingCharacters(in: .whitespaces)
                guard !l.isEmpty, !l.hasPrefix("#"), let (user, cmd) = CronReader.split(l, hasUser: c.hasUser) else { continue }
                guard cmd == want || (want.count > 8 && cmd.contains(want)) || (cmd.count > 8 && want.contains(cmd)) else { continue }
                let who = c.user ?? user ?? "root"
                var src = ConfigSource(file: c.file, line: i + 1, text: l, settings: ["user": who])
                if !ignored.isEmpty { src.notes.append("ignored by cron (bad file names in /etc/cron.d): \(ignored.joined(separator: ", "))") }
                if let pat = CronReader.selfMatchingPgrep(cmd) {
                    src.notes.append("`pgrep -f \(pat)` also matches the job's own `sh -c` line, so this guard always finds something; write it as `pgrep -f '[\(pat.prefix(1))]\(pat.dropFirst())'`")
                }
                if c.file.hasPrefix("/var/spool/cron") {
                    src.remediation.append("crontab -u \(who) -l | grep -vxF \(shellQuote(raw)) | crontab -u \(who) -   # \(who)'s crontab, not root's")
                } else {
                    src.remediation.append("sed -i '\(i + 1)s/^/# /' \(fs.shown(c.file))   # cron re-reads it within a minute")
                }
                if let pat = programPattern(worker) {
                    src.remediation.append("pkill -f -- \(shellQuote(pat))   # then stop the instances it already started")
                } else {
                    src.remediation.append("pkill -f -- \(shellQuote("^" + regexEscape(cmd)))   # then stop what it already started")
                }
                return src
            }
        }
        if let lines = fs.lines("/etc/anacrontab") {
            for (i, l) in lines.enumerated() where !l.hasPrefix("#") && l.contains(want) {
                return ConfigSource(file: "/etc/anacrontab", line: i + 1, text: l, remediation: ["sed -i '\(i + 1)s/^/# /' \(fs.shown("/etc/anacrontab"))"])
            }
        }
        return nil
    }

    /// The pattern of a `pgrep -f PATTERN` guard that matches its own shell (no `[x]` trick, no anchor).
    public static func selfMatchingPgrep(_ cmd: String) -> String? {
        let t = cmd.split(separator: " ").map(String.init)
        guard let p = t.firstIndex(where: { $0 == "pgrep" || $0.hasSuffix("/pgrep") }) else { return nil }
        var full = false
        for tok in t[(p + 1)...] {
            if tok.hasPrefix("-") { if tok.dropFirst().contains("f") { full = true }; continue }
            let pat = tok.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
            return full && !pat.contains("[") && !pat.hasPrefix("^") && !pat.isEmpty ? pat : nil
        }
        return nil
    }

    /// (user, command) of a crontab line; nil for variable assignments.
    static func split(_ l: String, hasUser: Bool) -> (String?, String)? {
        if l.range(of: #"^[A-Za-z_][A-Za-z0-9_]*\s*="#, options: .regularExpression) != nil { return nil }
        var f = l.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let timeFields = f.first?.hasPrefix("@") == true ? 1 : 5
        guard f.count > timeFields + (hasUser ? 1 : 0) else { return nil }
        f.removeFirst(timeFields)
        let user = hasUser ? f.removeFirst() : nil
        return (user, f.joined(separator: " "))
    }
}

/// supervisord: the `-c` file (or default locations), its includes, the matching [program:x].
public struct SupervisorReader: Sendable {
    public static let defaults = ["/etc/supervisor/supervisord.conf", "/etc/supervisord.conf", "/etc/supervisor.conf"]
    let fs: RootFS
    public init(root: String) { fs = RootFS(root: root) }

    public func find(supervisordArgv: [String], cwd: String?, workerArgv: [String]) -> ConfigSource? {
        var conf: String?
        if let i = supervisordArgv.firstIndex(where: { $0 == "-c" || $0 == "--configuration" }), i + 1 < supervisordArgv.count {
            conf = supervisordArgv[i + 1]
            if !conf!.hasPrefix("/"), let cwd { conf = cwd + "/" + conf! }
        } else if let eq = supervisordArgv.first(where: { $0.hasPrefix("--configuration=") }) {
            conf = String(eq.dropFirst("--configuration=".count))
        }
        let files = conf.map { [$0] } ?? SupervisorReader.defaults.filter { fs.exists($0) }
        let want = workerArgv.joined(separator: " ")
        var visited: Set<String> = []
        var queue = files
        while let f = queue.first {
            queue.removeFirst()
            guard visited.insert(f).inserted, let lines = fs.lines(f) else { continue }
            let dir = (f as NSString).deletingLastPathComponent
            var section = "", header = 0, program = ""
            var found: ConfigSource?
            for (i, raw) in lines.enumerated() {
                let l = raw.trimmingCharacters(in: .whitespaces)
                if l.hasPrefix("[") {
                    if let found { return finish(found, conf: files.first) }
                    section = l; header = i + 1
                    program = l.hasPrefix("[program:") ? String(l.dropFirst(9).dropLast()) : ""
                    continue
                }
                guard let eq = l.firstIndex(of: "=") else { continue }
                let key = l[..<eq].trimmingCharacters(in: .whitespaces)
                let value = l[l.index(after: eq)...].trimmingCharacters(in: .whitespaces)
                if section == "[include]" && key == "files" {
                    for g in value.split(separator: " ") {
                        let pat = g.hasPrefix("/") ? String(g) : dir + "/" + g
                        queue += fs.glob(pat)
                    }
                }
                if !program.isEmpty && key == "command" {
                    let cmd = value.split(separator: " ").joined(separator: " ")
                    if cmd == want || (cmd.split(separator: " ").first.map { ($0 as Substring).split(separator: "/").last } ?? nil) == workerArgv.first?.split(separator: "/").last && cmd.split(separator: " ").dropFirst().joined(separator: " ") == workerArgv.dropFirst().joined(separator: " ") {
                        found = ConfigSource(file: f, line: i + 1, text: l, settings: ["program": program, "section_line": "\(header)"])
                    }
                }
                if var fd = found, key == "autostart" || key == "autorestart" {
                    fd.settings[key] = value
                    found = fd
                }
            }
            if let found { return finish(found, conf: files.first) }
        }
        return nil
    }

    private func finish(_ s: ConfigSource, conf: String?) -> ConfigSource {
        var s = s
        let p = s.settings["program"] ?? "?"
        s.settings["autorestart"] = s.settings["autorestart"] ?? "unexpected (default)"
        s.settings["autostart"] = s.settings["autostart"] ?? "true (default)"
        // supervisorctl finds the server through the same config file supervisord read.
        let ctl = conf.map { SupervisorReader.defaults.first == $0 ? "supervisorctl" : "supervisorctl -c \(fs.shown($0))" } ?? "supervisorctl"
        s.remediation = [
            "\(ctl) stop \(shellQuote(p))",
            "# in \(commentSafe(fs.path(s.file))) [program:\(commentSafe(p))] (line \(s.settings["section_line"] ?? "?")): set autostart=false and autorestart=false",
            "\(ctl) reread && \(ctl) update",
        ]
        return s
    }
}

/// rc.local and loop scripts: the line that runs the command.
public struct ScriptReader: Sendable {
    let fs: RootFS
    public init(root: String) { fs = RootFS(root: root) }

    /// The line of `file` that runs `command`, or nil. `user`: the file was named on that
    /// user's command line, so it is read only if that user could read it.
    public func find(in file: String, command: [String], user: (uid: UInt32, gid: UInt32)? = nil) -> ConfigSource? {
        try? lookup(in: file, command: command, user: user).get()
    }

    /// As `find`, saying why the file was not read. Success with nil: read, and no line holds the command.
    /// `shell`: a shell script, whose lines must run the command; another language's line
    /// need only hold the program's path (`ScriptLine.mentions`).
    public func lookup(in file: String, command: [String], user: (uid: UInt32, gid: UInt32)? = nil,
                       shell: Bool = true) -> Result<ConfigSource?, SafeRead.Refusal> {
        fs.read(file, user: user).map { lines in
            let hit = lines.indices.first { shell ? ScriptLine.runs(lines[$0], command) : ScriptLine.mentions(lines[$0], command) }
            return hit.map { ConfigSource(file: file, line: $0 + 1, text: lines[$0].trimmingCharacters(in: .whitespaces)) }
        }
    }
}

/// An extended regular expression for `pkill -f` that matches the program's instances, whatever
/// their arguments: the command line up to its script (or executable), then a blank or the end.
package func programPattern(_ argv: [String]) -> String? {
    guard let first = argv.first, !first.isEmpty else { return nil }
    var end = 0
    if let script = Program(Image(time: 0, filename: first, argv: argv, comm: "")).script {
        let base = script.split(separator: "/").last.map(String.init) ?? script
        let at = argv.indices.dropFirst().first { argv[$0] == script || argv[$0] == base || argv[$0].hasSuffix("/" + base) || "-m " + argv[$0] == script }
        end = at ?? 0
    }
    return "^" + regexEscape(argv[...end].joined(separator: " ")) + "( |$)"
}

/// One shell word, single-quoted.
package func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

/// A literal string as an extended regular expression (pkill -f, grep -E).
package func regexEscape(_ s: String) -> String {
    var out = ""
    for c in s {
        if "\\.^$|?*+()[]{}".contains(c) { out.append("\\") }
        out.append(c)
    }
    return out
}

/// Text for a `# comment` in a suggested command list: a line break would end the comment
/// and start a command, so control characters are shown escaped.
package func commentSafe(_ s: String) -> String { Visible.escape(s) }
