import Glibc
import RevenantCore

/// Reads processes from a procfs mount (default `/proc`; tests may point at a fixture tree).
public struct ProcReader: Sendable {
    public let root: String

    public init(root: String = "/proc") {
        self.root = root
    }

    /// Fields of `/proc/<pid>/stat` that revenant uses.
    public struct Stat: Equatable, Sendable {
        public var pid: Int32
        public var comm: String
        public var ppid: Int32
        public var startTicks: UInt64
    }

    /// Parses a stat line; comm may hold spaces and parentheses, so split at the last ')'.
    public static func parseStat(_ line: String) -> Stat? {
        guard let open = line.firstIndex(of: "("), let close = line.lastIndex(of: ")"),
              let pid = Int32(line[..<open].trimmingCharacters(in: " ")) else { return nil }
        let comm = String(line[line.index(after: open)..<close])
        let rest = line[line.index(after: close)...].split(separator: " ")
        // rest[0] is state (field 3); ppid is field 4, starttime field 22.
        guard rest.count >= 20, let ppid = Int32(rest[1]), let start = UInt64(rest[19]) else { return nil }
        return Stat(pid: pid, comm: comm, ppid: ppid, startTicks: start)
    }

    public func pids() -> [Int32] {
        guard let dir = opendir(root) else { return [] }
        defer { closedir(dir) }
        var out: [Int32] = []
        while let ent = readdir(dir) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if let p = Int32(name) { out.append(p) }
        }
        return out.sorted()
    }

    public func stat(_ pid: Int32) -> Stat? {
        readFile("\(root)/\(pid)/stat").flatMap { ProcReader.parseStat(String(decoding: $0, as: UTF8.self)) }
    }

    public func identity(_ pid: Int32) -> Identity? {
        stat(pid).map { Identity(pid: pid, startTicks: $0.startTicks) }
    }

    /// `id`, recorded on `boot`, is running now. Early services get the same PID and start
    /// tick on every boot: without the boot, a row from an earlier boot would pass for them.
    public func isRunning(_ id: Identity, boot: String) -> Bool {
        boot == ProcReader.currentBoot && identity(id.pid).map { $0.sameTick(id) } == true
    }

    /// This boot's id, read once: a process never changes boots.
    public static let currentBoot = BootClock.bootID()

    /// The markers process managers leave in a child's environment (TRIGGER_UNIT,
    /// SUPERVISOR_PROCESS_NAME, INVOCATION_ID…), read only when `id` still names the process.
    public func markers(_ id: Identity) -> [String: String] {
        guard let now = identity(id.pid), now.sameTick(id),
              let bytes = readFile("\(root)/\(id.pid)/environ", limit: 256 << 10) else { return [:] }
        var out: [String: String] = [:]
        for entry in bytes.split(separator: 0) {
            let s = String(decoding: entry, as: UTF8.self)
            guard let eq = s.firstIndex(of: "=") else { continue }
            let key = String(s[..<eq])
            if ProcReader.markerKeys.contains(key) || key.hasPrefix("SUPERVISOR_") { out[key] = String(s[s.index(after: eq)...]) }
        }
        return out
    }

    static let markerKeys: Set<String> = ["TRIGGER_UNIT", "TRIGGER_TIMER_REALTIME_USEC", "TRIGGER_TIMER_MONOTONIC_USEC",
                                          "INVOCATION_ID", "JOURNAL_STREAM", "MANAGERPID", "PM2_HOME", "pm_id"]

    /// One process as a seeded record: its current parent, its current image.
    public func record(_ pid: Int32) -> ProcessRecord? {
        guard let st = stat(pid) else { return nil }
        let id = Identity(pid: pid, startTicks: st.startTicks)
        let parent = st.ppid > 0 ? identity(st.ppid) : nil
        var r = ProcessRecord(id: id, parent: parent, comm: st.comm)
        r.parentIsCurrentOnly = true
        r.seeded = true
        let argv = readFile("\(root)/\(pid)/cmdline").map { bytes in
            bytes.withUnsafeBytes { EventDecoder.splitArgv($0, truncated: false) }
        } ?? []
        let exe = readLink("\(root)/\(pid)/exe") ?? ""
        let ids = statusIDs(pid)
        let file = fileID("\(root)/\(pid)/exe")
        let loginuid = readFile("\(root)/\(pid)/loginuid").flatMap { UInt32(String(decoding: $0, as: UTF8.self)) }
        if !argv.isEmpty || !exe.isEmpty {
            r.images = [Image(
                time: st.startTicks &* Identity.nsPerTick, filename: exe, exeDevice: file?.dev ?? 0,
                exeInode: file?.ino ?? 0, argv: argv, comm: st.comm,
                uid: ids.uid, euid: ids.euid, gid: ids.gid,
                loginuid: loginuid == UInt32.max ? nil : loginuid,
                cgroup: cgroupPath(pid).map(ProcReader.leaf) ?? "",
                cwd: readLink("\(root)/\(pid)/cwd"))]
        }
        return r
    }

    /// Every readable process; ones that vanish while reading are skipped.
    public func all() -> [ProcessRecord] {
        pids().compactMap(record)
    }

    /// `all()`, telling `progress` (read, total) every `every` processes: a host with a
    /// hundred thousand processes takes seconds to read.
    public func all(every: Int, progress: (Int, Int) -> Void) -> [ProcessRecord] {
        let list = pids()
        var out: [ProcessRecord] = []
        out.reserveCapacity(list.count)
        for (k, pid) in list.enumerated() {
            if let r = record(pid) { out.append(r) }
            if (k + 1) % every == 0 { progress(k + 1, list.count) }
        }
        return out
    }

    /// The default-hierarchy cgroup path (`0::/…`), else the `name=systemd` one.
    public func cgroupPath(_ pid: Int32) -> String? {
        guard let data = readFile("\(root)/\(pid)/cgroup") else { return nil }
        var systemd: String?
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard f.count == 3 else { continue }
            if f[0] == "0" && f[1].isEmpty && f[2] != "/" { return String(f[2]) }
            if f[1] == "name=systemd" { systemd = String(f[2]) }
        }
        return systemd ?? "/"
    }

    static func leaf(_ path: String) -> String {
        path == "/" ? "/" : String(path.split(separator: "/").last ?? "/")
    }

    private func statusIDs(_ pid: Int32) -> (uid: UInt32, euid: UInt32, gid: UInt32) {
        guard let data = readFile("\(root)/\(pid)/status") else { return (0, 0, 0) }
        var uid: (UInt32, UInt32) = (0, 0), gid: UInt32 = 0
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            if f.first == "Uid:", f.count >= 3 { uid = (UInt32(f[1]) ?? 0, UInt32(f[2]) ?? 0) }
            if f.first == "Gid:", f.count >= 2 { gid = UInt32(f[1]) ?? 0 }
        }
        return (uid.0, uid.1, gid)
    }
}

/// Whole-file read without Foundation; nil when it cannot be opened.
package func readFile(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while out.count < limit {
        let n = read(fd, &buf, buf.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return out
}

/// Device and inode of a file (following symlinks).
package func fileID(_ path: String) -> (dev: UInt64, ino: UInt64)? {
    var sb = stat()
    guard stat(path, &sb) == 0 else { return nil }
    return (UInt64(sb.st_dev), UInt64(sb.st_ino))
}

package func readLink(_ path: String) -> String? {
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink(path, &buf, buf.count - 1)
    guard n >= 0 else { return nil }
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension StringProtocol {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}
