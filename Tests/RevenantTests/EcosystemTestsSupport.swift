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
