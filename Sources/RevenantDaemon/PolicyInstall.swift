import Foundation
import Glibc
import RevenantCore
import RevenantHost
import RevenantKernel

/// A checked policy compiled for the free half of the kernel's maps and installed there; the
/// running policy stays in force when any step fails.
struct PolicyInstall {
    let compiled: CompiledPolicy
    /// Rule executables that do not exist here: those rules match by script or comm only.
    let missing: [String]
    /// The tiers the rules act through, for the journal and the audit log.
    let tiers: [EnforcementTier]

    init(_ p: Policy, enforcer: Enforcer, userspaceKill: Bool) throws {
        var c = try PolicyCompiler.compile(p, context: PolicyLoader.safetyContext(), bitBase: enforcer.nextBitBase)
        if userspaceKill {
            c.audit |= c.kill | c.deny
            c.kill = 0
            c.deny = 0
        }
        missing = try enforcer.install(c)
        compiled = c
        tiers = Set(c.rules.compactMap { enforcer.tier(for: $0.action) }).sorted { $0.rawValue < $1.rawValue }
    }

    var tierText: String { tiers.isEmpty ? "audit only" : tiers.map(\.rawValue).joined(separator: ", ") }

    /// A process `kill_existing` met: killed, or gone before the kill.
    struct Victim {
        var record: ProcessRecord
        var rules: [String]
        var killed: Bool
    }

    /// Kills the running processes that rules with `kill_existing` match, through pidfds.
    func killExisting() -> [Victim] {
        let policy = compiled
        let wanted = policy.rules.enumerated().filter { $0.element.killExisting && $0.element.action != .audit }
        guard !wanted.isEmpty else { return [] }
        let mask = wanted.reduce(UInt64(0)) { $0 | policy.bitFor($1.offset) }
        let reader = ProcReader()
        var victims: [Victim] = []
        for pid in reader.pids() where pid > 1 && pid != getpid() {
            guard let r = reader.record(pid), let img = r.image else { continue }
            let exeKey = fileID("/proc/\(pid)/exe").map { (DeviceNumber.kernel(fromUser: $0.dev), $0.ino) }
            var exeMask: UInt64 = 0
            for (path, m) in policy.exeKeys {
                if let f = fileID(path), let k = exeKey, DeviceNumber.kernel(fromUser: f.dev) == k.0, f.ino == k.1 { exeMask |= m }
            }
            let keys = ScriptHash.keys(forExec: img.argv, filename: img.filename, cwd: img.cwd)
            let hit = policy.matches(exeMask: exeMask, scriptKeys: keys, comm: r.comm, argv: img.argv) & mask
            guard hit != 0 else { continue }
            victims.append(Victim(record: r, rules: policy.rules(in: hit).map(\.name), killed: PidfdKiller.kill(r.id, reader: reader)))
        }
        return victims
    }
}
