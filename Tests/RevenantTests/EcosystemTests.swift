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

/// A policy that kills the marker worker's v1 at exec (rule `block-v1`).
func blockV1(_ w: MarkerWorker) throws -> String {
    try w.policy("rules:\n  - name: block-v1\n    match: { exe: \(w.path("v1")) }\n    action: kill\n")
}

/// revenant plugged into the engines a fleet already runs: Debian's Prometheus scrapes it.
@Suite(.serialized) struct MetricsTests {
    @Test(.kernel, .timeLimit(.minutes(3))) func prometheusScrapesTheKillCount() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus"), "prometheus missing: run scripts/install-deps.sh test")
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try blockV1(w)
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
        #expect(text.contains("revenant_blocked_total{rule=\"block-v1\",tier=\"kill-at-exec\"} 3"), "\(text)")
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

/// `timeline --svg`: rendered by Debian's headless Chromium, and the screenshot looked at.
@Suite(.serialized) struct TimelinePictureTests {
    /// RGB of the screenshot at each point (pure Python: zlib and the PNG filters, nothing ours).
    static let pixels = #"""
        import sys, zlib, struct, json
        data = open(sys.argv[1], 'rb').read()
        pos, idat, w = 8, b'', 0
        while pos < len(data):
            n, kind = struct.unpack('>I4s', data[pos:pos + 8]); body = data[pos + 8:pos + 8 + n]; pos += 12 + n
            if kind == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
            elif kind == b'IDAT': idat += body
        bpp = 4 if ctype == 6 else 3
        raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
        for y in range(h):
            f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
                if f == 1: line[i] = (line[i] + a) & 255
                elif f == 2: line[i] = (line[i] + b) & 255
                elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
                elif f == 4:
                    p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            rows.append(line); prev = line
        pts = json.loads(sys.argv[2])
        print(json.dumps([list(rows[int(y)][int(x) * bpp:int(x) * bpp + 3]) for x, y in pts]))
        """#

    @Test(.kernel, .timeLimit(.minutes(3))) func chromiumShowsABarWhereEachInstanceIs() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"), "chromium missing: run scripts/install-deps.sh test")
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let audit = try w.policy("rules:\n  - name: watch-v1\n    match: { exe: \(w.path("v1")) }\n    action: audit\n")
        let d = try DaemonUnderTest(name: "picture")
        try await d.start(["--policy", audit])
        // Two respawners of one program; halfway, the policy starts killing it.
        let loops = (0..<2).map { _ in
            spawn(["/bin/sh", "-c", "while :; do \(w.path("v1")); sleep 0.15; done"], wait: false).pid
        }
        defer { for p in loops { kill(p, SIGKILL) } }
        try await Task.sleep(for: .seconds(2))
        try "rules:\n  - name: block-v1\n    match: { exe: \(w.path("v1")) }\n    action: kill\n".write(toFile: audit, atomically: true, encoding: .utf8)
        d.hangUp()
        try await Task.sleep(for: .seconds(2))
        for p in loops { kill(p, SIGKILL) }
        try await d.settle()
        d.stop()

        let svg = d.dir + "/t.svg", html = d.dir + "/t.html"
        let t = try revenant(["timeline", "--match", w.path("v1"), "--db", d.db, "--svg", svg, "--html", html])
        #expect(t.status == 0, "\(t.err)")
        let text = try String(contentsOfFile: svg, encoding: .utf8)
        let lanes = text.components(separatedBy: ">shell loop").count - 1
        #expect(lanes == 2, "a lane per loop shell: \(lanes)")
        #expect(try String(contentsOfFile: html, encoding: .utf8).contains("Respawned by"))
        // Every bar's rectangle, from the picture's own coordinates.
        func rects(_ cls: String) -> [(x: Double, y: Double, w: Double, h: Double)] {
            text.components(separatedBy: "<rect class=\"\(cls)\"").dropFirst().compactMap { s in
                func v(_ k: String) -> Double? { s.range(of: " \(k)=\"").flatMap { r in Double(s[r.upperBound...].prefix { $0 != "\"" }) } }
                guard let x = v("x"), let y = v("y"), let w = v("width"), let h = v("height") else { return nil }
                return (x, y, w, h)
            }
        }
        let ran = rects("instance"), killed = rects("blocked")
        #expect(ran.count >= 4 && killed.count >= 4, "instances drawn: \(ran.count) ran, \(killed.count) killed")

        let png = d.dir + "/t.png"
        let shot = try sh(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--screenshot=\(png)", "--window-size=1200,400", "file://\(svg)"])
        try #require(FileManager.default.fileExists(atPath: png), "no screenshot: \(shot.err.suffix(500))")
        let points = (ran + killed).map { [$0.x + $0.w / 2, $0.y + $0.h / 2] } + [[5.0, 395.0]]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: points), as: UTF8.self)
        let px = try sh(["/usr/bin/env", "python3", "-c", Self.pixels, png, json])
        let rgb = try #require(try JSONSerialization.jsonObject(with: Data(px.out.utf8)) as? [[Int]], "\(px.err)")
        func near(_ p: [Int], _ c: [Int]) -> Bool { zip(p, c).allSatisfy { abs($0 - $1) <= 24 } }
        let blue = [0x1f, 0x77, 0xb4], red = [0xd6, 0x27, 0x28]
        #expect(rgb.prefix(ran.count).allSatisfy { near($0, blue) }, "a blue bar at each instance that ran: \(rgb.prefix(ran.count))")
        #expect(rgb.dropFirst(ran.count).prefix(killed.count).allSatisfy { near($0, red) }, "a red bar at each killed one: \(rgb.dropFirst(ran.count))")
        #expect(rgb.last.map { near($0, [255, 255, 255]) } == true, "and background elsewhere")
    }
}

/// Long runs say that they are running: the first read of a big /proc, a retention pass.
@Suite struct ProgressTests {
    final class Collect: LogHandler, @unchecked Sendable {
        var lines: [String] = []
        let lock = NSLock()
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { nil } set {} }
        func log(event: LogEvent) { lock.withLock { lines.append("\(event.message)") } }
    }

    @Test func readingProcTellsHowFarItGot() {
        var calls: [(Int, Int)] = []
        let all = ProcReader().all(every: 5) { calls.append(($0, $1)) }
        #expect(all.count >= 5)
        #expect(calls.count == calls.last.map { $0.1 / 5 } ?? -1 && calls.allSatisfy { $0.0 % 5 == 0 && $0.0 <= $0.1 }, "\(calls)")
    }

    @Test func aRetentionPassIsToldWhileItRuns() async throws {
        let c = Collect()
        let log = Logger(label: "t") { _ in c }
        let ticker = RetentionTicker(log: log, began: .now, every: .milliseconds(50))
        try await Task.sleep(for: .milliseconds(280))
        ticker.done()
        let n = c.lock.withLock { c.lines.count }
        try await Task.sleep(for: .milliseconds(200))
        #expect(n >= 3 && c.lock.withLock { c.lines.count } == n, "told while running, then not: \(c.lines)")
        #expect(c.lines.allSatisfy { $0 == "retention pass running" })
    }
}

@Suite struct WorkQueueTests {
    /// First in, first out across the compaction of what was taken; `offer` refuses when full.
    @Test func keepsOrderAndItsBound() {
        let q = WorkQueue<Int>(capacity: 1000)
        var got: [Int] = []
        for round in 0..<5 {
            for i in 0..<1000 { q.put(round * 1000 + i) }
            #expect(!q.offer(-1), "full at capacity")
            for _ in 0..<700 { got.append(q.take()) }
            for i in 0..<700 { #expect(q.offer(10_000 + round * 1000 + i)) }
            for _ in 0..<1000 { got.append(q.take()) }
        }
        var want: [Int] = []
        for round in 0..<5 {
            want += (0..<1000).map { round * 1000 + $0 } + (0..<700).map { 10_000 + round * 1000 + $0 }
        }
        #expect(got == want)
    }
}
