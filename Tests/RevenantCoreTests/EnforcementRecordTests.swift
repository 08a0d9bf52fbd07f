import Testing
@testable import RevenantCore

@Suite struct EnforcementRecordTests {
    @Test func encodedFormReadsBackAsTheSameFields() {
        let e = Enforcement(rules: ["block-v1", "a \"quoted\" rule"], tier: .killAtExec, blocked: true,
                            message: "killed at exec by the kernel (rule \"block-v1\")")
        #expect(Enforcement(stored: e.encoded) == e)
    }

    @Test func sentencesFromBeforeTheFieldsAreReadOnce() {
        let killed = Enforcement(stored: "killed at exec by the kernel (rule \"block-v1\", \"other\")")
        #expect(killed.rules == ["block-v1", "other"] && killed.tier == .killAtExec && killed.blocked)
        let failed = Enforcement(legacy: "kill failed (rule \"r\")")
        #expect(failed.tier == .userspaceKill && !failed.blocked && failed.rules == ["r"])
        let audited = Enforcement(legacy: "audited (rule \"watch\")")
        #expect(audited.tier == nil && !audited.blocked && audited.rules == ["watch"])
        #expect(Enforcement(legacy: "denied exec of /x (rule \"d\")").tier == .deny)
    }
}
