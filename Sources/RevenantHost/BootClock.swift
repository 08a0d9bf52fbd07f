import Foundation
import Glibc

/// Converts kernel CLOCK_BOOTTIME stamps to wall-clock time.
public struct BootClock: Sendable {
    /// Wall-clock nanoseconds at boot (realtime − boottime, sampled once).
    public let bootEpochNs: Int64

    public init() {
        var rt = timespec(), bt = timespec()
        clock_gettime(CLOCK_REALTIME, &rt)
        clock_gettime(CLOCK_BOOTTIME, &bt)
        bootEpochNs = (Int64(rt.tv_sec) - Int64(bt.tv_sec)) * 1_000_000_000 + (Int64(rt.tv_nsec) - Int64(bt.tv_nsec))
    }

    /// Seconds since the Unix epoch.
    public func wallSeconds(_ bootNs: UInt64) -> Double {
        Double(bootEpochNs + Int64(bootNs)) / 1e9
    }
}

extension BootClock {
    /// The kernel's boot id: identities are per boot, and it keys them in the store.
    public static func bootID() -> String {
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown-boot"
    }
}

/// Wall-clock time (CLOCK_REALTIME), as the store and the audit log record it.
public enum WallClock {
    public static func nowNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    public static func nowMs() -> Int64 { nowNs() / 1_000_000 }
}
