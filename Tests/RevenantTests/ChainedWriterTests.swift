import Foundation
import Synchronization
@testable import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import Testing

/// Export's second thread: records chained and written in the order given, whatever the batches.
@Suite struct ChainedWriterTests {
    @Test func batchesComeOutInOrderAsOneIntactChain() {
        let device = AuditEvent.Device(hostname: "h", machineID: "m", kernel: "6.1")
        let events = (0..<1_000).map { AuditEvent.daemon("event \($0)", timeMs: Int64($0)) }
        let lines = Mutex<[String]>([])
        let w = ChainedWriter(device: device) { line in lines.withLock { $0.append(String(decoding: line, as: UTF8.self)) } }
        var at = 0
        for size in [1, 0, 255, 256, 7, 481] {
            w.put(Array(events[at..<at + size]))
            at += size
        }
        let end = w.finish()
        let got = lines.withLock { $0 }
        // The same lines chained one by one here.
        var prev = AuditChain.genesis
        let expected = events.prefix(at).enumerated().map { i, e -> String in
            var e = e
            e.chain(seq: i + 1, prevHash: prev, device: device)
            let line = String(decoding: e.json(), as: UTF8.self)
            prev = AuditChain.hash(line)
            return line
        }
        #expect(got == expected)
        #expect(end.seq == at && end.hash == prev)
        #expect(AuditChain.verify([("export", got)]) == nil)
    }
}
