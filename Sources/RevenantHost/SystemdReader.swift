import Foundation
import RevenantCore

/// systemd units: search path, templates, drop-ins, effective Restart=/RestartSec=, what pulls
/// them in, and what triggers them. The system manager's, or one user's (`user`).
public struct SystemdReader: Sendable {
    /// The system manager's search path, in its order of precedence.
    public static let searchPath = ["/etc/systemd/system.control", "/run/systemd/transient", "/run/systemd/generator.early",
                                    "/etc/systemd/system", "/run/systemd/system", "/run/systemd/generator",
                                    "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system",
                                    "/run/systemd/generator.late"]
    public struct User: Sendable, Equatable {
        public var name: String
        public var uid: UInt32
        public var home: String
    }
    let fs: RootFS
    let user: User?
    public init(root: String, user: User? = nil) { fs = RootFS(root: root); self.user = user }

    var searchPath: [String] {
        guard let u = user else { return SystemdReader.searchPath }
        return ["\(u.home)/.config/systemd/user.control", "/run/user/\(u.uid)/systemd/transient", "\(u.home)/.config/systemd/user",
                "/etc/systemd/user", "/run/user/\(u.uid)/systemd/user", "/run/systemd/user",
                "\(u.home)/.local/share/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user", "/lib/systemd/user"]
    }
    /// Where `enable` puts its links.
    var enableDir: String { user.map { "\($0.home)/.config/systemd/user" } ?? "/etc/systemd/system" }
    /// `systemctl` for this manager, as an operator types it as root.
    public var systemctl: String { user.map { "systemctl --user -M \(shellQuote($0.name + "@"))" } ?? "systemctl" }

    /// A user from the root's /etc/passwd.
    public static func user(uid: UInt32, root: String) -> User? {
        for l in RootFS(root: root).lines("/etc/passwd") ?? [] {
            let f = l.split(separator: ":", omittingEmptySubsequences: false)
            if f.count >= 6, UInt32(f[2]) == uid { return User(name: String(f[0]), uid: uid, home: String(f[5])) }
        }
        return nil
    }

    /// The unit's configuration; the source line is its effective `key=` line (Restart= says
    /// why it comes back; ExecStart= holds an inline loop).
    public func unit(_ name: String, line key: String = "Restart") -> ConfigSource? {
        let template = name.contains("@") ? String(name[..<name.firstIndex(of: "@")!]) + "@" + "." + name.split(separator: ".").last! : nil
        var file: String?
        for dir in searchPath {
            if fs.exists("\(dir)/\(name)") { file = "\(dir)/\(name)"; break }
            if let t = template, fs.exists("\(dir)/\(t)") { file = "\(dir)/\(t)"; break }
        }
        guard let file, let lines = fs.lines(file) else { return nil }
        var src = ConfigSource(file: file, line: 0, text: "")
        var section = ""
        func scan(_ f: String, _ ls: [String]) {
            for (i, raw) in ls.enumerated() {
                let l = raw.trimmingCharacters(in: .whitespaces)
                if l.hasPrefix("[") { section = l; continue }
                guard let eq = l.firstIndex(of: "=") else { continue }
                let k = String(l[..<eq]).trimmingCharacters(in: .whitespaces)
                let value = String(l[l.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
                if section == "[Unit]", k == "SourcePath" { src.settings[k] = value }
                guard section == "[Service]" else { continue }
                if ["Restart", "RestartSec", "KillMode"].contains(k) { src.settings[k] = value }
                if k == key { src.file = f; src.line = i + 1; src.text = l }
            }
        }
        scan(file, lines)
        // Drop-ins, in name order, override the unit file.
        var dropDirs = searchPath.map { "\($0)/\(name).d" }
        if let t = template { dropDirs += searchPath.map { "\($0)/\(t).d" } }
        for dir in dropDirs {
            for f in fs.list(dir) where f.hasSuffix(".conf") {
                section = ""
                if let ls = fs.lines("\(dir)/\(f)") {
                    src.notes.append("drop-in \(dir)/\(f)")
                    scan("\(dir)/\(f)", ls)
                }
            }
        }
        if src.line == 0 { src.line = 1; src.text = lines.first ?? "" }
        for dir in fs.list(enableDir) where dir.hasSuffix(".wants") || dir.hasSuffix(".requires") {
            if fs.present("\(enableDir)/\(dir)/\(name)") { src.notes.append("pulled in by \(dir) (enabled)") }
        }
        if let t = trigger(for: name) {
            src.notes.append("started by \(t.settings["trigger"] ?? "a trigger") \(t.file):\(t.line)  \(t.text)")
            src.remediation.append("\(systemctl) disable --now \(t.settings["trigger"] ?? "")")
        }
        src.remediation += stop(name, file: file, settings: src.settings, notes: &src.notes)
        return src
    }

    /// The commands that stop the unit for good, by where its file lives.
    func stop(_ name: String, file: String, settings: [String: String], notes: inout [String]) -> [String] {
        if file.contains("/systemd/transient/") {
            notes.append("transient unit (systemd-run): it lasts until stopped or the next boot; there is nothing to disable")
            return ["\(systemctl) stop \(name)"]
        }
        if file.hasPrefix("/run/systemd/generator"), let script = settings["SourcePath"] {
            notes.append("generated by systemd-sysv-generator from \(script)")
            return ["\(systemctl) disable --now \(name)   # the SysV script's links go too (update-rc.d)",
                    "\(systemctl) mask \(name)   # so nothing can start it again"]
        }
        var out = ["\(systemctl) disable --now \(name)"]
        if file.hasPrefix(enableDir + "/") {
            out.append("# a unit file under \(enableDir) cannot be masked: move \(commentSafe(fs.path(file))) away, then \(systemctl) daemon-reload")
        } else {
            out.append("\(systemctl) mask \(name)   # so nothing can start it again")
        }
        return out
    }
}

extension SystemdReader {
    /// The sections and keys that make a unit a trigger of another.
    struct Trigger: Sendable {
        var suffix: String, section: String, prefixes: [String]
        func keys(_ k: String) -> Bool { prefixes.contains { k.hasPrefix($0) } }
    }
    static let triggers = [
        Trigger(suffix: ".timer", section: "[Timer]", prefixes: ["On"]),
        Trigger(suffix: ".path", section: "[Path]", prefixes: ["PathExists", "PathChanged", "PathModified", "DirectoryNotEmpty"]),
        Trigger(suffix: ".socket", section: "[Socket]", prefixes: ["Listen"]),
    ]

    /// The timer, path or socket unit that starts `service`: one whose `Unit=` names it, else
    /// the one of the same name (a socket's `NAME@.service` too). Its source line is its first
    /// trigger line; `settings["trigger"]` its name.
    public func trigger(for service: String) -> ConfigSource? {
        let base = service.hasSuffix(".service") ? String(service.dropLast(8)) : service
        let instanceBase = base.firstIndex(of: "@").map { String(base[..<$0]) }
        var seen: Set<String> = []
        for dir in searchPath {
            for t in fs.list(dir).sorted() where !seen.contains(t) {
                guard let kind = SystemdReader.triggers.first(where: { t.hasSuffix($0.suffix) }) else { continue }
                seen.insert(t)
                guard let ls = fs.lines("\(dir)/\(t)") else { continue }
                var section = "", unit: String?, first: (Int, String)?
                var settings = ["trigger": t]
                for (i, raw) in ls.enumerated() {
                    let l = raw.trimmingCharacters(in: .whitespaces)
                    if l.hasPrefix("[") { section = l; continue }
                    guard section == kind.section, let eq = l.firstIndex(of: "=") else { continue }
                    let key = String(l[..<eq]).trimmingCharacters(in: .whitespaces)
                    let value = String(l[l.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
                    if key == "Unit" { unit = value }
                    if kind.keys(key) {
                        settings[key] = value
                        if first == nil { first = (i + 1, l) }
                    }
                }
                let own = String(t.dropLast(kind.suffix.count))
                guard unit.map({ $0 == service }) ?? (own == base || kind.suffix == ".socket" && own == instanceBase) else { continue }
                if kind.suffix == ".timer" { settings["timer"] = t }
                var src = ConfigSource(file: "\(dir)/\(t)", line: first?.0 ?? 1, text: first?.1 ?? ls.first ?? "", settings: settings)
                for w in fs.list(enableDir) where w.hasSuffix(".wants") && fs.present("\(enableDir)/\(w)/\(t)") {
                    src.notes.append("\(kind.suffix.dropFirst()) pulled in by \(w) (enabled)")
                }
                src.remediation = ["\(systemctl) disable --now \(t)   # the \(kind.suffix.dropFirst()) first, or it starts \(service) again",
                                   "\(systemctl) stop \(service)"]
                return src
            }
        }
        return nil
    }

    /// `timer` of old: the trigger when it is a timer.
    public func timer(for service: String) -> ConfigSource? {
        trigger(for: service).flatMap { $0.settings["timer"] != nil ? $0 : nil }
    }

    /// A user's lingering manager runs at boot, with no login.
    public func lingers() -> Bool { user.map { fs.present("/var/lib/systemd/linger/\($0.name)") } ?? false }
}
