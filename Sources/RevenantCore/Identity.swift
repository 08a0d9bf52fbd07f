/// A process identity: a PID is reused, `(tgid, start time)` is not.
///
/// Start time is CLOCK_BOOTTIME in nanoseconds (the kernel's `start_boottime`): `precise`.
/// Processes seeded from `/proc` only know it in clock ticks (USER_HZ): not `precise`.
/// A PID can be handed out twice within one tick (measured here with `ns_last_pid`), so
/// precise identities compare exactly; `ProcessTable` joins a seeded identity to the
/// precise one the kernel reports for the same process (`sameTick`).
public struct Identity: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// USER_HZ: the unit of `/proc/<pid>/stat` start times on every mainstream Linux arch.
    public static let ticksPerSecond: UInt64 = 100
    public static let nsPerTick: UInt64 = 1_000_000_000 / ticksPerSecond

    public let pid: Int32
    public let startNs: UInt64
    public let precise: Bool

    public init(pid: Int32, startNs: UInt64) {
        self.pid = pid
        self.startNs = startNs
        self.precise = true
    }

    public init(pid: Int32, startTicks: UInt64) {
        self.pid = pid
        self.startNs = startTicks &* Identity.nsPerTick
        self.precise = false
    }

    public var startTicks: UInt64 { startNs / Identity.nsPerTick }

    /// Same PID and same start tick: how a /proc entry is matched to a kernel identity.
    public func sameTick(_ other: Identity) -> Bool {
        pid == other.pid && startTicks == other.startTicks
    }

    /// One word into the hasher instead of three: the daemon hashes identities several times
    /// per event. Equal identities have equal pid and start, so this agrees with `==`.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(startNs ^ (UInt64(UInt32(bitPattern: pid)) << 32))
    }

    /// What Dictionary and Set call: a seeded splitmix64 finalizer instead of SipHash, which
    /// showed in the daemon's profile. Keys come from the kernel (a start time in ns is not
    /// chosen by a process), so a fast mix is safe against collision flooding here.
    public func _rawHashValue(seed: Int) -> Int {
        var x = startNs ^ (UInt64(UInt32(bitPattern: pid)) << 32) ^ UInt64(bitPattern: Int64(seed))
        x = (x ^ (x >> 30)) &* 0xbf58476d1ce4e5b9
        x = (x ^ (x >> 27)) &* 0x94d049bb133111eb
        return Int(bitPattern: UInt(truncatingIfNeeded: x ^ (x >> 31)))
    }

    public static func < (a: Identity, b: Identity) -> Bool {
        (a.startNs, a.pid) < (b.startNs, b.pid)
    }

    /// `7085@1234.567890123` (precise, ns) or `7085@1234.56` (from /proc, ticks).
    public var description: String {
        let secs = startNs / 1_000_000_000
        if precise {
            let ns = String(startNs % 1_000_000_000)
            return "\(pid)@\(secs).\(String(repeating: "0", count: 9 - ns.count))\(ns)"
        }
        let frac = startTicks % Identity.ticksPerSecond
        return "\(pid)@\(secs).\(frac < 10 ? "0" : "")\(frac)"
    }

    /// Parses what `description` prints.
    public init?(_ text: String) {
        let parts = text.split(separator: "@", maxSplits: 1)
        guard parts.count == 2, let pid = Int32(parts[0]), pid > 0 else { return nil }
        let time = parts[1].split(separator: ".", maxSplits: 1)
        guard time.count == 2, let secs = UInt64(time[0]), time[1].allSatisfy(\.isNumber),
              let frac = UInt64(time[1]) else { return nil }
        switch time[1].count {
        case 9: self.init(pid: pid, startNs: secs * 1_000_000_000 + frac)
        case 2: self.init(pid: pid, startTicks: secs * Identity.ticksPerSecond + frac)
        default: return nil
        }
    }
}
