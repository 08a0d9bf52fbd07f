import ArgumentParser
import Foundation
import RevenantCore
import RevenantQuery
import RevenantDaemon

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Policy files.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check", abstract: "Validate a policy and print what each rule compiles to. Exit 1 when invalid.",
            discussion: """
                Examples:
                  revenant policy check /etc/revenant/policy.yaml
                  revenant policy check policy/sample.yaml --json
                """)

        @Argument(help: "Policy file.") var file: String
        @Flag(help: "JSON output.") var json = false

        func run() throws {
            let compiled: CompiledPolicy
            do {
                compiled = try PolicyLoader.load(file)
            } catch {
                throw Failure(error.description, status: 1)
            }
            if json {
                struct R: Encodable { let name, action, tier: String; let exe, script, comm, argv: String?; let kill_existing: Bool; let kernel_keys: [String]; let line: Int }
                LineWriter.stdout.json(compiled.rules.enumerated().map { i, r in
                    R(name: r.name, action: r.action.rawValue, tier: tier(r), exe: r.match.exe, script: r.match.script,
                      comm: r.match.comm, argv: r.match.argv, kill_existing: r.killExisting, kernel_keys: keys(r, i, compiled), line: r.line)
                })
                return
            }
            let out = LineWriter.stdout
            out.line("\(file): \(compiled.rules.count) rule\(compiled.rules.count == 1 ? "" : "s"), valid")
            for (i, r) in compiled.rules.enumerated() {
                out.line("")
                out.line("  \(r.name)  (line \(r.line))")
                out.line("    action   \(r.action.rawValue) → \(tier(r))")
                if let e = r.match.exe { out.line("    exe      \(e)  → device+inode \(exeID(e))") }
                if let s = r.match.script {
                    out.line("    script   \(s)  → " + (s.hasPrefix("/") ? "argv element or exec path equal to it, or its name run from \((s as NSString).deletingLastPathComponent)" : "any argv element or exec path named \(s)"))
                }
                if let c = r.match.comm { out.line("    comm     \(c)") }
                if let a = r.match.argv { out.line("    argv     \(a)  (glob, checked in userspace)") }
                if r.killExisting { out.line("    kill_existing: running matches are killed when the policy loads") }
                if r.allowDangerous { out.line("    allow_dangerous: safety rails off for this rule") }
                out.line("    kernel   \(keys(r, i, compiled).joined(separator: ", "))")
            }
        }

        func tier(_ r: PolicyRule) -> String {
            switch r.action {
            case .audit: return "recorded, not stopped"
            case .kill: return "SIGKILL at exec, in the kernel"
            case .deny: return "execve refused with EPERM where the BPF LSM program loads (`revenant doctor` tells), killed at exec elsewhere"
            }
        }

        func exeID(_ path: String) -> String {
            var st = stat()
            guard stat(path, &st) == 0 else { return "(missing on this host)" }
            return "\(DeviceNumber.text(kernel: DeviceNumber.kernel(fromUser: UInt64(st.st_dev))))/\(st.st_ino)"
        }

        func keys(_ r: PolicyRule, _ i: Int, _ c: CompiledPolicy) -> [String] {
            let bit = c.bitFor(i)
            var k: [String] = []
            k += c.exeKeys.filter { $0.value & bit != 0 }.map { "exe_rules[\($0.key)]" }
            k += c.scriptKeys.filter { $0.value & bit != 0 }.map { String(format: "script_rules[%016llx]", $0.key) }.sorted()
            k += c.commKeys.filter { $0.value & bit != 0 }.map { "comm_rules[\($0.key)]" }
            return k.isEmpty ? ["none (userspace only)"] : k
        }
    }
}
