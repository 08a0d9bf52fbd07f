import Foundation
import Glibc

/// sd_notify(3) without libsystemd: READY=1 once the programs are attached and the policy is
/// in force, WATCHDOG=1 from the ingest loop, STATUS= for `systemctl status`. Nothing is sent
/// when not started by systemd with `Type=notify` (no NOTIFY_SOCKET).
enum SystemdNotify {
    private static let socketPath: String? = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"]

    /// Half the unit's WatchdogSec=, when the watchdog is meant for this process.
    static let watchdogEvery: Duration? = {
        let env = ProcessInfo.processInfo.environment
        guard let us = env["WATCHDOG_USEC"].flatMap(UInt64.init), us > 0 else { return nil }
        if let pid = env["WATCHDOG_PID"].flatMap(Int32.init), pid != getpid() { return nil }
        return .microseconds(Int64(us / 2))
    }()

    @discardableResult
    static func send(_ state: String) -> Bool {
        guard let path = socketPath, !path.isEmpty else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }   // abstract namespace
        let cap = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < cap else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in raw.copyBytes(from: bytes) }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let msg = Array(state.utf8)
        let n = withUnsafePointer(to: &addr) { a in
            a.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, msg, msg.count, Int32(MSG_NOSIGNAL), $0, len) }
        }
        return n == msg.count
    }
}
