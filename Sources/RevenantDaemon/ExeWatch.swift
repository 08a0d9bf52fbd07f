import Foundation
import RevenantHost
import RevenantKernel
import Glibc
import Synchronization

/// Watches the directories of the policy's executables (inotify): a package upgrade writes a
/// new file and renames it over the old one, and the rule, keyed by the old inode, would stop
/// matching. `changed` is called on the watcher's thread for each event on a watched name.
final class ExeWatch: @unchecked Sendable {
    private let fd: Int32
    private let state = Mutex<(dirs: [Int32: String], names: Set<String>)>(([:], []))
    private let changed: @Sendable (String) -> Void
    private var thread: Thread?

    init?(changed: @escaping @Sendable (String) -> Void) {
        fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        self.changed = changed
        let t = Thread { [unowned self] in self.read() }
        t.name = "revenant-exe-watch"
        thread = t
        t.start()
    }

    /// Watches exactly these paths' directories from now on.
    func watch(_ paths: [String]) {
        let dirs = Set(paths.map { ($0 as NSString).deletingLastPathComponent })
        state.withLock { s in
            for (wd, dir) in s.dirs where !dirs.contains(dir) {
                inotify_rm_watch(fd, wd)
                s.dirs[wd] = nil
            }
            let have = Set(s.dirs.values)
            for dir in dirs where !have.contains(dir) {
                let mask = UInt32(IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_ATTRIB)
                let wd = inotify_add_watch(fd, dir, mask)
                if wd >= 0 { s.dirs[wd] = dir }
            }
            s.names = Set(paths)
        }
    }

    private func read() {
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            var off = 0
            var hits: [String] = []
            buf.withUnsafeBytes { raw in
                while off + MemoryLayout<inotify_event>.size <= n {
                    let ev = raw.loadUnaligned(fromByteOffset: off, as: inotify_event.self)
                    let nameStart = off + MemoryLayout<inotify_event>.size
                    let nameBytes = raw[nameStart..<min(nameStart + Int(ev.len), n)].prefix { $0 != 0 }
                    let name = String(decoding: nameBytes, as: UTF8.self)
                    let path = state.withLock { s in s.dirs[ev.wd].map { $0 + "/" + name } }
                    if let path, state.withLock({ $0.names.contains(path) }) { hits.append(path) }
                    off = nameStart + Int(ev.len)
                }
            }
            for p in Set(hits) { changed(p) }
        }
    }
}
