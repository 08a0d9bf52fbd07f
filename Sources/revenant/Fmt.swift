import Foundation
import Glibc
import RevenantCore
import Synchronization

enum Fmt {
    /// Local time, `yyyy-MM-dd HH:mm:ss.SSS` (short: `HH:mm:ss.SS`). By hand: a DateFormatter
    /// made per call, then String(format:), cost more than the rest of a 10,000-row timeline.
    static func time(_ wallNs: Int64, short: Bool = false) -> String {
        var o: [UInt8] = []
        o.reserveCapacity(23)
        time(wallNs, short: short, into: &o)
        return String(decoding: o, as: UTF8.self)
    }

    /// `time(_:short:)` appended as bytes: a String grown a character at a time was most of its cost.
    static func time(_ wallNs: Int64, short: Bool = false, into o: inout [UInt8]) {
        let ns = wallNs % 1_000_000_000 < 0 ? wallNs % 1_000_000_000 + 1_000_000_000 : wallNs % 1_000_000_000
        let tm = localTime((wallNs - ns) / 1_000_000_000)
        func put(_ v: Int32, _ width: Int) {
            var div: Int32 = 1
            for _ in 1..<width { div *= 10 }
            while div > 0 { o.append(UInt8(48 + (v / div) % 10)); div /= 10 }
        }
        if !short {
            put(tm.tm_year + 1900, 4); o.append(45); put(tm.tm_mon + 1, 2); o.append(45); put(tm.tm_mday, 2); o.append(32)
        }
        put(tm.tm_hour, 2); o.append(58); put(tm.tm_min, 2); o.append(58); put(tm.tm_sec, 2); o.append(46)
        if short { put(Int32(ns / 10_000_000), 2) } else { put(Int32(ns / 1_000_000), 3) }
    }

    /// Local time of `secs`: converted once per quarter hour (every zone's offset and change
    /// falls on one), the rest added: a timeline prints tens of thousands of times.
    static func localTime(_ secs: Int64) -> Glibc.tm {
        let slot = secs - ((secs % 900) + 900) % 900
        let f = cachedSlot.withLock { c -> (Int32, Int32, Int32, Int32, Int32) in
            if c.slot != slot {
                var t = time_t(slot), tm = Glibc.tm()
                localtime_r(&t, &tm)
                c = (slot, tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min)
            }
            return (c.year, c.mon, c.mday, c.hour, c.min)
        }
        var tm = Glibc.tm()
        (tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min) = f
        let into = Int32(secs - slot)
        tm.tm_sec = into % 60
        tm.tm_min += into / 60
        if tm.tm_min >= 60 { tm.tm_min -= 60; tm.tm_hour += 1 }
        return tm
    }

    private static let cachedSlot = Mutex<(slot: Int64, year: Int32, mon: Int32, mday: Int32, hour: Int32, min: Int32)>((.min, 0, 0, 0, 0, 0))

    /// Seconds with one decimal and an `s`, as `%.1fs`, without String(format:).
    static func seconds(_ v: Double) -> String {
        let t = Int((v * 10).rounded())
        return (t < 0 ? "-" : "") + "\(abs(t) / 10).\(abs(t) % 10)s"
    }

    /// `s` followed by spaces up to `n` characters (never cut).
    static func pad(_ s: String, _ n: Int) -> String {
        let c = s.count
        return c >= n ? s : s + String(repeating: " ", count: n - c)
    }

    /// RFC 3339 UTC with milliseconds, as ISO8601DateFormatter wrote it (`JSONBytes.iso`).
    static func iso(_ wallNs: Int64) -> String { JSONBytes.isoString(wallNs) }

    static func user(_ uid: UInt32) -> String {
        guard let pw = getpwuid(uid) else { return String(uid) }
        return String(cString: pw.pointee.pw_name)
    }
}
