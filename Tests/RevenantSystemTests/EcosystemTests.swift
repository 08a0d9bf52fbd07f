import Foundation
import Glibc
import RevenantCore
import RevenantSystem
import RevenantTestSupport
import Testing

/// A TCP port free on loopback now (bound, read, closed).
func freePort() throws -> UInt16 {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(s) }
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &a) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) == 0 && getsockname(s, $0, &len) == 0 }
    }
    try #require(ok, "no free port: \(String(cString: strerror(errno)))")
    return UInt16(bigEndian: a.sin_port)
}

/// GET http://127.0.0.1:PORT/PATH over a plain socket: the body of a 200 answer, else nil.
func httpGet(_ url: String) -> String? {
    guard let u = URL(string: url), let port = u.port else { return nil }
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(s) }
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_port = UInt16(port).bigEndian
    a.sin_addr.s_addr = inet_addr(u.host ?? "127.0.0.1")
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let ok = withUnsafePointer(to: &a) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard ok else { return nil }
    let path = u.path + (u.query.map { "?" + $0 } ?? "")
    let req = Array("GET \(path.isEmpty ? "/" : path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    guard write(s, req, req.count) == req.count else { return nil }
    var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = read(s, &buf, buf.count)
        if n <= 0 { break }
        out += buf[..<n]
    }
    let text = String(decoding: out, as: UTF8.self)
    guard text.hasPrefix("HTTP/1.1 200") || text.hasPrefix("HTTP/1.0 200"), let body = text.range(of: "\r\n\r\n") else { return nil }
    return String(text[body.upperBound...])
}

/// revenant plugged into the engines a fleet already runs: Debian's Prometheus scrapes it.
@Suite(.serialized) struct MetricsTests {
    @Test(.kernel, .timeLimit(.minutes(3))) func prometheusScrapesTheKillCount() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus"), "prometheus missing: run scripts/install-deps.sh test")
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try w.policy("""
            rules:
              - name: block-v1
                match: { exe: \(w.path("v1")) }
                action: kill
            """)
        let mport = try freePort()
        let d = try DaemonUnderTest(name: "metrics")
        try await d.start(["--policy", policy, "--metrics", "127.0.0.1:\(mport)"])
        defer { d.stop() }

        // Prometheus, scraping it every second, with its HTTP API on another loopback port.
        let pport = try freePort()
        let conf = d.dir + "/prometheus.yml"
        try """
            global: { scrape_interval: 1s, evaluation_interval: 1s }
            scrape_configs:
              - job_name: revenant
                static_configs: [ { targets: ["127.0.0.1:\(mport)"] } ]
            """.write(toFile: conf, atomically: true, encoding: .utf8)
        let prom = Process()
        prom.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prom.arguments = ["--config.file=\(conf)", "--storage.tsdb.path=\(d.dir)/tsdb", "--web.listen-address=127.0.0.1:\(pport)"]
        let promLog = FileHandle(forWritingAtPath: "/dev/null")
        prom.standardOutput = promLog
        prom.standardError = promLog
        try prom.run()
        defer { prom.terminate(); prom.waitUntilExit() }

        for _ in 0..<3 { #expect(killedBySignal9(spawn([w.path("v1")]).status)) }
        try await d.settle()

        // Straight from the endpoint, in the text format.
        let text = try #require(httpGet("http://127.0.0.1:\(mport)/metrics"), "the metrics endpoint did not answer")
        #expect(text.contains("revenant_blocked_total{rule=\"block-v1\",tier=\"kill at exec (bpf_send_signal)\"} 3"), "\(text)")
        #expect(text.contains("revenant_events_total{type=\"exec\"}"))
        #expect(text.contains("revenant_process_resident_bytes"))
        #expect(text.contains("revenant_ringbuf_fill_ratio"))
        #expect(text.contains("revenant_store_write_seconds_bucket"))
        #expect(httpGet("http://127.0.0.1:\(mport)/other") == nil, "only /metrics is served")

        // Through Prometheus: a PromQL query over its HTTP API returns the kill count.
        var value: String?
        for _ in 0..<60 {
            try await Task.sleep(for: .milliseconds(500))
            let q = "sum(revenant_blocked_total{rule=\"block-v1\"})".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            guard let body = httpGet("http://127.0.0.1:\(pport)/api/v1/query?query=\(q)"),
                  let j = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                  let result = (j["data"] as? [String: Any])?["result"] as? [[String: Any]],
                  let v = result.first?["value"] as? [Any], v.count == 2 else { continue }
            value = v[1] as? String
            if value == "3" { break }
        }
        #expect(value == "3", "PromQL sum(revenant_blocked_total) = \(value ?? "no answer")")
    }

    @Test func metricsAddressesParse() {
        #expect(MetricsServer.Address("9464")?.description == "127.0.0.1:9464")
        #expect(MetricsServer.Address("0.0.0.0:9464")?.isLoopback == false)
        #expect(MetricsServer.Address("[::1]:9464")?.host == "::1")
        #expect(MetricsServer.Address("[::1]:9464")?.isLoopback == true)
        #expect(MetricsServer.Address("host:") == nil && MetricsServer.Address("x") == nil && MetricsServer.Address("0") == nil)
    }
}

/// The audit stream forwarded to Debian's rsyslog, over UDP, TCP and a unix socket.
@Suite(.serialized) struct ForwardingTests {
    @Test(.kernel, .timeLimit(.minutes(2))) func rsyslogReceivesTheAuditStream() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/rsyslogd"), "rsyslog missing: run scripts/install-deps.sh test")
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try w.policy("""
            rules:
              - name: block-v1
                match: { exe: \(w.path("v1")) }
                action: kill
            """)
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
            #expect(blocked[5].contains("rule=\"block-v1\"") && blocked[5].contains("tier=\"kill at exec (bpf_send_signal)\""), "\(blocked[5])")
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
