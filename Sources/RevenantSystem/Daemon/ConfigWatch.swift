import CRevenantBPF
import Foundation
import Glibc
import RevenantCore
import Synchronization

/// Watches the directories respawn mechanisms read their configuration from (fanotify with
/// directory handles and names: one mark per directory, the writer's PID with each event).
final class ConfigWatch: @unchecked Sendable {
    /// Directories watched when they exist; in /etc only the files named here.
    static let directories = ["/etc/cron.d", "/var/spool/cron/crontabs", "/var/spool/cron", "/etc/systemd/system",
                              "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system", "/etc/supervisor",
                              "/etc/supervisor/conf.d", "/etc/init.d", "/etc"]
    static let etcFiles: Set<String> = ["crontab", "rc.local", "supervisord.conf"]

    struct Raw: Sendable { var pid: Int32; var kind: ConfigChange.Kind; var path: String; var timeWallNs: Int64 }

    private let fd: Int32
    private var dirs: [[UInt8]: String] = [:]
    private let changed: @Sendable (Raw) -> Void
    let watched: [String]

    /// Nil when fanotify is not available (the reason in `error`).
    init?(changed: @escaping @Sendable (Raw) -> Void, error: inout String?) {
        let f = rv_fan_init()
        guard f >= 0 else { error = String(cString: strerror(-f)); return nil }
        fd = f
        self.changed = changed
        var ok: [String] = []
        for d in ConfigWatch.directories {
            var handle = [UInt8](repeating: 0, count: 256)
            let n = rv_fan_mark_dir(fd, d, &handle, Int32(handle.count))
            // /lib is /usr/lib on a merged-/usr system: one directory, named as listed first.
            if n > 0, dirs[Array(handle.prefix(Int(n)))] == nil { dirs[Array(handle.prefix(Int(n)))] = d; ok.append(d) }
        }
        watched = ok
        let t = Thread { [self] in self.run() }
        t.name = "revenant-config-watch"
        t.start()
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
        guard let dir = dirs[handle], !name.isEmpty, name != "." else { return }
        if dir == "/etc", !ConfigWatch.etcFiles.contains(name) { return }
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
        changed(Raw(pid: pid, kind: kind, path: dir == "/" ? "/" + name : dir + "/" + name, timeWallNs: WallClock.nowNs()))
    }
}
