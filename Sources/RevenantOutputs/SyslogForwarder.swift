import Foundation
import Glibc
import RevenantCore
import RevenantHost
import Synchronization

/// Sends the audit stream to a syslog receiver as RFC 5424 messages: over UDP, TCP (octet
/// counting, RFC 6587) or a unix socket (/dev/log). Each message's MSG is the audit record
/// as written to the log (JSON, hash chain included); its structured data carries the fields a
/// receiver filters on without parsing JSON. A thread of its own sends; when 10,000 records
/// wait (a receiver down), new ones are dropped and counted, never waited for.
public final class SyslogForwarder: Sendable {
    public enum Transport: String, Sendable { case udp, tcp, unix }
    public struct Target: Sendable, CustomStringConvertible {
        public var transport: Transport
        public var host: String
        public var port: UInt16
        public var path: String
        public var description: String { transport == .unix ? "unix://\(path)" : "\(transport)://\(host):\(port)" }

        /// `udp://HOST:PORT`, `tcp://HOST:PORT` or `unix:///PATH`.
        public init?(_ text: String) {
            guard let r = text.range(of: "://"), let t = Transport(rawValue: String(text[..<r.lowerBound])) else { return nil }
            let rest = String(text[r.upperBound...])
            transport = t
            if t == .unix {
                guard rest.hasPrefix("/") else { return nil }
                path = rest; host = ""; port = 0
            } else {
                guard let a = MetricsServer.Address(rest), rest.contains(":") else { return nil }
                host = a.host; port = a.port; path = ""
            }
        }
    }

    struct Item: Sendable { var line: String; var event: Header }
    /// What the syslog header and structured data need from a record.
    public struct Header: Sendable {
        var timeMs: Int64, severityId: Int, classUid: Int, seq: Int, event: String, rule: [String]?, tier: String?, pid: Int32?
        public init(_ e: AuditEvent) {
            timeMs = e.time; severityId = e.severity_id; classUid = e.class_uid; seq = e.revenant.seq; event = e.revenant.event
            rule = e.revenant.rule; tier = e.revenant.tier; pid = e.process?.pid ?? e.revenant.process?.pid
        }
    }

    public let target: Target
    private let queue = WorkQueue<Item>(capacity: 10_000)
    private let dropped = Atomic<Int>(0)
    /// Records offered and not yet sent or dropped.
    private let inFlight = Atomic<Int>(0)
    private let hostname: String
    private let procid = getpid()

    public init(target: Target) {
        self.target = target
        hostname = HostIdentity.device.hostname
        let t = Thread { [self] in run() }
        t.name = "revenant-forward"
        t.start()
    }


    package func send(line: String, event: AuditEvent) {
        inFlight.add(1, ordering: .relaxed)
        if !queue.offer(Item(line: line, event: Header(event))) {
            inFlight.subtract(1, ordering: .relaxed)
            dropped.add(1, ordering: .relaxed)
            DaemonMetrics.shared.forwardDropped()
        }
    }

    /// Waits until what was offered is sent, at most `seconds` (at stop: the last records).
    package func drain(seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while inFlight.load(ordering: .relaxed) > 0 && Date() < end { Thread.sleep(forTimeInterval: 0.01) }
    }

    /// One RFC 5424 message: `<PRI>1 TIMESTAMP HOST revenant PROCID MSGID [SD] MSG`.
    /// Facility 13 (log audit); the OCSF severity maps to the syslog one.
    public static func message(_ line: String, _ h: Header, hostname: String, procid: Int32) -> String {
        let severity = switch h.severityId { case 0, 1: 6; case 2: 5; case 3: 4; case 4: 3; case 5: 2; default: 1 }
        let pri = 13 * 8 + severity
        var secs = time_t(h.timeMs / 1000), tm = Glibc.tm()
        gmtime_r(&secs, &tm)
        let time = String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                          tm.tm_hour, tm.tm_min, tm.tm_sec, Int32(h.timeMs % 1000))
        func sd(_ s: String) -> String {   // RFC 5424 PARAM-VALUE: escape " \ ]
            var o = ""
            for c in Visible.escape(s) { if c == "\"" || c == "\\" || c == "]" { o.append("\\") }; o.append(c) }
            return o
        }
        var params = "class_uid=\"\(h.classUid)\" seq=\"\(h.seq)\" event=\"\(sd(h.event))\""
        if let r = h.rule { params += " rule=\"\(sd(r.joined(separator: ",")))\"" }
        if let t = h.tier { params += " tier=\"\(sd(t))\"" }
        if let p = h.pid { params += " pid=\"\(p)\"" }
        let msgid = h.classUid == 1007 ? "process" : h.classUid == 1001 ? "file" : "daemon"
        // 32473: the example enterprise number RFC 5424 reserves for documentation and private use.
        return "<\(pri)>1 \(time) \(hostname.isEmpty ? "-" : hostname) revenant \(procid) \(msgid) [revenant@32473 \(params)] \(line)"
    }

    private func run() {
        var fd: Int32 = -1
        while true {
            let item = queue.take()
            let msg = SyslogForwarder.message(item.line, item.event, hostname: hostname, procid: procid)
            let bytes = Array((target.transport == .tcp ? "\(msg.utf8.count) \(msg)" : msg).utf8)
            // A stream resends until it is taken (the queue bounds what waits); a datagram
            // that could not go is dropped, its receiver may be gone for good.
            var attempts = 0
            while true {
                if fd < 0 { fd = connect() }
                if fd >= 0, sendAll(fd, bytes) { break }
                if fd >= 0 { close(fd); fd = -1 }
                attempts += 1
                if target.transport != .tcp && attempts >= 2 {
                    dropped.add(1, ordering: .relaxed)
                    DaemonMetrics.shared.forwardDropped()
                    break
                }
                Thread.sleep(forTimeInterval: min(1, 0.1 * Double(attempts)))
            }
            inFlight.subtract(1, ordering: .relaxed)
        }
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    private func connect() -> Int32 {
        switch target.transport {
        case .unix:
            for type in [SOCK_DGRAM, SOCK_STREAM] {
                let s = socket(AF_UNIX, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                var a = sockaddr_un()
                a.sun_family = sa_family_t(AF_UNIX)
                withUnsafeMutableBytes(of: &a.sun_path) { p in for (i, b) in target.path.utf8.prefix(p.count - 1).enumerated() { p[i] = b } }
                let ok = withUnsafePointer(to: &a) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
                }
                if ok { return s }
                close(s)
            }
            return -1
        case .udp, .tcp:
            var hints = addrinfo()
            hints.ai_socktype = Int32((target.transport == .tcp ? SOCK_STREAM : SOCK_DGRAM).rawValue)
            hints.ai_flags = AI_NUMERICSERV
            var res: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(target.host, String(target.port), &hints, &res) == 0, let ai = res else { return -1 }
            defer { freeaddrinfo(res) }
            let s = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard s >= 0 else { return -1 }
            var tv = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            guard Glibc.connect(s, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 else { close(s); return -1 }
            return s
        }
    }
}
