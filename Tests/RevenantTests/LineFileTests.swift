import Foundation
import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import RevenantTestSupport
import Testing

@Suite struct LineFileTests {
    @Test func linesAcrossChunksAndAtTheEnd() throws {
        let dir = uniqueTempPath("lines")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let long = String(repeating: "x", count: (1 << 20) + 17)   // longer than one read
        let lines = ["first", "", long, "ünïcode", "no newline at the end"]
        let path = dir + "/f"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(Array(LineFile(path: path)) == lines)
        #expect(Array(LineFile(path: dir + "/absent")).isEmpty)
        #expect(!LineFile(path: dir + "/absent").readable)
    }
}
