import Foundation
import Testing
@testable import RevenantCore

@Suite struct AuditChainTests {
    /// Three chained lines, as AuditLog writes them.
    func chain(_ n: Int) -> [String] {
        var out: [String] = []
        var prev = AuditChain.genesis
        for i in 1...n {
            let line = #"{"message":"m\#(i)","revenant":{"event":"start","prev_hash":"\#(prev)","seq":\#(i)}}"#
            out.append(line)
            prev = AuditChain.hash(line)
        }
        return out
    }

    @Test func intactChainVerifies() {
        #expect(AuditChain.verify([("a", chain(5))]) == nil)
        let c = chain(6)
        #expect(AuditChain.verify([("a.1", Array(c[0..<3])), ("a", Array(c[3...]))]) == nil, "across a rotation")
    }

    @Test func changedRecordIsNamed() {
        var c = chain(5)
        c[1] = c[1].replacingOccurrences(of: "m2", with: "mX")
        let p = AuditChain.verify([("a", c)])
        #expect(p?.kind == .changed)
        #expect(p?.line == 3)
        #expect(p?.description.contains("record 2") == true)
    }

    @Test func removedAndReorderedRecordsAreNamed() {
        var c = chain(5)
        c.remove(at: 2)
        #expect(AuditChain.verify([("a", c)])?.kind == .removed)
        var r = chain(5)
        r.swapAt(1, 2)
        #expect(AuditChain.verify([("a", r)])?.kind == .reordered)
        #expect(AuditChain.verify([("a", ["not json"])])?.kind == .malformed)
    }

    @Test func sha256() {
        #expect(AuditChain.hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
