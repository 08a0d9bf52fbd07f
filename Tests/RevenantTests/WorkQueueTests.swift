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
