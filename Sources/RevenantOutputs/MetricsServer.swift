import Foundation
import Glibc
import Logging
import ServiceLifecycle

/// Serves `GET /metrics` (Prometheus text format 0.0.4) on one address, loopback unless the
/// operator names another. One connection at a time, each with a 2 s read and write limit: a
/// scrape is a few KiB every few seconds, and a slow client cannot hold more than one slot.
public final class MetricsServer: Service, Sendable {
    public struct Address: Sendable, CustomStringConvertible {
        public var host: String
        public var port: UInt16
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
        public var isLoopback: Bool { host == "127.0.0.1" || host == "::1" || host == "localhost" || host.hasPrefix("127.") }

        /// `PORT`, `HOST:PORT` or `[V6]:PORT`; a bare port is on 127.0.0.1.
        public init?(_ text: String) {
            var host = "127.0.0.1", portText = text
            if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
                host = String(text[text.index(after: text.startIndex)..<close])
                portText = String(text[text.index(after: close)...].drop { $0 == ":" })
            } else if let colon = text.lastIndex(of: ":") {
                host = String(text[..<colon])
                portText = String(text[text.index(after: colon)...])
            }
            guard !host.isEmpty, let p = UInt16(portText), p > 0 else { return nil }
            self.host = host
            self.port = p
        }
    }

    private let fd: Int32
    public let address: Address
    private let metrics: DaemonMetrics
    private let log: Logger

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// Binds now, so a taken port fails the start with a clear message.
    public init(address: Address, metrics: DaemonMetrics = .shared, logger: Logger) throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(address.host, String(address.port), &hints, &res)
        guard rc == 0, let ai = res else { throw Failure(description: "--metrics \(address): \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(res) }
        let s = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw Failure(description: "--metrics: socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(s, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0, listen(s, 16) == 0 else {
            let e = errno
            close(s)
            throw Failure(description: "--metrics \(address): \(String(cString: strerror(e)))")
        }
        fd = s
        self.address = address
        self.metrics = metrics
        log = logger
    }

    public func run() async throws {
        let t = Thread { [self] in serve() }
        t.name = "revenant-metrics"
        t.start()
        log.info("metrics served", metadata: ["address": "http://\(address)/metrics"])
        try? await gracefulShutdown()
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    private func serve() {
        while true {
            let c = accept(fd, nil, nil)
            if c >= 0 { _ = fcntl(c, F_SETFD, FD_CLOEXEC) }
            if c < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return   // closed at shutdown
            }
            var tv = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            answer(c)
            close(c)
        }
    }

    private func answer(_ c: Int32) {
        var request: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while request.count < 16_384 {
            let n = read(c, &buf, buf.count)
            if n <= 0 { break }
            request += buf[..<n]
            if request.count >= 4, request.suffix(4) == [13, 10, 13, 10] { break }
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        let (status, type, body): (String, String, [UInt8])
        if line.count >= 2, line[0] == "GET", line[1] == "/metrics" || line[1].hasPrefix("/metrics?") {
            (status, type, body) = ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.exposition())
        } else if line.count >= 2, line[0] == "GET" {
            (status, type, body) = ("404 Not Found", "text/plain", Array("revenant serves /metrics only\n".utf8))
        } else {
            (status, type, body) = ("405 Method Not Allowed", "text/plain", Array("GET /metrics\n".utf8))
        }
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let all = Array(head.utf8) + body
        var off = 0
        while off < all.count {
            let n = all.withUnsafeBytes { write(c, $0.baseAddress! + off, all.count - off) }
            if n <= 0 { return }
            off += n
        }
    }
}
