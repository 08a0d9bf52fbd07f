/// A process identity: a PID is reused, `(tgid, start time)` is not.
///
/// Start time is CLOCK_BOOTTIME in nanoseconds (the kernel's `start_boottime`). Processes seeded
/// from `/proc` only know it in clock ticks, so identities compare at tick precision: two
/// processes with the same PID cannot both start within one tick.
public struct Identity: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// USER_HZ: the unit of `/proc/<pid>/stat` start times on every mainstream Linux arch.
    public static let ticksPerSecond: UInt64 = 100
    public static let nsPerTick: UInt64 = 1_000_000_000 / ticksPerSecond

    public let pid: Int32
    public let startNs: UInt64

    public init(pid: Int32, startNs: UInt64) {
        self.pid = pid
        self.startNs = startNs
    }

    public init(pid: Int32, startTicks: UInt64) {
        self.init(pid: pid, startNs: startTicks &* Identity.nsPerTick)
    }

    public var startTicks: UInt64 { startNs / Identity.nsPerTick }

    public static func == (a: Identity, b: Identity) -> Bool {
        a.pid == b.pid && a.startTicks == b.startTicks
    }

    public func hash(into h: inout Hasher) {
        h.combine(pid)
        h.combine(startTicks)
    }

    public static func < (a: Identity, b: Identity) -> Bool {
        (a.startTicks, a.pid) < (b.startTicks, b.pid)
    }

    /// `7085@1234.56`: PID, then seconds since boot at tick precision.
    public var description: String {
        let t = startTicks
        let frac = t % Identity.ticksPerSecond
        return "\(pid)@\(t / Identity.ticksPerSecond).\(frac < 10 ? "0" : "")\(frac)"
    }

    /// Parses what `description` prints.
    public init?(_ text: String) {
        let parts = text.split(separator: "@", maxSplits: 1)
        guard parts.count == 2, let pid = Int32(parts[0]) else { return nil }
        let time = parts[1].split(separator: ".", maxSplits: 1)
        guard let secs = UInt64(time[0]) else { return nil }
        var ticks = secs * Identity.ticksPerSecond
        if time.count == 2 {
            guard time[1].count == 2, let f = UInt64(time[1]) else { return nil }
            ticks += f
        }
        self.init(pid: pid, startTicks: ticks)
    }
}
