import Foundation
import CRevenantOS
import Glibc
import RevenantHost
import RevenantStore

/// A command's request that the daemon writing a store drain the ring and flush now, so that
/// a process younger than the last flush is on record before the command reads it.
public enum FlushRequest {
    /// How far the store may trail the kernel with the daemon's default configuration: a drain
    /// happens at each flush, so one interval plus the time a flush takes.
    public static var storeLagMs: Int { intervalMs + 250 }

    /// The daemon's default interval between flushes, and between drains of the ring.
    public static let intervalMs = 2000

    /// Asks the daemon writing `store` (SIGUSR1), and waits until a flush after the request
    /// reached the store, at most `timeoutMs`. False when no daemon could be asked. The PID is
    /// held by a pidfd while it is checked to be the run's: revenant by name, and started
    /// before the run began (a reused PID started after); the signal goes through the pidfd,
    /// so it reaches that process or none. An upgraded binary ("(deleted)") still qualifies.
    public static func ask(_ store: Store, timeoutMs: Int) -> Bool {
        guard let run = store.writingRun(), let pid = run.pid else { return false }
        let pidfd = rv_pidfd_open(pid)
        guard pidfd >= 0 else { return false }
        defer { close(pidfd) }
        guard isDaemon(pid, of: run) else { return false }
        let asked = WallClock.nowNs()
        guard rv_pidfd_send_signal(pidfd, SIGUSR1) == 0 else { return false }
        let deadline = asked + Int64(timeoutMs) * 1_000_000
        while WallClock.nowNs() < deadline {
            if let last = try? store.runs().last, last.id == run.id, last.lastSeenWallNs > asked { break }
            usleep(10_000)
        }
        return true
    }

    /// Whether `pid` is the process that began `run`.
    static func isDaemon(_ pid: Int32, of run: DaemonRun) -> Bool {
        guard let st = ProcReader().stat(pid), st.comm == "revenant" || exeName(pid) == "revenant" else { return false }
        let hz = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))
        let startWallNs = BootClock().bootEpochNs + Int64(st.startTicks * 1_000_000_000 / hz)
        // A tick of rounding and the boot epoch's sampling either way.
        return startWallNs <= run.startedWallNs + 50_000_000
    }

    private static func exeName(_ pid: Int32) -> String? {
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe") else { return nil }
        let path = link.hasSuffix(" (deleted)") ? String(link.dropLast(10)) : link
        return (path as NSString).lastPathComponent
    }

    /// Asks, and when no daemon answered, waits out the store's lag instead.
    public static func askOrWait(_ store: Store) {
        if !ask(store, timeoutMs: storeLagMs + 250) { usleep(UInt32(storeLagMs + 250) * 1000) }
    }

}
