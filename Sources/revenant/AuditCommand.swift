import ArgumentParser
import Foundation
import RevenantCore

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "The audit log.", subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the hash chain; name the first record changed, removed or reordered. Exit 1 if broken.",
            discussion: """
                Examples:
                  revenant audit verify /var/log/revenant/audit.jsonl
                  revenant audit verify /var/log/revenant/audit.jsonl.2 /var/log/revenant/audit.jsonl.1 /var/log/revenant/audit.jsonl
                """)

        @Argument(help: "Audit files, oldest first (audit.jsonl.2 audit.jsonl.1 audit.jsonl).") var files: [String]

        func run() throws {
            var input: [(name: String, lines: [String])] = []
            for f in files {
                guard let d = FileManager.default.contents(atPath: f) else { throw Failure("cannot read \(f)", status: 2) }
                input.append((f, String(decoding: d, as: UTF8.self).components(separatedBy: "\n")))
            }
            if let p = AuditChain.verify(input) { throw Failure(p.description, status: 1) }
            let n = input.reduce(0) { $0 + $1.lines.filter { !$0.isEmpty }.count }
            LineWriter.stdout.line("ok: \(n) records, chain intact")
        }
    }
}
