import ArgumentParser
import Foundation
import RevenantQuery
import RevenantDaemon

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor", abstract: "What this kernel allows: tracing, enforcement tiers, and how to fix what is missing.",
        discussion: """
            Examples:
              revenant doctor
              revenant doctor --json
            """)

    @Flag(help: "JSON output.") var json = false

    func run() throws {
        let p = Daemon.probeKernel()
        if json {
            LineWriter.stdout.json(p)
            return
        }
        let out = LineWriter.stdout
        let w = p.checks.map(\.name.count).max() ?? 10
        for c in p.checks {
            let mark = c.ok ? "ok " : "!! "
            out.line("\(mark) \(c.name.padding(toLength: w, withPad: " ", startingAt: 0))  \(c.value)")
            if !c.advice.isEmpty { out.line("    \(String(repeating: " ", count: w))  → \(c.advice)") }
        }
        out.line("")
        out.line("strongest enforcement tier: \(p.tier)")
    }
}
