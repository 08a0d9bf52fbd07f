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

    public static func nowBoottimeNs() -> UInt64 {
        var bt = timespec()
        clock_gettime(CLOCK_BOOTTIME, &bt)
        return UInt64(bt.tv_sec) * 1_000_000_000 + UInt64(bt.tv_nsec)
    }

    /// Seconds since the Unix epoch.
    public func wallSeconds(_ bootNs: UInt64) -> Double {
        Double(bootEpochNs + Int64(bootNs)) / 1e9
    }
}
