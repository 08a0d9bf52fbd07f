/// JSON written straight into bytes, for records written by the hundred thousand (`export`):
/// JSONEncoder builds a tree of boxed values for each. The caller writes keys in sorted order;
/// the output is byte for byte what JSONEncoder gives with `.sortedKeys` and
/// `.withoutEscapingSlashes` (the tests compare the two).
public struct JSONBytes {
    public var bytes: [UInt8] = []
    /// Whether each open object or array has a member yet, one bit a level (the writers here
    /// nest a few levels; an array of flags cost a uniqueness check per member).
    private var filled: UInt64 = 0
    private var depth = 0

    public init(capacity: Int = 1024) { bytes.reserveCapacity(capacity) }

    public mutating func object(_ body: (inout JSONBytes) -> Void) {
        open(UInt8(ascii: "{")); body(&self); close(UInt8(ascii: "}"))
    }

    public mutating func array<S: Sequence>(_ items: S, _ each: (inout JSONBytes, S.Element) -> Void) {
        open(UInt8(ascii: "["))
        for i in items { member(); each(&self, i) }
        close(UInt8(ascii: "]"))
    }

    /// `"key":` inside an object.
    public mutating func key(_ k: StaticString) {
        member()
        bytes.append(UInt8(ascii: "\""))
        k.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\"")); bytes.append(UInt8(ascii: ":"))
    }

    public mutating func field(_ k: StaticString, _ v: String) { key(k); string(v) }
    public mutating func field(_ k: StaticString, _ v: String?) { if let v { key(k); string(v) } }
    // Integers by their widths, not generically: a generic from another module runs unspecialised.
    public mutating func field(_ k: StaticString, _ v: Int) { key(k); int(Int64(v)) }
    public mutating func field(_ k: StaticString, _ v: Int?) { if let v { key(k); int(Int64(v)) } }
    public mutating func field(_ k: StaticString, _ v: Int64) { key(k); int(v) }
    public mutating func field(_ k: StaticString, _ v: Int64?) { if let v { key(k); int(v) } }
    public mutating func field(_ k: StaticString, _ v: Int32) { key(k); int(Int64(v)) }
    public mutating func field(_ k: StaticString, _ v: Int32?) { if let v { key(k); int(Int64(v)) } }
    public mutating func field(_ k: StaticString, _ v: UInt32) { key(k); int(Int64(v)) }
    public mutating func field(_ k: StaticString, _ v: UInt64) { key(k); uint(v, negative: false) }
    public mutating func field(_ k: StaticString, _ v: Bool) { key(k); bool(v) }
    public mutating func field(_ k: StaticString, _ v: [String]?) { if let v { key(k); array(v) { $0.string($1) } } }
    public mutating func field(_ k: StaticString, object body: (inout JSONBytes) -> Void) { key(k); object(body) }

    public mutating func bool(_ v: Bool) {
        bytes.append(contentsOf: v ? [116, 114, 117, 101] : [102, 97, 108, 115, 101])
    }

    public mutating func int(_ v: Int64) { uint(v.magnitude, negative: v < 0) }

    mutating func uint(_ v: UInt64, negative: Bool) {
        var m = v
        if negative { bytes.append(UInt8(ascii: "-")) }
        var d: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let n = withUnsafeMutableBytes(of: &d) { b -> Int in
            var i = 24
            repeat { i -= 1; b[i] = UInt8(ascii: "0") + UInt8(m % 10); m /= 10 } while m > 0
            return i
        }
        withUnsafeBytes(of: &d) { bytes.append(contentsOf: $0[n...]) }
    }

    /// A string as JSONEncoder writes it: quote, backslash and control characters escaped
    /// (\b \f \n \r \t by name, the rest as \u00XX), everything else as its UTF-8 bytes.
    public mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { u in
            var run = 0
            for (i, c) in u.enumerated() where c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: u[run..<i]))
                run = i + 1
                bytes.append(UInt8(ascii: "\\"))
                switch c {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(c)
                case 0x08: bytes.append(UInt8(ascii: "b"))
                case 0x0c: bytes.append(UInt8(ascii: "f"))
                case 0x0a: bytes.append(UInt8(ascii: "n"))
                case 0x0d: bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(c >> 4)], hex[Int(c & 15)]])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: u[run...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// A wall-clock time as a quoted ISO 8601 UTC string with milliseconds (`Fmt.iso`).
    public mutating func isoTime(_ wallNs: Int64) {
        bytes.append(UInt8(ascii: "\""))
        JSONBytes.iso(wallNs, into: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// `2026-12-04T07:06:40.123Z`, computed (no gmtime_r, no formatter).
    /// The one time formatter: `2026-12-04T07:06:40.123Z` for every output.
    public static func isoString(_ wallNs: Int64) -> String {
        var o: [UInt8] = []
        o.reserveCapacity(24)
        iso(wallNs, into: &o)
        return String(decoding: o, as: UTF8.self)
    }

    public static func iso(_ wallNs: Int64, into bytes: inout [UInt8]) {
        let ns = ((wallNs % 1_000_000_000) + 1_000_000_000) % 1_000_000_000
        let secs = (wallNs - ns) / 1_000_000_000
        let days = secs >= 0 ? secs / 86_400 : (secs - 86_399) / 86_400
        let sod = Int(secs - days * 86_400)
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func digits(_ v: Int, _ width: Int) {
            var div = 1
            for _ in 1..<width { div *= 10 }
            while div > 0 { bytes.append(UInt8(ascii: "0") + UInt8((v / div) % 10)); div /= 10 }
        }
        digits(Int(year), 4); bytes.append(UInt8(ascii: "-")); digits(Int(month), 2); bytes.append(UInt8(ascii: "-")); digits(Int(day), 2)
        bytes.append(UInt8(ascii: "T")); digits(sod / 3600, 2); bytes.append(UInt8(ascii: ":")); digits(sod / 60 % 60, 2)
        bytes.append(UInt8(ascii: ":")); digits(sod % 60, 2); bytes.append(UInt8(ascii: ".")); digits(Int(ns / 1_000_000), 3)
        bytes.append(UInt8(ascii: "Z"))
    }

    private mutating func open(_ c: UInt8) {
        precondition(depth < 64, "JSON nested deeper than 64")
        bytes.append(c); depth += 1; filled &= ~(1 << (depth - 1))
    }
    private mutating func close(_ c: UInt8) { bytes.append(c); depth -= 1 }
    private mutating func member() {
        guard depth > 0 else { return }
        let bit: UInt64 = 1 << (depth - 1)
        if filled & bit != 0 { bytes.append(UInt8(ascii: ",")) } else { filled |= bit }
    }
}

extension AuditEvent {
    /// The record as JSONEncoder (sorted keys, slashes as they are) writes it, without JSONEncoder.
    public func json() -> [UInt8] {
        var j = JSONBytes(capacity: 2048)
        j.object { j in
            j.field("action_id", action_id)
            j.field("activity_id", activity_id)
            j.field("activity_name", activity_name)
            if let actor { j.field("actor") { actor.write(&$0) } }
            j.field("category_name", category_name)
            j.field("category_uid", category_uid)
            j.field("class_name", class_name)
            j.field("class_uid", class_uid)
            if let device { j.field("device") { device.write(&$0) } }
            j.field("disposition_id", disposition_id)
            j.field("exit_code", exit_code)
            if let file { j.field("file") { file.write(&$0) } }
            j.field("message", message)
            j.field("metadata") { metadata.write(&$0) }
            if let process { j.field("process") { process.write(&$0) } }
            j.field("severity_id", severity_id)
            j.field("time", time)
            j.field("type_uid", type_uid)
            j.field("unmapped") { j in j.field("revenant") { unmapped.revenant.write(&$0) } }
        }
        return j.bytes
    }
}

extension AuditEvent.Metadata {
    func write(_ j: inout JSONBytes) {
        j.field("product") { j in
            j.field("name", product.name); j.field("vendor_name", product.vendor_name); j.field("version", product.version)
        }
        j.field("profiles", profiles)
        j.field("version", version)
    }
}

extension AuditEvent.File {
    func write(_ j: inout JSONBytes) { j.field("name", name); j.field("path", path); j.field("type_id", type_id) }
}

extension AuditEvent.Device {
    func write(_ j: inout JSONBytes) {
        j.field("hostname", hostname)
        j.field("name", name)
        j.field("os") { j in j.field("name", os.name); j.field("type_id", os.type_id); j.field("version", os.version) }
        j.field("type_id", type_id)
        j.field("uid", uid)
    }
}

extension AuditEvent.Parent {
    func write(_ j: inout JSONBytes) { j.field("cmd_line", cmd_line); j.field("name", name); j.field("pid", pid); j.field("uid", uid) }
}

extension AuditEvent.Actor {
    func write(_ j: inout JSONBytes) {
        if let process { j.field("process") { process.write(&$0) } }
        if let user { j.field("user") { $0.field("uid", user.uid) } }
    }
}

extension AuditEvent.Process {
    func write(_ j: inout JSONBytes) {
        j.field("cmd_line", cmd_line)
        j.field("created_time", created_time)
        if let file { j.field("file") { file.write(&$0) } }
        j.field("lineage", lineage)
        j.field("name", name)
        if let parent_process { j.field("parent_process") { parent_process.write(&$0) } }
        j.field("pid", pid)
        j.field("uid", uid)
    }
}

extension AuditEvent.Extension {
    func write(_ j: inout JSONBytes) {
        if let ancestry {
            j.key("ancestry")
            j.array(ancestry) { j, a in j.object { j in j.field("name", a.name); j.field("pid", a.pid); j.field("uid", a.uid) } }
        }
        j.field("detail", detail)
        j.field("event", event)
        j.field("lost_records", lost_records)
        j.field("prev_hash", prev_hash)
        if let process { j.field("process") { process.write(&$0) } }
        if let r = respawned_by {
            j.field("respawned_by") { j in
                j.field("confidence", r.confidence.rawValue); j.field("file", r.file); j.field("instances", r.instances); j.field("line", r.line)
                j.field("mechanism", r.mechanism.rawValue); j.field("remediation", r.remediation); j.field("spawner_pid", r.spawner_pid)
                j.field("spawner_uid", r.spawner_uid); j.field("text", r.text); j.field("unit", r.unit)
            }
        }
        j.field("rule", rule)
        j.field("seq", seq)
        j.field("signal", signal)
        j.field("tier", tier)
    }
}
