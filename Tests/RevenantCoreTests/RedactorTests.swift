import Testing
@testable import RevenantCore

@Suite struct RedactorTests {
    @Test func valuesAfterEqualsAndNextArguments() {
        let r = Redactor()
        #expect(r.apply(["app", "--password=hunter2", "--user=bob", "HF_TOKEN=abc", "--token", "t0k", "x"])
                == ["app", "--password=[REDACTED]", "--user=bob", "HF_TOKEN=[REDACTED]", "--token", "[REDACTED]", "x"])
        #expect(r.apply(["sh", "-c", "app --password=x && app --token y"]) == ["sh", "-c", "app --password=[REDACTED] && app --token [REDACTED]"])
        #expect(r.apply(["app", "--token"]) == ["app", "--token"], "nothing follows: nothing to hide")
        let custom = Redactor(patterns: ["-p*"])
        #expect(custom.apply(["app", "-psecret"]) == ["app", "-psecret"], "no '=' in the element: the next one would go")
        #expect(Redactor(patterns: []).apply(["a", "--password=x"]) == ["a", "--password=x"])
    }

    /// The daemon's path at every exec: nil, nothing copied, when nothing is to hide; the
    /// pre-checks on length and first byte never let a literal flag through unhidden.
    @Test func nothingToHideIsNil() {
        let r = Redactor()
        #expect(r.redacted(["/bin/true"]) == nil)
        #expect(r.redacted(["python3", "/opt/w/train.py", "--tokens", "8", "--secrets", "--user=bob", "sh -c ls"]) == nil)
        #expect(r.redacted(["app", "--secret", "s"]) == ["app", "--secret", "[REDACTED]"])
        let long = "--" + String(repeating: "k", count: 70)
        let custom = Redactor(patterns: ["-p", "\u{2013}token", long])
        #expect(custom.redacted(["mysql", "-p", "pw"]) == ["mysql", "-p", "[REDACTED]"])
        #expect(custom.redacted(["app", "-q", "pw", "-pp", "x"]) == nil)
        #expect(custom.redacted(["app", "\u{2013}token", "t"]) == ["app", "\u{2013}token", "[REDACTED]"])
        #expect(custom.redacted(["app", long, "t"]) == ["app", long, "[REDACTED]"])
        #expect(custom.redacted(["app", long + "k", "t"]) == nil)
        #expect(Redactor(patterns: []).redacted(["a", "--password=x"]) == nil)
        #expect(Redactor(patterns: [""]).redacted(["a", "", "b"]) == ["a", "", "[REDACTED]"], "an empty flag, as apply always did")
    }
}
