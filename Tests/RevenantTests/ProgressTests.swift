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
