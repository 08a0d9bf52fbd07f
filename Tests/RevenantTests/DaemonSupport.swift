import Foundation
import RevenantHost
import RevenantKernel
import RevenantStore
import RevenantQuery
import RevenantOutputs
import RevenantDaemon
import Glibc
import RevenantTestSupport
import Testing

func whoSpawnedJSON(_ pid: Int32, db: String, extra: [String] = []) throws -> [String: Any] {
    let r = try revenant(["who-spawned", String(pid), "--db", db, "--json"] + extra)
    try #require(r.status == 0, "who-spawned \(pid) failed (\(r.status)): \(r.err)")
    return try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
}

/// Children of a PID now, from /proc.
func childrenOf(_ pid: Int32) -> [Int32] {
    let fm = FileManager.default
    return ((try? fm.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.filter { p in
        guard let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let f = stat[stat.index(after: close)...].split(separator: " ")
        return f.count > 1 && Int32(f[1]) == pid
    }
}

func setNextPid(_ pid: Int32) throws {
    let fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY)
    try #require(fd >= 0, "cannot open ns_last_pid: errno \(errno)")
    let text = "\(pid - 1)"
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}
