/// What the daemon does about one matched exec, decided from what the kernel did and the
/// policy alone: which rules matched, which tier acted, whether userspace must still kill, and
/// what the store, the audit log and the journal record. Pure: the kill itself is the caller's.
public struct EnforcementDecision: Sendable, Equatable {
    /// What is left for userspace to do.
    public enum Step: Sendable, Equatable {
        /// Nothing: the kernel acted, or the rules only audit.
        case none
        /// Kill through a pidfd: the kernel could not (`killFailed`) or was asked not to (`--bench-userspace-kill`).
        case userspaceKill(kernelFailed: Bool)
    }

    public var rules: [String]
    public var step: Step
    /// Set when the outcome does not depend on a userspace kill.
    private var settled: Enforcement?

    /// nil when no rule matches after the argv globs refine the kernel's mask.
    public init?(kernel action: KernelAction, matched: UInt64, argv: [String], policy: CompiledPolicy, userspaceKill: Bool) {
        var mask = matched
        var line: String?   // joined only when a matched rule has an argv glob
        for (i, r) in policy.rules.enumerated() where mask & policy.bitFor(i) != 0 {
            guard let glob = r.match.argv else { continue }
            if line == nil { line = argv.joined(separator: " ") }
            if !Glob.match(glob, line!) { mask &= ~policy.bitFor(i) }
        }
        let matchedRules = policy.rules(in: mask)
        guard !matchedRules.isEmpty else { return nil }
        rules = matchedRules.map(\.name)
        let names = Enforcement.ruleList(rules)
        step = .none
        switch action {
        case .kill:
            settled = Enforcement(rules: rules, tier: .killAtExec, blocked: true, message: "killed at exec by the kernel (rule \(names))")
        case .deny:
            settled = Enforcement(rules: rules, tier: .deny, blocked: true, message: "denied (rule \(names))")
        case .killFailed:
            step = .userspaceKill(kernelFailed: true)
        case .audit where userspaceKill && matchedRules.contains { $0.action != .audit }:
            step = .userspaceKill(kernelFailed: false)
        case .audit, .none:
            let strongest = matchedRules.map(\.action).max() ?? .audit
            settled = Enforcement(rules: rules, tier: nil, blocked: false,
                                  message: strongest == .audit ? "audited (rule \(names))" : "matched \(strongest) rule \(names) but the kernel did not act")
        }
    }

    /// The record, given whether the userspace kill (if `step` asked for one) reached the process.
    public func outcome(killed: Bool = false) -> Enforcement {
        if let settled { return settled }
        let names = Enforcement.ruleList(rules)
        switch step {
        case .userspaceKill(kernelFailed: true):
            return Enforcement(rules: rules, tier: .userspaceKill, blocked: killed,
                               message: killed ? "killed from userspace, the kernel could not (rule \(names))" : "kill failed (rule \(names))")
        case .userspaceKill(kernelFailed: false):
            return Enforcement(rules: rules, tier: .userspaceKill, blocked: killed,
                               message: killed ? "killed from userspace (rule \(names))" : "userspace kill missed: already gone (rule \(names))")
        case .none:
            return Enforcement(rules: rules, tier: nil, blocked: false, message: "audited (rule \(names))")
        }
    }

    /// A denied exec the deny program reported (the exec never happened, so no image exists).
    public static func denied(filename: String, rules: [String]) -> Enforcement {
        Enforcement(rules: rules, tier: .deny, blocked: true, message: "denied exec of \(filename) (rule \(Enforcement.ruleList(rules)))")
    }
}
