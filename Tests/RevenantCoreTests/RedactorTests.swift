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
        #expect(custom.apply(["mysql", "-psecret"]) == ["mysql", "-psecret"], "no '=' in the element: the next one would go")
        #expect(Redactor(patterns: []).apply(["a", "--password=x"]) == ["a", "--password=x"])
    }
}
