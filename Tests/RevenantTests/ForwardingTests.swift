import Foundation
import Glibc
import Logging
import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import RevenantTestSupport
import Testing

/// The audit stream forwarded to Debian's rsyslog, over UDP, TCP and a unix socket.
@Suite(.serialized) struct ForwardingTests {
    @Test(.kernel, .timeLimit(.minutes(2))) func rsyslogReceivesTheAuditStream() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/rsyslogd"), "rsyslog missing: run scripts/install-deps.sh test")
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try blockV1(w)
        let d = try DaemonUnderTest(name: "forward")
        let udp = try freePort(), tcp = try freePort()
        let sock = d.dir + "/log.sock", received = d.dir + "/received.log"
        try """
            global(workDirectory="\(d.dir)")
            module(load="imudp")
            module(load="imtcp")
            module(load="imuxsock" SysSock.Use="off")
            input(type="imudp" port="\(udp)" address="127.0.0.1")
            input(type="imtcp" port="\(tcp)" address="127.0.0.1")
            input(type="imuxsock" Socket="\(sock)" UseSpecialParser="off" ParseHostname="on")
            template(name="fields" type="string" string="%inputname%|%syslogfacility%|%syslogseverity%|%app-name%|%msgid%|%structured-data%|%msg%\\n")
            *.* action(type="omfile" file="\(received)" template="fields")
            """.write(toFile: d.dir + "/rsyslog.conf", atomically: true, encoding: .utf8)
        let rs = try sh(["/usr/sbin/rsyslogd", "-f", d.dir + "/rsyslog.conf", "-i", d.dir + "/rsyslog.pid"])
        try #require(rs.status == 0, "rsyslogd did not start: \(rs.err)")
        defer { if let p = try? String(contentsOfFile: d.dir + "/rsyslog.pid", encoding: .utf8), let pid = Int32(p.trimmingCharacters(in: .whitespacesAndNewlines)) { kill(pid, SIGTERM) } }
        for _ in 0..<50 where !FileManager.default.fileExists(atPath: sock) { try await Task.sleep(for: .milliseconds(100)) }

        try await d.start(["--policy", policy, "--forward", "udp://127.0.0.1:\(udp)", "--forward", "tcp://127.0.0.1:\(tcp)",
                           "--forward", "unix://\(sock)"])
        #expect(killedBySignal9(spawn([w.path("v1")]).status))
        try await d.settle()
        d.stop()
        let audit = try String(contentsOfFile: d.audit, encoding: .utf8).split(separator: "\n").map(String.init)
        var lines: [[String]] = []
        for _ in 0..<50 {
            lines = ((try? String(contentsOfFile: received, encoding: .utf8)) ?? "").split(separator: "\n").map {
                $0.split(separator: "|", maxSplits: 6, omittingEmptySubsequences: false).map(String.init)
            }
            if ["imudp", "imtcp", "imuxsock"].allSatisfy({ i in lines.filter { $0.first == i }.count >= audit.count }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        for input in ["imudp", "imtcp", "imuxsock"] {
            let mine = lines.filter { $0.first == input && $0.count == 7 }
            // Every record, in order, byte for byte: the hash chain holds over syslog.
            #expect(mine.map { $0[6] } == audit, "\(input): \(mine.count) of \(audit.count) records")
            let blocked = try #require(mine.first { $0[6].contains("\"event\":\"blocked\"") }, "\(input): no blocked record")
            #expect(blocked[1] == "13" && blocked[2] == "3", "facility log audit, severity err: \(blocked[1]).\(blocked[2])")
            #expect(blocked[3] == "revenant" && blocked[4] == "process")
            #expect(blocked[5].contains("rule=\"block-v1\"") && blocked[5].contains("tier=\"kill-at-exec\""), "\(blocked[5])")
        }
        let tcpRecords = d.dir + "/tcp.jsonl"
        try lines.filter { $0.first == "imtcp" }.map { $0[6] }.joined(separator: "\n").appending("\n").write(toFile: tcpRecords, atomically: true, encoding: .utf8)
        let verify = try revenant(["audit", "verify", tcpRecords])
        #expect(verify.status == 0, "the chain, as received: \(verify.out)\(verify.err)")
    }

    @Test func syslogMessagesAreRFC5424() throws {
        var e = AuditEvent.daemon("start", timeMs: 1_700_000_000_123, detail: "a \"quoted\" ] detail")
        e.revenant.seq = 7
        e.revenant.rule = ["r]1"]
        let m = SyslogForwarder.message("{}", .init(e), hostname: "h", procid: 42)
        #expect(m == "<110>1 2023-11-14T22:13:20.123Z h revenant 42 daemon [revenant@32473 class_uid=\"0\" seq=\"7\" event=\"start\" rule=\"r\\]1\"] {}", "\(m)")
        #expect(SyslogForwarder.Target("udp://127.0.0.1:514")?.description == "udp://127.0.0.1:514")
        #expect(SyslogForwarder.Target("unix:///dev/log")?.path == "/dev/log")
        #expect(SyslogForwarder.Target("tcp://host") == nil && SyslogForwarder.Target("http://x:1") == nil)
    }
}
