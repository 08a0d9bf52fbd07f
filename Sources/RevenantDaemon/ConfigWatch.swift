import CRevenantOS
import Foundation
import Glibc
import RevenantCore
import RevenantOutputs
import RevenantQuery
import RevenantStore
import RevenantKernel
import RevenantHost
import Synchronization

/// Watches the directories respawn mechanisms read their configuration from (fanotify with
/// directory handles and names: one mark per directory, the writer's PID with each event).
final class ConfigWatch: @unchecked Sendable {
    /// Directories watched when they exist; in /etc only the files named here.
    static let directories = ["/etc/cron.d", "/var/spool/cron/crontabs", "/var/spool/cron", "/etc/systemd/system",
                              "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system",
                              "/etc/systemd/user", "/usr/lib/systemd/user", "/etc/supervisor",
                              "/etc/supervisor/conf.d", "/etc/init.d", "/etc"]
    static let etcFiles: Set<String> = ["crontab", "rc.local", "supervisord.conf"]
    /// Unit directories: their `*.wants`, `*.requires` and `*.d` subdirectories are watched too.
    static func isUnitDirectory(_ d: String) -> Bool { d.hasSuffix("/systemd/system") || d.hasSuffix("/systemd/user") }
    /// At most this many directories are marked (each mark costs the kernel a little memory).
    static let markLimit = 4096

    struct Raw: Sendable {
        var pid: Int32; var kind: ConfigChange.Kind; var path: String; var timeWallNs: Int64
        /// The kernel's queue overflowed: changes were dropped here.
        var lost = false
    }

    /// A marked directory: every file in it, or only the ones named.
    struct Mark { var path: String; var files: Set<String>? }

    private let fd: Int32
    private let marks = Mutex<(byHandle: [[UInt8]: Mark], byPath: [String: [UInt8]])>(([:], [:]))
    private let changed: @Sendable (Raw) -> Void
    /// Files named by findings (a loop's script, a supervisord include, a container's unit).
    private let extraFiles = Mutex<Set<String>>([])

    var watched: [String] { marks.withLock { $0.byPath.keys.sorted() } }

    /// Nil when fanotify is not available (the reason in `error`).
    init?(changed: @escaping @Sendable (Raw) -> Void, error: inout String?) {
        let f = rv_fan_init()
        guard f >= 0 else { error = String(cString: strerror(-f)); return nil }
        fd = f
        self.changed = changed
        rescan()
        let t = Thread { [self] in self.run() }
        t.name = "revenant-config-watch"
        t.start()
        let r = Thread { [weak self] in
            while true {
                Thread.sleep(forTimeInterval: ConfigWatch.rescanSeconds)
                guard let self else { return }
                self.rescan()
            }
        }
        r.name = "revenant-config-rescan"
        r.start()
    }

    /// How often directories that did not exist are looked for again.
    static let rescanSeconds = 10.0

    /// Marks what exists now and was not marked: a directory created after start (a unit
    /// directory, a user's unit directory, supervisord's includes), called on a timer.
    func rescan() {
        var want: [(String, Set<String>?)] = ConfigWatch.directories.map { ($0, $0 == "/etc" ? ConfigWatch.etcFiles : nil) }
        for home in ConfigWatch.homes() { want.append(("\(home)/.config/systemd/user", nil)) }
        for d in ConfigWatch.directories where ConfigWatch.isUnitDirectory(d) { want += ConfigWatch.subdirectories(of: d).map { ($0, nil) } }
        want += ConfigWatch.supervisorIncludes().map { ($0, nil) }
        var byDir: [String: Set<String>] = [:]
        for f in extraFiles.withLock({ $0 }) {
            byDir[(f as NSString).deletingLastPathComponent, default: []].insert((f as NSString).lastPathComponent)
        }
        want += byDir.map { ($0.key, $0.value) }
        // A root whose process is gone is forgotten (its PID may come back as another).
        let live = roots.withLock { r -> [String] in
            r = r.filter { access($0, F_OK) == 0 }
            return Array(r)
        }
        for root in live {
            want += ConfigWatch.directories.map { (root + $0, $0 == "/etc" ? ConfigWatch.etcFiles : nil) }
            for d in ConfigWatch.directories where ConfigWatch.isUnitDirectory(d) { want += ConfigWatch.subdirectories(of: root + d).map { ($0, nil) } }
        }
        for (d, files) in want { mark(d, files: files) }
    }

    /// Roots of namespaced managers (`/proc/PID/root`) whose configuration a finding read.
    private let roots = Mutex<Set<String>>([])

    /// Also watches the configuration directories under a namespaced manager's root (a
    /// container's systemd, a chroot's cron); rescans pick up what appears there later.
    func watch(root: String) {
        guard ConfigWatch.isProcRoot(root), roots.withLock({ $0.insert(root).inserted }) else { return }
        for d in ConfigWatch.directories { mark(root + d, files: d == "/etc" ? ConfigWatch.etcFiles : nil) }
    }

    /// `/proc/PID/root`: the only paths under /proc worth a mark.
    static func isProcRoot(_ p: String) -> Bool {
        let parts = p.split(separator: "/")
        return parts.count == 3 && parts[0] == "proc" && Int32(parts[1]) != nil && parts[2] == "root"
    }

    /// Also watches this file (its directory, for this name): a source a finding named.
    func watch(file: String) {
        let underRoot = file.split(separator: "/").count > 3 && ConfigWatch.isProcRoot("/" + file.split(separator: "/").prefix(3).joined(separator: "/"))
        guard file.hasPrefix("/"), !file.hasPrefix("/proc/") || underRoot else { return }
        let dir = (file as NSString).deletingLastPathComponent, name = (file as NSString).lastPathComponent
        let isNew = extraFiles.withLock { $0.insert(file).inserted }
        if isNew { mark(dir, files: [name]) }
    }

    private func mark(_ dir: String, files: Set<String>?) {
        let known = marks.withLock { m -> Bool in
            guard let h = m.byPath[dir] else { return false }
            // Already marked: widen what is reported from it.
            if let add = files, let have = m.byHandle[h]?.files { m.byHandle[h]?.files = have.union(add) }
            else if files == nil { m.byHandle[h]?.files = nil }
            return true
        }
        guard !known, marks.withLock({ $0.byPath.count }) < ConfigWatch.markLimit else { return }
        var handle = [UInt8](repeating: 0, count: 256)
        let n = rv_fan_mark_dir(fd, dir, &handle, Int32(handle.count))
        guard n > 0 else { return }
        let key = Array(handle.prefix(Int(n)))
        marks.withLock { m in
            // /lib is /usr/lib on a merged-/usr system: one directory, named as listed first.
            guard m.byHandle[key] == nil else { return }
            m.byHandle[key] = Mark(path: dir, files: files)
            m.byPath[dir] = key
        }
    }

    static func homes() -> [String] {
        var out = ["/root"]
        if let names = try? FileManager.default.contentsOfDirectory(atPath: "/home") { out += names.sorted().map { "/home/\($0)" } }
        return out
    }

    static func subdirectories(of dir: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        return names.filter(isUnitSubdirectory).sorted().map { "\(dir)/\($0)" }.filter {
            var st = stat()
            return lstat($0, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        }
    }

    static func isUnitSubdirectory(_ name: String) -> Bool {
        name.hasSuffix(".wants") || name.hasSuffix(".requires") || name.hasSuffix(".d")
    }

    /// The directories of supervisord's `[include] files =` globs (relative to the config's directory).
    static func supervisorIncludes(config: String = "/etc/supervisor/supervisord.conf") -> [String] {
        guard let text = try? String(contentsOfFile: config, encoding: .utf8) else { return [] }
        var inInclude = false, out: [String] = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") { inInclude = line == "[include]"; continue }
            guard inInclude, line.hasPrefix("files") else { continue }
            let value = line.split(separator: "=", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
            for glob in value.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                var dir = (String(glob) as NSString).deletingLastPathComponent
                if !dir.hasPrefix("/") { dir = "/etc/supervisor/" + dir }
                // A glob in the directory part is not followed.
                if !dir.contains(where: { "*?[".contains($0) }) { out.append((dir as NSString).standardizingPath) }
            }
        }
        return out
    }

    private func run() {
        let box = Unmanaged.passUnretained(self).toOpaque()
        while true {
            let n = rv_fan_read(fd, { ctx, pid, mask, handle, hlen, name in
                let me = Unmanaged<ConfigWatch>.fromOpaque(ctx!).takeUnretainedValue()
                me.event(pid: pid, mask: mask, handle: Array(UnsafeBufferPointer(start: handle, count: Int(hlen))), name: String(cString: name!))
            }, box)
            if n < 0 && -n != EINTR { return }
        }
    }

    private func event(pid: Int32, mask: UInt64, handle: [UInt8], name: String) {
        let now = WallClock.nowNs()
        if mask & 0x4000 != 0 {   // FAN_Q_OVERFLOW
            changed(Raw(pid: 0, kind: .modified, path: "", timeWallNs: now, lost: true))
            return
        }
        guard let m = marks.withLock({ $0.byHandle[handle] }), !name.isEmpty, name != "." else { return }
        let path = m.path == "/" ? "/" + name : m.path + "/" + name
        if mask & 0x4000_0000 != 0 {   // FAN_ONDIR: a directory in a watched one
            if ConfigWatch.isUnitDirectory(m.path), ConfigWatch.isUnitSubdirectory(name), mask & (0x100 | 0x80) != 0 {
                mark(path, files: nil)
            } else {
                return
            }
        }
        if let files = m.files, !files.contains(name) { return }
        // Editors' and dpkg's temporary names are not configuration.
        if name.hasPrefix(".") || name.hasSuffix("~") || name.hasSuffix(".swp") { return }
        let kind: ConfigChange.Kind
        if mask & 0x100 != 0 { kind = .created }
        else if mask & 0x200 != 0 { kind = .deleted }
        else if mask & 0x40 != 0 { kind = .renamedFrom }
        else if mask & 0x80 != 0 { kind = .renamedTo }
        else if mask & 0x8 != 0 { kind = .modified }
        else if mask & 0x4 != 0 { kind = .attributes }
        else { return }   // FAN_MODIFY: the close that follows says it once
        changed(Raw(pid: pid, kind: kind, path: path, timeWallNs: now))
    }
}
