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
