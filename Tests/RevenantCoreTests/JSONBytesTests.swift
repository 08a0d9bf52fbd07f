import Foundation
import Testing
@testable import RevenantCore

/// The hand-written JSON of `export` against JSONEncoder's: the same bytes for every shape of record.
@Suite struct JSONBytesTests {
    func encoder(_ v: some Encodable) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(v), as: UTF8.self)
    }

    /// Texts other users choose: quotes, backslashes, every control byte, slashes, non-ASCII.
    static let hostile = "a\"b\\c/d\u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1b}[31m\u{1f}\u{7f} é 漢 \u{2028} 🙂"

    func record(_ argv: [String], parent: Bool, exit: RevenantCore.ExitStatus?) -> (ProcessRecord, [ProcessRecord]) {
        var r = ProcessRecord(id: Identity(pid: 4242, startNs: 123_456_789), parent: parent ? Identity(pid: 7, startNs: 5) : nil, comm: "w\u{1b}")
        r.images = [Image(time: 200, filename: "/opt/\(JSONBytesTests.hostile)/w.py", argv: argv, comm: "w", uid: 1000, cgroup: "x.service", cwd: "/")]
        r.exitStatus = exit
        var p = ProcessRecord(id: Identity(pid: 7, startNs: 5), parent: nil, comm: "sh")
        p.images = [Image(time: 1, filename: "/bin/sh", argv: ["sh", "-c", JSONBytesTests.hostile], comm: "sh")]
        return (r, parent ? [p, ProcessRecord(id: Identity(pid: 1, startNs: 1), parent: nil, comm: "systemd")] : [])
    }

    @Test func everyShapeOfRecordIsWhatJSONEncoderWrites() throws {
        let device = AuditEvent.Device(hostname: "h/\(JSONBytesTests.hostile)", machineID: nil, kernel: "6.1")
        var events: [AuditEvent] = []
        for parent in [false, true] {
            let (r, anc) = record(["python3", JSONBytesTests.hostile, ""], parent: parent, exit: .signaled(9, coreDumped: false))
            events.append(.launch(r, ancestry: anc, bootEpochNs: 1_700_000_000_000_000_000, timeMs: -5, rules: [], tier: nil, blocked: false, message: "exec"))
            events.append(.launch(r, ancestry: anc, bootEpochNs: 0, timeMs: Int64.max, rules: ["b\"1", "b2"], tier: .killAtExec,
                                  blocked: true, message: JSONBytesTests.hostile))
            events.append(.terminate(r, ancestry: anc, bootEpochNs: 0, timeMs: 1, rules: ["r"]))
            let (x, _) = record([], parent: parent, exit: .exited(-3))
            events.append(.terminate(x, ancestry: anc, bootEpochNs: 0, timeMs: 1, rules: []))
            let respawn = AuditEvent.Respawn(mechanism: .cron, unit: nil, spawner_pid: 12, spawner_uid: "12@3.4", file: "/etc/cron.d/x",
                                             line: 3, text: JSONBytesTests.hostile, instances: 5, confidence: .high, remediation: ["a", "b"])
            events.append(.finding(r, ancestry: anc, bootEpochNs: 0, timeMs: 2, rules: [], respawn: respawn))
        }
        events.append(.daemon("start", timeMs: 0))
        events.append(.daemon("trace gap", timeMs: 9, detail: JSONBytesTests.hostile, severity: 4))
        for (i, e) in events.enumerated() {
            var chained = e
            chained.chain(seq: i + 1, prevHash: AuditChain.genesis, device: device)
            for v in [e, chained] {
                #expect(String(decoding: v.json(), as: UTF8.self) == (try encoder(v)), "record \(i)")
            }
        }
    }

    @Test func numbersAndEmptyContainers() throws {
        struct Box: Encodable { var a: [String]; var b: Int64; var c: Int32; var d: UInt64; var e: Bool; var f: String? }
        for b in [Box(a: [], b: .min, c: .max, d: .max, e: true, f: nil), Box(a: [""], b: 0, c: -1, d: 0, e: false, f: "")] {
            var j = JSONBytes()
            j.object { j in j.field("a", b.a); j.field("b", b.b); j.field("c", b.c); j.field("d", b.d); j.field("e", b.e); j.field("f", b.f) }
            #expect(String(decoding: j.bytes, as: UTF8.self) == (try encoder(b)))
        }
    }

    /// ISO times across the calendar's corners, against Foundation's formatter.
    @Test func isoTimesMatchFoundation() {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        for ns: Int64 in [0, 999_999_999, -1, -86_400_000_000_001, 951_782_400_123_000_000, 4_107_542_399_999_000_000,
                          1_700_000_000_000_000_000, 1_709_164_800_000_000_000, -2_208_988_800_000_000_000] {
            var j = JSONBytes()
            j.isoTime(ns)
            let secs = Double(ns - ((ns % 1_000_000_000) + 1_000_000_000) % 1_000_000_000) / 1e9
            let ms = Double(((ns % 1_000_000_000) + 1_000_000_000) % 1_000_000_000 / 1_000_000) / 1e3
            #expect(String(decoding: j.bytes, as: UTF8.self) == "\"" + f.string(from: Date(timeIntervalSince1970: secs + ms)) + "\"", "\(ns)")
        }
    }

    /// CSV cells by the byte scan are what the careful path makes of them.
    @Test func csvCellsMatchTheCarefulPath() {
        let texts = ["", "plain text /opt/w.py --id 4", "a,b", "say \"hi\"", "=cmd|' /C calc'!A0", "+1", "-3", "@SUM(1)", "\tx", "\rx",
                     "line\nbreak", "\u{1b}[31mred", "naïve", "漢字", "\u{202e}evil", "x\u{7f}", JSONBytesTests.hostile, " lead", "trail ", "'"]
        for t in texts {
            var c = CSVBytes()
            c.cell(t)
            #expect(String(decoding: c.bytes, as: UTF8.self) == CSVBytes.slowCell(t), "\(t.debugDescription)")
        }
        var row = CSVBytes()
        row.cell(Int64(-3)); row.cell(Int64(0)); row.cell(nil as String?); row.cell(isoTime: 1_700_000_000_123_000_000); row.cell(isoTime: nil)
        #expect(String(decoding: row.bytes, as: UTF8.self) == [CSVBytes.slowCell("-3"), "0", "", "2023-11-14T22:13:20.123Z", ""].joined(separator: ","))
    }
}
