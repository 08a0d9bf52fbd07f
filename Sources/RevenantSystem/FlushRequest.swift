import Foundation
import Glibc

/// A command's request that the daemon writing a store drain the ring and flush now, so that
/// a process younger than the last flush is on record before the command reads it.
public enum FlushRequest {
    /// How far the store may trail the kernel with the daemon's default configuration: a drain
    /// happens at each flush, so one interval plus the time a flush takes.
    public static var storeLagMs: Int { intervalMs + 250 }

    /// The daemon's default interval between flushes, and between drains of the ring.
    public static let intervalMs = 2000

    /// Asks the daemon writing `store` (SIGUSR1), and waits until a flush after the request
    /// reached the store, at most `timeoutMs`. False when no daemon could be asked: none
    /// running, or not this same program (a PID is never signalled blindly).
    public static func ask(_ store: Store, timeoutMs: Int) -> Bool {
        guard let run = store.writingRun(), let pid = run.pid,
              let mine = exe("/proc/self/exe"), exe("/proc/\(pid)/exe") == mine else { return false }
        let asked = WallClock.nowNs()
        guard kill(pid, SIGUSR1) == 0 else { return false }
        let deadline = asked + Int64(timeoutMs) * 1_000_000
        while WallClock.nowNs() < deadline {
            if let last = try? store.runs().last, last.id == run.id, last.lastSeenWallNs > asked { break }
            usleep(10_000)
        }
        return true
    }

    /// Asks, and when no daemon answered, waits out the store's lag instead.
    public static func askOrWait(_ store: Store) {
        if !ask(store, timeoutMs: storeLagMs + 250) { usleep(UInt32(storeLagMs + 250) * 1000) }
    }

    private static func exe(_ link: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: link)
    }
}
