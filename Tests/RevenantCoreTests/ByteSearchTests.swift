import RevenantTestSupport
import Testing
@testable import RevenantCore

@Suite struct ByteSearchTests {
    @Test func findsWhatStringContainsFinds() {
        let cases: [(String, String)] = [("", ""), ("abc", ""), ("", "a"), ("abc", "abc"), ("abc", "abcd"), ("aaab", "aab"),
                                         ("/opt/w/train.py", "train.py"), ("/opt/w/train.py", "/opt"), ("xxyxxyxxz", "xxz"),
                                         ("héllo wörld", "wö"), ("héllo", "hel"), ("a\u{0}b", "\u{0}b")]
        for (h, n) in cases {
            #expect(ByteSearch.contains(h, n) == (n.isEmpty || h.utf8.count >= n.utf8.count && Array(h.utf8).indices.contains { i in
                Array(h.utf8)[i...].starts(with: Array(n.utf8)) }), "\(h) \(n)")
        }
        #expect(ByteSearch.contains(Array("worker.py --id".utf8), Array("py --".utf8)))
    }

    /// The scenario the timeline selects by: the rule `timeline --match` and `verify --match` share.
    @Test func aWholeCommandLineArgumentNamesButDoesNotRunTheProgram() {
        let run = Image(time: 0, filename: "/usr/bin/python3", argv: ["python3", "/opt/w/worker.py"], comm: "python3")
        let named = Image(time: 0, filename: "/bin/sh", argv: ["sh", "-c", "python3 /opt/w/worker.py"], comm: "sh")
        #expect(run.runsProgram(matching: "worker.py"))
        #expect(!named.runsProgram(matching: "worker.py"))
        #expect(named.runsProgram(matching: "/bin/sh"))
    }
}
