import RevenantTestSupport
import Testing
@testable import RevenantCore

/// The ingest's decision for a matched exec, without a kernel: rule, tier, what is recorded.
@Suite struct EnforcementDecisionTests {
    private let ctx = SafetyContext(pid1Exe: "/lib/systemd/systemd", selfExe: "/usr/local/bin/revenant")

    private func policy() throws -> CompiledPolicy {
        try PolicyCompiler.compile(Policy(file: "p", rules: [
            PolicyRule(name: "block", match: PolicyMatch(exe: "/opt/bin/worker"), action: .kill),
            PolicyRule(name: "gpu-only", match: PolicyMatch(exe: "/opt/bin/worker", argv: "*--gpu*"), action: .audit),
            PolicyRule(name: "watch", match: PolicyMatch(comm: "miner"), action: .audit),
        ]), context: ctx)
    }

    @Test func theKernelsKillIsRecordedAsKillAtExec() throws {
        let p = try policy()
        let d = try #require(EnforcementDecision(kernel: .kill, matched: p.bitFor(0), argv: ["/opt/bin/worker"], policy: p, userspaceKill: false))
        #expect(d.step == .none)
        #expect(d.outcome() == Enforcement(rules: ["block"], tier: .killAtExec, blocked: true, message: "killed at exec by the kernel (rule \"block\")"))
    }

    @Test func anArgvGlobThatDoesNotMatchDropsItsRule() throws {
        let p = try policy()
        let both = p.bitFor(0) | p.bitFor(1)
        let plain = try #require(EnforcementDecision(kernel: .kill, matched: both, argv: ["/opt/bin/worker", "--cpu"], policy: p, userspaceKill: false))
        #expect(plain.rules == ["block"])
        let gpu = try #require(EnforcementDecision(kernel: .kill, matched: both, argv: ["/opt/bin/worker", "--gpu"], policy: p, userspaceKill: false))
        #expect(gpu.rules == ["block", "gpu-only"])
        #expect(EnforcementDecision(kernel: .deny, matched: p.bitFor(1), argv: ["/opt/bin/worker"], policy: p, userspaceKill: false) == nil)
    }

    @Test func aFailedKernelKillAsksUserspaceAndSaysWhetherItLanded() throws {
        let p = try policy()
        let d = try #require(EnforcementDecision(kernel: .killFailed, matched: p.bitFor(0), argv: ["/opt/bin/worker"], policy: p, userspaceKill: false))
        #expect(d.step == .userspaceKill(kernelFailed: true))
        #expect(d.outcome(killed: true) == Enforcement(rules: ["block"], tier: .userspaceKill, blocked: true,
                                                       message: "killed from userspace, the kernel could not (rule \"block\")"))
        #expect(d.outcome(killed: false) == Enforcement(rules: ["block"], tier: .userspaceKill, blocked: false, message: "kill failed (rule \"block\")"))
    }

    @Test func userspaceKillModeKillsOnlyForRulesThatBlock() throws {
        let p = try policy()
        let kill = try #require(EnforcementDecision(kernel: .audit, matched: p.bitFor(0), argv: ["/opt/bin/worker"], policy: p, userspaceKill: true))
        #expect(kill.step == .userspaceKill(kernelFailed: false))
        #expect(kill.outcome(killed: false).message == "userspace kill missed: already gone (rule \"block\")")
        let watch = try #require(EnforcementDecision(kernel: .audit, matched: p.bitFor(2), argv: ["miner"], policy: p, userspaceKill: true))
        #expect(watch.step == .none)
        #expect(watch.outcome() == Enforcement(rules: ["watch"], tier: nil, blocked: false, message: "audited (rule \"watch\")"))
    }

    @Test func aBlockingRuleTheKernelDidNotActOnIsSaidSo() throws {
        let p = try policy()
        let d = try #require(EnforcementDecision(kernel: .none, matched: p.bitFor(0), argv: ["/opt/bin/worker"], policy: p, userspaceKill: false))
        #expect(d.outcome() == Enforcement(rules: ["block"], tier: nil, blocked: false, message: "matched kill rule \"block\" but the kernel did not act"))
    }

    @Test func aDenyRecordNamesTheFileAndTheRules() {
        #expect(EnforcementDecision.denied(filename: "/opt/bin/worker", rules: ["a", "b"])
                == Enforcement(rules: ["a", "b"], tier: .deny, blocked: true, message: "denied exec of /opt/bin/worker (rule \"a\", \"b\")"))
    }
}
